package admission_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
)

// oneByOne turns group commit off: every Reserve is its own script call.
func oneByOne(c *budgetsvc.AdmissionConfig) { c.ReserveBatch.Disabled = true }

// TestConcurrentAdmitsNeverPassTheLimit: 64 concurrent Admits of $0.065
// each (gpt-4o, 10,000 prompt tokens, max_tokens 4,000; est10k4k) against
// a $1 daily key budget. Exactly floor($1 / $0.065) = 15 are admitted,
// reserving 15 × 65,000,000 = 975,000,000 nanos ≤ $1; the other 49 are
// denied naming the key budget. Settling them at their actual cost (each
// under its estimate, as a real completion is) leaves spent = the sum of
// actual costs ≤ $1 and nothing reserved. Run with group commit (the
// default) and without.
func TestConcurrentAdmitsNeverPassTheLimit(t *testing.T) {
	e := newEnv(t)
	for name, tune := range map[string]func(*budgetsvc.AdmissionConfig){"group_commit": nil, "one_by_one": oneByOne} {
		t.Run(name, func(t *testing.T) {
			e := e.withT(t)
			in := e.newInstance(tune)
			key := "k-concurrent-" + name
			createKey(t, in.client, key, "", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
			var reqs []*budgetv1.AdmitRequest
			for i := range 64 {
				reqs = append(reqs, admitReq(fmt.Sprintf("%s-%d", name, i), key, 10_000, 4_000))
			}
			var adms []*budgetv1.Admission
			var counter string
			for _, r := range admitAll(t, []budgetAPI{in.client}, reqs) {
				if a := r.GetAdmitted(); a != nil {
					if a.ReservedNanos != est10k4k || a.ReservationId == "" || len(a.CounterKeys) != 1 {
						t.Fatalf("admission: %v", a)
					}
					counter = a.CounterKeys[0]
					adms = append(adms, a)
					continue
				}
				d := denied(t, r, budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
				if d.Budget.LimitNanos != usd || d.Budget.Scope.Kind != eventsv1.ScopeKind_SCOPE_KIND_KEY || d.Budget.Scope.Id != key ||
					d.Budget.SpentNanos != 0 || d.Budget.ReservedNanos+est10k4k <= usd {
					t.Fatalf("denial: %v", d)
				}
			}
			if want := int(usd / est10k4k); len(adms) != want {
				t.Fatalf("admitted %d; want floor(1e9 / %d) = %d", len(adms), est10k4k, want)
			}
			e.wantState(counter, 0, 15*est10k4k) // 975,000,000
			if 15*est10k4k > usd {
				t.Fatal("reserved past the limit")
			}
			// Settle: request i used 10,000 prompt and 4,000 - 100·i
			// completion tokens: 25,000,000 + (4,000 - 100·i) × 10,000.
			var total int64
			for i, a := range adms {
				cost := int64(10_000*gpt4oIn + (4_000-100*i)*gpt4oOut)
				total += cost
				e.settle(a, "d1", cost)
			}
			// Σ = 15 × 65,000,000 - 100 × 10,000 × (0 + 1 + ... + 14) = 975,000,000 - 105,000,000.
			if total != 870_000_000 || total > usd {
				t.Fatalf("settled total %d", total)
			}
			e.wantState(counter, 870_000_000, 0)
			// What is left admits exactly floor(130,000,000 / 65,000,000) = 2 more.
			n := 0
			for i := range 5 {
				if admit(t, in.client, admitReq(fmt.Sprintf("%s-after-%d", name, i), key, 10_000, 4_000)).GetAdmitted() != nil {
					n++
				}
			}
			if n != 2 {
				t.Fatalf("after settling: admitted %d more; want 2", n)
			}
			e.wantState(counter, 870_000_000, 2*est10k4k)
		})
	}
}

// TestReservationExpiryAndDoubleRelease: with a 400ms reservation TTL, a
// request that does not fit beside a live reservation fits once it has
// expired (Reserve evicts it first). Releasing twice: true, then false,
// and never an error; releasing the expired one is false too.
func TestReservationExpiryAndDoubleRelease(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(func(c *budgetsvc.AdmissionConfig) { c.ReservationTTL = 400 * time.Millisecond })
	createKey(t, in.client, "k-expiry", "", &budgetv1.BudgetSpec{LimitUsd: "0.1", Duration: "1d"})
	// $0.065 each against $0.10: one fits, two do not.
	a := admitted(t, admit(t, in.client, admitReq("first", "k-expiry", 10_000, 4_000)))
	if a.ExpiresAt.AsTime().Sub(time.Now()) > time.Second {
		t.Fatalf("expires at %v, want ~400ms from now", a.ExpiresAt.AsTime())
	}
	d := denied(t, admit(t, in.client, admitReq("second", "k-expiry", 10_000, 4_000)), budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
	if d.Budget.ReservedNanos != est10k4k || d.Budget.RemainingNanos != 100_000_000-est10k4k {
		t.Fatalf("denial: %v", d.Budget)
	}
	time.Sleep(500 * time.Millisecond)
	b := admitted(t, admit(t, in.client, admitReq("second", "k-expiry", 10_000, 4_000)))
	e.wantState(b.CounterKeys[0], 0, est10k4k) // the first was evicted, not added to

	release := func(id string, keys []string) bool {
		t.Helper()
		return harness.OK[budgetv1.ReleaseResponse](t, "release "+id)(in.client.Release(harness.Context(t), connect.NewRequest(&budgetv1.ReleaseRequest{ReservationId: id, CounterKeys: keys}))).Released
	}
	if release(a.ReservationId, a.CounterKeys) {
		t.Fatal("released an expired, evicted reservation")
	}
	if !release(b.ReservationId, b.CounterKeys) {
		t.Fatal("first release of a live reservation: false")
	}
	if release(b.ReservationId, b.CounterKeys) {
		t.Fatal("second release: true")
	}
	e.wantState(b.CounterKeys[0], 0, 0)
	_, err := in.client.Release(harness.Context(t), connect.NewRequest(&budgetv1.ReleaseRequest{ReservationId: "x", CounterKeys: []string{b.CounterKeys[0], b.CounterKeys[0]}}))
	harness.WantCode(t, "release naming a counter twice", err, connect.CodeInvalidArgument)
	_, err = in.client.Release(harness.Context(t), connect.NewRequest(&budgetv1.ReleaseRequest{ReservationId: strings.Repeat("r", 257), CounterKeys: b.CounterKeys}))
	harness.WantCode(t, "release with an over-long id", err, connect.CodeInvalidArgument)
}

// TestWindowRollover: a 30s calendar-aligned budget exhausted in one window
// admits again in the next; admission's clock is injected, Redis's is real.
func TestWindowRollover(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	// Start 1s into a fresh 30s window, so the test never straddles one.
	now := time.Now()
	in.clock.advance(now.Truncate(30 * time.Second).Add(30*time.Second + time.Second).Sub(now))
	createKey(t, in.client, "k-window", "", &budgetv1.BudgetSpec{LimitUsd: "0.1", Duration: "30s", CalendarAligned: true})
	// $0.0125 each (est1k1k) against $0.10: exactly 8 fit (100,000,000 / 12,500,000).
	var first *budgetv1.Admission
	for i := range 8 {
		a := admitted(t, admit(t, in.client, admitReq(fmt.Sprintf("w1-%d", i), "k-window", 1_000, 1_000)))
		if first == nil {
			first = a
		}
	}
	d := denied(t, admit(t, in.client, admitReq("w1-over", "k-window", 1_000, 1_000)), budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
	start, end := d.Budget.WindowStart.AsTime(), d.Budget.ResetsAt.AsTime()
	if end.Sub(start) != 30*time.Second || start.Unix()%30 != 0 || d.Budget.ReservedNanos != 8*est1k1k || d.Budget.RemainingNanos != 0 {
		t.Fatalf("denial: %v", d.Budget)
	}
	if !strings.Contains(d.Message, end.UTC().Format(time.RFC3339)) {
		t.Fatalf("denial message does not say when it resets: %s", d.Message)
	}
	e.settle(first, "d1", 5_000_000) // some real spend in window 1

	in.clock.advance(30 * time.Second)
	a := admitted(t, admit(t, in.client, admitReq("w2-0", "k-window", 1_000, 1_000)))
	if a.CounterKeys[0] == first.CounterKeys[0] {
		t.Fatalf("same counter in the next window: %s", a.CounterKeys[0])
	}
	_, _, i1, _ := scope.ParseCounterKey(first.CounterKeys[0])
	_, _, i2, _ := scope.ParseCounterKey(a.CounterKeys[0])
	if i2 != i1+1 || !a.Budgets[0].WindowStart.AsTime().Equal(end) {
		t.Fatalf("window %d after %d, starting %v", i2, i1, a.Budgets[0].WindowStart.AsTime())
	}
	e.wantState(a.CounterKeys[0], 0, est1k1k)
	e.wantState(first.CounterKeys[0], 5_000_000, 7*est1k1k)
	for i := 1; i < 8; i++ {
		admitted(t, admit(t, in.client, admitReq(fmt.Sprintf("w2-%d", i), "k-window", 1_000, 1_000)))
	}
	denied(t, admit(t, in.client, admitReq("w2-over", "k-window", 1_000, 1_000)), budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
}

// TestTwoInstancesOneBudget: two budget service instances sharing Redis and
// Postgres enforce one budget together, and a limit raised through one
// takes effect at once on both.
func TestTwoInstancesOneBudget(t *testing.T) {
	e := newEnv(t)
	a, b := e.newInstance(nil), e.newInstance(nil)
	clients := []budgetAPI{a.client, b.client}
	createKey(t, a.client, "k-shared", "team-shared")
	spec := &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "team-shared", ""), LimitUsd: "1", Duration: "1d"}
	setBudget(t, a.client, spec)

	// 64 concurrent $0.065 requests split across both: exactly 15 admitted.
	var reqs []*budgetv1.AdmitRequest
	for i := range 64 {
		reqs = append(reqs, admitReq(fmt.Sprintf("shared-%d", i), "k-shared", 10_000, 4_000))
	}
	var counter string
	n := 0
	perInstance := [2]int{}
	for i, r := range admitAll(t, clients, reqs) {
		if adm := r.GetAdmitted(); adm != nil {
			n++
			perInstance[i%2]++
			counter = adm.CounterKeys[0]
		}
	}
	if n != 15 {
		t.Fatalf("two instances admitted %d (%v); want 15", n, perInstance)
	}
	e.wantState(counter, 0, 15*est10k4k)
	t.Logf("admitted per instance: %v", perInstance)

	// Both deny now.
	for i, c := range clients {
		denied(t, admit(t, c, admitReq(fmt.Sprintf("full-%d", i), "k-shared", 10_000, 4_000)), budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
	}
	// Raise the limit to $2 through A: A sees it at once (its own write),
	// B within the notification's latency (its cache max age is an hour).
	spec.LimitUsd = "2"
	setBudget(t, a.client, spec)
	admitted(t, admit(t, a.client, admitReq("raised-a", "k-shared", 10_000, 4_000)))
	harness.Eventually(t, 5*time.Second, "B admits under the raised limit", func() (bool, string) {
		r := admit(t, b.client, admitReq("raised-b", "k-shared", 10_000, 4_000))
		return r.GetAdmitted() != nil, r.GetDenied().GetMessage()
	})
	e.wantState(counter, 0, 17*est10k4k)
	// The rest of the raised limit, concurrently across both: exactly
	// floor((2,000,000,000 - 1,105,000,000) / 65,000,000) = 13 more.
	reqs = reqs[:0]
	for i := range 32 {
		reqs = append(reqs, admitReq(fmt.Sprintf("more-%d", i), "k-shared", 10_000, 4_000))
	}
	n = 0
	for _, r := range admitAll(t, clients, reqs) {
		if r.GetAdmitted() != nil {
			n++
		}
	}
	if n != 13 {
		t.Fatalf("admitted %d after raising; want 13", n)
	}
	e.wantState(counter, 0, 30*est10k4k) // 1,950,000,000 ≤ 2,000,000,000
}

// TestIdempotentPerRequestID: the same request_id admitted twice (and eight
// times concurrently) reserves once.
func TestIdempotentPerRequestID(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	createKey(t, in.client, "k-idem", "", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
	a1 := admitted(t, admit(t, in.client, admitReq("same", "k-idem", 10_000, 4_000)))
	a2 := admitted(t, admit(t, in.client, admitReq("same", "k-idem", 10_000, 4_000)))
	if a2.ReservationId != a1.ReservationId || a2.Budgets[0].ReservedNanos != est10k4k {
		t.Fatalf("retry: %v / %v", a1, a2)
	}
	wantReservation(t, a1, "same")
	e.wantState(a1.CounterKeys[0], 0, est10k4k)
	var reqs []*budgetv1.AdmitRequest
	for range 8 {
		reqs = append(reqs, admitReq("burst", "k-idem", 10_000, 4_000))
	}
	var burst string
	for _, r := range admitAll(t, []budgetAPI{in.client}, reqs) {
		a := admitted(t, r)
		wantReservation(t, a, "burst")
		if burst == "" {
			burst = a.ReservationId
		}
		if a.ReservationId != burst {
			t.Fatalf("burst: %v, another got %q", r, burst)
		}
	}
	e.wantState(a1.CounterKeys[0], 0, 2*est10k4k)
}
