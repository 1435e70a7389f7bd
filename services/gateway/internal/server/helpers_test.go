package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/budget"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/router"
	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

const (
	userKey   = "sk-user-key"
	masterKey = "sk-master"
)

func hash(k string) string {
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:])
}

// fakeBudget is an in-memory budget service.
type fakeBudget struct {
	mu       sync.Mutex
	keys     map[string]*budgetv1.Key
	authErr  error
	admitFn  func(*budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error)
	admits   []*budgetv1.AdmitRequest
	released []string
	n        int
}

func newFakeBudget() *fakeBudget {
	return &fakeBudget{keys: map[string]*budgetv1.Key{
		hash(userKey): {KeyId: "key-1", TeamId: "team-1", UserId: "user-1", OrgId: "org-1", Tags: []string{"prod"}},
	}}
}

func (f *fakeBudget) Authenticate(_ context.Context, h string) (*budgetv1.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.authErr != nil {
		return nil, f.authErr
	}
	k, ok := f.keys[h]
	if !ok {
		return nil, &budget.Error{Kind: budget.KindInvalidKey, Op: "authenticate", Err: fmt.Errorf("unknown key")}
	}
	return k, nil
}

// admitAll admits with every candidate allowed and a key budget at $1.50 spent.
func admitAll(n int, req *budgetv1.AdmitRequest) *budgetv1.AdmitResponse {
	var ids []string
	var perCandidate []*budgetv1.CandidateCounters
	for _, c := range req.Candidates {
		ids = append(ids, c.DeploymentId)
		perCandidate = append(perCandidate, &budgetv1.CandidateCounters{
			DeploymentId: c.DeploymentId, CounterKeys: []string{"counter-of-" + c.DeploymentId}})
	}
	return &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: &budgetv1.Admission{
		ReservationId: fmt.Sprintf("res-%d", n), ReservedNanos: 42_000, AllowedDeploymentIds: ids,
		CounterKeys: []string{"counter-key-1"}, CandidateCounters: perCandidate,
		Budgets: []*budgetv1.BudgetStatus{
			{Scope: &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_TEAM, Id: "team-1"}, SpentNanos: 9},
			{Scope: &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY, Id: "key-1"}, SpentNanos: 1_500_000_000, LimitNanos: 10_000_000_000},
		},
	}}}
}

func (f *fakeBudget) Admit(_ context.Context, req *budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.admits = append(f.admits, req)
	if f.admitFn != nil {
		return f.admitFn(req)
	}
	return admitAll(f.n, req), nil
}

func (f *fakeBudget) Release(_ context.Context, id string, _ []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, id)
	return nil
}

func (f *fakeBudget) releasedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.released)
}

func (f *fakeBudget) lastAdmit() *budgetv1.AdmitRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.admits[len(f.admits)-1]
}

type fakePub struct {
	mu  sync.Mutex
	evs []*eventsv1.UsageRecorded
}

func (p *fakePub) Publish(ev *eventsv1.UsageRecorded) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, ev)
}

func (p *fakePub) events() []*eventsv1.UsageRecorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.evs)
}

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type rig struct {
	url    string
	budget *fakeBudget
	pub    *fakePub
	reg    *prometheus.Registry
}

func newRig(t testing.TB, yaml string) *rig {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cat, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	set, _, err := deploy.Build(cfg, cat, upstream.NewHTTPClient(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := deploy.RouterSettings(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	rs.RetryBackoff = 0
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	rt := router.New(set.RouterDeployments(), rs, router.WithRand(rand.New(rand.NewPCG(7, 7))), router.WithHooks(m.RouterHooks()))
	r := &rig{budget: newFakeBudget(), pub: &fakePub{}, reg: reg}
	s := New(Config{
		Set: set, Router: rt, Budget: r.budget, Publisher: r.pub, Metrics: m,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MasterKey: cfg.GeneralSettings.MasterKey, GatewayID: "gw-test",
		Now:   func() time.Time { return fixedNow },
		Ready: func(context.Context) map[string]error { return nil },
	})
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *rig) post(t *testing.T, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// openAIError checks an OpenAI-shaped error body and returns it.
func openAIError(t *testing.T, b []byte) (msg, typ, code string) {
	t.Helper()
	var v map[string]map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("error body %s: %v", b, err)
	}
	e, ok := v["error"]
	if !ok || len(v) != 1 {
		t.Fatalf("error body %s: want exactly {\"error\":{...}}", b)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("error body %s lacks %q", b, k)
		}
	}
	msg, _ = e["message"].(string)
	typ, _ = e["type"].(string)
	code, _ = e["code"].(string)
	if msg == "" || typ == "" {
		t.Fatalf("error body %s: empty message or type", b)
	}
	return msg, typ, code
}

// sseEvents splits an SSE body into its data payloads.
func sseEvents(b []byte) []string {
	var out []string
	for _, ev := range strings.Split(string(b), "\n\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(ev), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitEvents waits for n usage events: an event is handed over after the
// client has its response, so a test may read the response first.
func (r *rig) waitEvents(t *testing.T, n int) []*eventsv1.UsageRecorded {
	t.Helper()
	eventually(t, fmt.Sprintf("%d usage events", n), func() bool { return len(r.pub.events()) >= n })
	return r.pub.events()
}
