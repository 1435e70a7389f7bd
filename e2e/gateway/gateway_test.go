// Package gateway_test runs the gateway binary against a real NATS JetStream
// (a nats-server of its own, from e2e/harness) and an in-process fake budget service,
// and checks what only a real NATS can show: events land on the USAGE stream
// with their event id as Nats-Msg-Id, and while NATS is down requests still
// succeed, their events wait in the spool across a gateway restart, and are
// published in order once NATS is back.
package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
)

func TestMain(m *testing.M) { harness.Main(m) }

const masterKey = "sk-e2e-master"

const gatewayConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, mock_response: "Hello from e2e."}
    model_info: {id: gpt-4o-mock}
general_settings:
  master_key: ` + masterKey + `
`

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fakeBudget admits everything and records releases.
type fakeBudget struct {
	budgetv1connect.UnimplementedBudgetServiceHandler
	mu sync.Mutex
	n  int
}

func (f *fakeBudget) Admit(_ context.Context, r *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	var ids []string
	for _, c := range r.Msg.Candidates {
		ids = append(ids, c.DeploymentId)
	}
	return connect.NewResponse(&budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: &budgetv1.Admission{
		ReservationId: fmt.Sprintf("res-%d", n), ReservedNanos: 1000, AllowedDeploymentIds: ids,
	}}}), nil
}

func (f *fakeBudget) Release(context.Context, *connect.Request[budgetv1.ReleaseRequest]) (*connect.Response[budgetv1.ReleaseResponse], error) {
	return connect.NewResponse(&budgetv1.ReleaseResponse{Released: true}), nil
}

func startBudget(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	path, h := budgetv1connect.NewBudgetServiceHandler(&fakeBudget{})
	mux.Handle(path, h)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"status":"ready"}`) })
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

// gateway is the gateway binary against the test's NATS, the fake budget
// service and a spool directory; it is restarted on the same port and flags.
type gateway struct {
	*harness.Service
}

func newGateway(t *testing.T, n *harness.NATSServer, budgetURL, spoolDir string) *gateway {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(gatewayConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return &gateway{n.NewService("gateway", "-config", cfg, "-nats-url", n.URL,
		"-budget-url", budgetURL, "-spool-dir", spoolDir, "-log-level", "debug")}
}

// chat sends one completion and returns its call id.
func (g *gateway) chat(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+masterKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get("X-Litellm-Call-Id")
}

var spoolDepth = regexp.MustCompile(`(?m)^gateway_spool_depth (\S+)$`)

func (g *gateway) spoolDepth(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := spoolDepth.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no gateway_spool_depth in /metrics")
	}
	n, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(n)
}

// usageEvents reads the first want events of the USAGE stream, checking that
// each is on its key's subject with its event id as Nats-Msg-Id.
func usageEvents(t *testing.T, n *harness.NATSServer, want int) []*eventsv1.UsageRecorded {
	t.Helper()
	var out []*eventsv1.UsageRecorded
	for _, msg := range harness.ReadStream(t, harness.JetStream(t, n.URL), js.UsageStream, want, 0)[:want] {
		var ev eventsv1.UsageRecorded
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if id := msg.Headers().Get(jetstream.MsgIDHeader); id != ev.EventId {
			t.Fatalf("Nats-Msg-Id %q != event id %q", id, ev.EventId)
		}
		if msg.Subject() != js.UsageSubject(ev.Identity.GetKeyId()) {
			t.Fatalf("subject %q", msg.Subject())
		}
		out = append(out, &ev)
	}
	return out
}

func TestEventsReachJetStream(t *testing.T) {
	n := harness.StartNATSServer(t)
	g := newGateway(t, n, startBudget(t), t.TempDir())
	g.Start()
	var calls []string
	for i := 0; i < 5; i++ {
		calls = append(calls, g.chat(t))
	}
	evs := usageEvents(t, n, 5)
	// Each call has its event. Order across separate requests is not part of
	// the contract (publishes are asynchronous); the spool test checks the
	// order the spool promises.
	want := map[string]bool{}
	for _, c := range calls {
		want[c] = true
	}
	for i, ev := range evs {
		if !want[ev.RequestId] || ev.Route.GetDeploymentId() != "gpt-4o-mock" || ev.Tokens.GetInput() != 1 || ev.Tokens.GetOutput() != 4 {
			t.Fatalf("event %d: %v", i, ev)
		}
		delete(want, ev.RequestId)
	}
	if len(want) != 0 {
		t.Fatalf("calls without an event: %v", want)
	}
}

func TestNATSDownSpoolsAcrossRestartAndReplaysInOrder(t *testing.T) {
	spoolDir := t.TempDir()
	n := harness.StartNATSServer(t)
	g := newGateway(t, n, startBudget(t), spoolDir)
	g.Start()
	first := g.chat(t) // NATS up: published directly, and the streams exist
	usageEvents(t, n, 1)

	n.Stop()
	var calls []string
	for i := 0; i < 10; i++ {
		calls = append(calls, g.chat(t)) // still 200 with NATS down
	}
	// A publish caught in the instant NATS went away is spooled when its ack
	// times out; wait for all ten.
	waitFor(t, "10 spooled events", func() bool { return g.spoolDepth(t) == 10 })
	// The gateway restarts while NATS is still away: nothing may be lost.
	g.Stop()
	files, _ := filepath.Glob(filepath.Join(spoolDir, "*.spool"))
	if len(files) == 0 {
		t.Fatal("no spool files after a restart with NATS down")
	}
	g.Start() // a new process on the same spool directory
	if d := g.spoolDepth(t); d != 10 {
		t.Fatalf("spool depth after restart %d; want 10", d)
	}
	calls = append(calls, g.chat(t)) // also spooled, behind the backlog

	n.Start()
	evs := usageEvents(t, n, 12)
	want := append([]string{first}, calls...)
	for i, ev := range evs {
		if ev.RequestId != want[i] {
			got := make([]string, len(evs))
			for j := range evs {
				got[j] = evs[j].RequestId
			}
			t.Fatalf("stream order %v; want %v", got, want)
		}
	}
	waitFor(t, "the spool to empty", func() bool { return g.spoolDepth(t) == 0 })
	waitFor(t, "drained spool files to be deleted", func() bool {
		files, _ := filepath.Glob(filepath.Join(spoolDir, "*.spool"))
		return len(files) == 0
	})
}

// A second gateway on a spool directory in use refuses to start, naming the
// directory: two would publish the spool's events twice and delete segments
// under each other.
func TestSecondGatewayOnTheSameSpoolRefusesToStart(t *testing.T) {
	n := harness.StartNATSServer(t)
	budgetURL, spoolDir := startBudget(t), t.TempDir()
	g := newGateway(t, n, budgetURL, spoolDir)
	g.Start()
	second := newGateway(t, n, budgetURL, spoolDir)
	second.StartNoWait()
	waitFor(t, "the second gateway to exit", func() bool { return !second.Running() })
	log, err := os.ReadFile(second.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "in use by another gateway process") || !strings.Contains(string(log), spoolDir) {
		t.Fatalf("second gateway's log does not say that %s is in use:\n%s", spoolDir, log)
	}
	g.chat(t) // the first one still serves
}
