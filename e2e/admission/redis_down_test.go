package admission_test

import (
	"testing"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
)

// TestRedisDown: with Redis stopped, fail_closed answers Unavailable for
// every budgeted request; last_known admits, without a reservation, a
// request that fits under the last spend this instance saw of every counter
// (the same rule as with Redis up), naming the counters so the ledger
// charges them, and fails closed for one that would not fit or whose
// counters it never saw. Unbudgeted requests are admitted either way.
// When Redis returns empty, counters are reseeded and admission resumes.
func TestRedisDown(t *testing.T) {
	e := newEnv(t)
	closed := e.newInstance(nil)
	lastKnown := e.newInstance(func(c *budgetsvc.AdmissionConfig) { c.RedisFaultPolicy = "last_known" })
	createKey(t, closed.client, "k-down", "", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
	createKey(t, closed.client, "k-unseen", "", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
	createKey(t, closed.client, "k-nobudget", "")
	setBudget(t, closed.client, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_DEPLOYMENT, "d1", ""), LimitUsd: "1", Duration: "1d"})

	// Both instances see the counters once while Redis is up: $0.065 held.
	seen := admitted(t, admit(t, lastKnown.client, admitReq("up-1", "k-down", 10_000, 4_000)))
	admitted(t, admit(t, closed.client, admitReq("up-2", "k-unseen", 10_000, 4_000)))
	e.wantState(seen.CounterKeys[0], 0, est10k4k)

	e.in.StopRedis()
	_, err := closed.client.Admit(harness.Context(t), connect.NewRequest(admitReq("down-1", "k-down", 10_000, 4_000)))
	harness.WantCode(t, "fail_closed", err, connect.CodeUnavailable)

	a := admitted(t, admit(t, lastKnown.client, admitReq("down-2", "k-down", 10_000, 4_000)))
	if a.ReservationId != "" || a.ReservedNanos != 0 || len(a.CounterKeys) != 1 || a.CounterKeys[0] != seen.CounterKeys[0] ||
		len(a.CandidateCounters) != 1 || len(a.CandidateCounters[0].CounterKeys) != 1 || a.AllowedDeploymentIds[0] != "d1" {
		t.Fatalf("last_known admission: %v", a)
	}
	if b := a.Budgets[0]; b.SpentNanos != 0 || b.ReservedNanos != est10k4k || b.LimitNanos != usd {
		t.Fatalf("last known status: %v", b)
	}
	// Last known: 65,000,000 held; 65,000,000 + 940,000,000 > $1 — Redis
	// would deny it, so it is not admitted (prompt 336,000: 840,000,000 +
	// max_tokens 10,000: 100,000,000).
	_, err = lastKnown.client.Admit(harness.Context(t), connect.NewRequest(admitReq("down-3", "k-down", 336_000, 10_000)))
	harness.WantCode(t, "last_known over the limit", err, connect.CodeUnavailable)
	// What this instance admitted during the outage counts: 65,000,000
	// seen + 65,000,000 admitted (down-2) + 870,000,000 (prompt 308,000:
	// 770,000,000 + 10,000 × 10,000) is exactly the limit, within it; then
	// even 12,500 nanos (1 + 1 tokens) is not.
	_, err = lastKnown.client.Admit(harness.Context(t), connect.NewRequest(admitReq("down-4", "k-down", 334_000, 10_000)))
	harness.WantCode(t, "last_known, over with the outage's own admissions", err, connect.CodeUnavailable)
	admitted(t, admit(t, lastKnown.client, admitReq("down-4", "k-down", 308_000, 10_000)))
	_, err = lastKnown.client.Admit(harness.Context(t), connect.NewRequest(admitReq("down-4b", "k-down", 1, 1)))
	harness.WantCode(t, "last_known, full", err, connect.CodeUnavailable)
	// A counter this instance never saw fails closed.
	_, err = lastKnown.client.Admit(harness.Context(t), connect.NewRequest(admitReq("down-5", "k-unseen", 10, 10)))
	harness.WantCode(t, "last_known, never seen", err, connect.CodeUnavailable)
	// Nothing to enforce needs no Redis (d1's budget is a filter: without
	// a last known state of it, only an unbudgeted deployment may serve).
	free := admitReq("down-6", "k-nobudget", 10, 10)
	free.Candidates[0].DeploymentId = "d-unbudgeted"
	for _, c := range []budgetAPI{closed.client, lastKnown.client} {
		if a := admitted(t, admit(t, c, free)); len(a.CounterKeys) != 0 {
			t.Fatalf("unbudgeted: %v", a)
		}
	}
	_, err = closed.client.Admit(harness.Context(t), connect.NewRequest(admitReq("down-7", "k-nobudget", 10, 10)))
	harness.WantCode(t, "fail_closed, deployment budget", err, connect.CodeUnavailable)

	// Redis comes back without its data: counters are reseeded from the
	// (empty) ledger and admission resumes on both.
	e.in.StartRedis()
	for i, c := range []budgetAPI{closed.client, lastKnown.client} {
		a := admitted(t, admit(t, c, admitReq([]string{"back-1", "back-2"}[i], "k-down", 10_000, 4_000)))
		if a.ReservationId == "" {
			t.Fatalf("after Redis returned: %v", a)
		}
	}
	e.wantState(seen.CounterKeys[0], 0, 2*est10k4k)
}
