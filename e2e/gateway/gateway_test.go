// Package gateway_test runs the gateway binary against a real NATS JetStream
// (the repository's .bin/nats-server) and an in-process fake budget service,
// and checks what only a real NATS can show: events land on the USAGE stream
// with their event id as Nats-Msg-Id, and while NATS is down requests still
// succeed, their events wait in the spool across a gateway restart, and are
// published in order once NATS is back.
package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
)

const masterKey = "sk-e2e-master"

const gatewayConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, mock_response: "Hello from e2e."}
    model_info: {id: gpt-4o-mock}
general_settings:
  master_key: ` + masterKey + `
`

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the test directory")
		}
		dir = parent
	}
}

func gatewayBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gateway-e2e-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "gateway"), "./services/gateway")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build gateway: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "gateway")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process the test owns.
type proc struct {
	t    *testing.T
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); _ = f.Close(); close(p.done) }()
}

// stop sends SIGTERM and waits for the exit.
func (p *proc) stop() {
	p.t.Helper()
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("%s did not stop on SIGTERM", p.name)
	}
}

func (p *proc) dumpOnFailure() {
	if !p.t.Failed() {
		return
	}
	b, _ := os.ReadFile(p.log)
	p.t.Logf("---- %s log ----\n%s", p.name, b)
}

func startNATS(t *testing.T, port int, storeDir string) *proc {
	t.Helper()
	bin := filepath.Join(repoRoot(t), ".bin", "nats-server")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no nats-server at %s", bin)
	}
	p := &proc{t: t, name: "nats", log: filepath.Join(t.TempDir(), "nats.log"),
		args: []string{bin, "-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", strconv.Itoa(port)}}
	p.start()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	waitFor(t, "nats", func() bool {
		nc, err := nats.Connect(url)
		if err != nil {
			return false
		}
		nc.Close()
		return true
	})
	return p
}

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

type gateway struct {
	*proc
	url string
}

func newGateway(t *testing.T, natsPort int, budgetURL, spoolDir string) *gateway {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(gatewayConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	g := &gateway{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	g.proc = &proc{t: t, name: "gateway", log: filepath.Join(dir, "gateway.log"), args: []string{
		gatewayBinary(t), "-config", cfg, "-http-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"-nats-url", fmt.Sprintf("nats://127.0.0.1:%d", natsPort), "-budget-url", budgetURL,
		"-spool-dir", spoolDir, "-log-level", "debug",
	}}
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	g.proc.start()
	waitFor(g.t, "gateway /healthz", func() bool {
		resp, err := http.Get(g.url + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// chat sends one completion and returns its call id.
func (g *gateway) chat(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
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
	resp, err := http.Get(g.url + "/metrics")
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

// usageEvents reads the USAGE stream from the start.
func usageEvents(t *testing.T, natsPort, want int) []*eventsv1.UsageRecorded {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	j, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*eventsv1.UsageRecorded
	waitFor(t, fmt.Sprintf("%d events on %s", want, js.UsageStream), func() bool {
		s, err := j.Stream(ctx, js.UsageStream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs >= uint64(want)
	})
	c, err := j.OrderedConsumer(ctx, js.UsageStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for len(out) < want {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read event %d: %v", len(out), err)
		}
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
	natsPort := freePort(t)
	n := startNATS(t, natsPort, t.TempDir())
	defer n.stop()
	g := newGateway(t, natsPort, startBudget(t), t.TempDir())
	defer g.dumpOnFailure()
	g.start()
	defer g.stop()
	var calls []string
	for i := 0; i < 5; i++ {
		calls = append(calls, g.chat(t))
	}
	evs := usageEvents(t, natsPort, 5)
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
	natsPort, natsStore, spoolDir := freePort(t), t.TempDir(), t.TempDir()
	budgetURL := startBudget(t)
	n := startNATS(t, natsPort, natsStore)
	g := newGateway(t, natsPort, budgetURL, spoolDir)
	defer g.dumpOnFailure()
	g.start()
	first := g.chat(t) // NATS up: published directly, and the streams exist
	usageEvents(t, natsPort, 1)

	n.stop()
	var calls []string
	for i := 0; i < 10; i++ {
		calls = append(calls, g.chat(t)) // still 200 with NATS down
	}
	// A publish caught in the instant NATS went away is spooled when its ack
	// times out; wait for all ten.
	waitFor(t, "10 spooled events", func() bool { return g.spoolDepth(t) == 10 })
	// The gateway restarts while NATS is still away: nothing may be lost.
	g.stop()
	files, _ := filepath.Glob(filepath.Join(spoolDir, "*.spool"))
	if len(files) == 0 {
		t.Fatal("no spool files after a restart with NATS down")
	}
	g2 := newGateway(t, natsPort, budgetURL, spoolDir)
	defer g2.dumpOnFailure()
	g2.start()
	defer g2.stop()
	if d := g2.spoolDepth(t); d != 10 {
		t.Fatalf("spool depth after restart %d; want 10", d)
	}
	calls = append(calls, g2.chat(t)) // also spooled, behind the backlog

	n = startNATS(t, natsPort, natsStore)
	defer n.stop()
	evs := usageEvents(t, natsPort, 12)
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
	waitFor(t, "the spool to empty", func() bool { return g2.spoolDepth(t) == 0 })
	waitFor(t, "drained spool files to be deleted", func() bool {
		files, _ := filepath.Glob(filepath.Join(spoolDir, "*.spool"))
		return len(files) == 0
	})
}
