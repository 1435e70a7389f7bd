package admission_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/redisstore"
)

// TestBinary runs the built budget binary (harness.StartStack, with
// -reservation-ttl 2s) over Connect: 64 concurrent Admits never reserve
// past $1, reservations expire at the configured TTL, Release twice is
// true then false, and a key×model budget on a decorated backend model is
// enforced (reference 001).
func TestBinary(t *testing.T) {
	st := harness.StartStack(t, harness.WithServiceArgs("budget", "--reservation-ttl", "2s"), harness.WithLogLevel("info"))
	c := budgetv1connect.NewBudgetServiceClient(&http.Client{Timeout: 10 * time.Second}, st.BudgetURL)
	opt, err := redis.ParseURL(st.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	e := &env{t: t, in: st.Infra, rdb: rdb, store: redisstore.New(rdb), seq: new(atomic.Uint64)}

	createKey(t, c, "k-bin", "", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
	var reqs []*budgetv1.AdmitRequest
	for i := range 64 {
		reqs = append(reqs, admitReq(fmt.Sprintf("bin-%d", i), "k-bin", 10_000, 4_000))
	}
	var adms []*budgetv1.Admission
	began := time.Now()
	for _, r := range admitAll(t, []budgetAPI{c}, reqs) {
		if a := r.GetAdmitted(); a != nil {
			adms = append(adms, a)
		}
	}
	if len(adms) != 15 {
		t.Fatalf("binary admitted %d; want floor(1e9 / 65,000,000) = 15", len(adms))
	}
	key := adms[0].CounterKeys[0]
	if time.Since(began) < 1900*time.Millisecond {
		e.wantState(key, 0, 15*est10k4k)
	}
	if exp := adms[0].ExpiresAt.AsTime(); exp.Before(began.Add(1900*time.Millisecond)) || exp.After(time.Now().Add(2100*time.Millisecond)) {
		t.Fatalf("expires at %v: not the 2s TTL from %v", exp, began)
	}
	// Settle one at $0.05: it stays spent; the rest expire at the TTL and
	// their room comes back: floor((1,000,000,000 - 50,000,000) / 65,000,000) = 14.
	e.settle(adms[0], "d1", 50_000_000)
	time.Sleep(2300 * time.Millisecond)
	n := 0
	var last *budgetv1.Admission
	for i := range 20 {
		if a := admit(t, c, admitReq(fmt.Sprintf("bin-after-%d", i), "k-bin", 10_000, 4_000)).GetAdmitted(); a != nil {
			n++
			last = a
		}
	}
	if n != 14 {
		t.Fatalf("after expiry admitted %d; want 14", n)
	}
	rel := func() bool {
		return harness.OK[budgetv1.ReleaseResponse](t, "release")(c.Release(harness.Context(t), connect.NewRequest(&budgetv1.ReleaseRequest{ReservationId: last.ReservationId, CounterKeys: last.CounterKeys}))).Released
	}
	if !rel() || rel() {
		t.Fatal("release twice: want true, then false")
	}
	if s := e.state(key); s.Spent != 50_000_000 || s.Live != 13*est10k4k {
		t.Fatalf("counter: %+v", s)
	}

	// Reference 001 on the binary: $0.035 estimates on vertex_ai/claude-opus-4-6@default
	// against a $0.10 key×model budget on claude-opus-4-6; $0.08 spent leaves no room.
	createKey(t, c, "k-bin-001", "")
	setBudget(t, c, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, "k-bin-001", "claude-opus-4-6"), LimitUsd: "0.10", Duration: "1d"})
	opus := func(id string) *budgetv1.AdmitRequest {
		return &budgetv1.AdmitRequest{RequestId: id, KeyId: "k-bin-001", ModelGroup: "claude-opus-4-6", PromptTokens: 1_000, MaxTokens: 1_000,
			Candidates: []*budgetv1.Candidate{{DeploymentId: "vx", Provider: "vertex_ai", BackendModel: "vertex_ai/claude-opus-4-6@default"}}}
	}
	a := admitted(t, admit(t, c, opus("o1")))
	e.settle(a, "vx", 80_000_000)
	d := denied(t, admit(t, c, opus("o2")), budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
	if d.Budget.SpentNanos != 80_000_000 || d.Budget.Scope.ModelGroup != "claude-opus-4-6" {
		t.Fatalf("denial: %v", d)
	}
}
