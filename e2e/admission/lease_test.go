package admission_test

import (
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
)

// TestLeasesAccountForEveryPart: under a large budget, one Redis
// reservation serves many admissions, each a part of its lease; parts are
// settled or released on their own (a release twice is a no-op), and once
// the leases close the counters hold exactly the parts still in flight and
// spent exactly what was settled, to the nano.
func TestLeasesAccountForEveryPart(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	in := e.newInstance(func(c *budgetsvc.AdmissionConfig) { c.Registerer = reg })
	createKey(t, in.client, "k-lease", "team-lease", &budgetv1.BudgetSpec{LimitUsd: "1000", Duration: "1d"})
	setBudget(t, in.client, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "team-lease", ""), LimitUsd: "1000", Duration: "1d"})

	const n = 400
	var reqs []*budgetv1.AdmitRequest
	for i := range n {
		reqs = append(reqs, admitReq(fmt.Sprintf("lease-%d", i), "k-lease", 1_000, 1_000))
	}
	var adms []*budgetv1.Admission
	seen := map[string]bool{}
	for round := range 4 { // 4 bursts of 100 concurrent requests
		for i, r := range admitAll(t, []budgetAPI{in.client}, reqs[round*100:(round+1)*100]) {
			a := admitted(t, r)
			wantReservation(t, a, reqs[round*100+i].RequestId)
			if seen[a.ReservationId] {
				t.Fatalf("reservation %q handed out twice", a.ReservationId)
			}
			seen[a.ReservationId] = true
			adms = append(adms, a)
		}
	}
	opened := int(counterValue(t, reg, "budget_leases_total"))
	if opened == 0 || opened*4 > n {
		t.Fatalf("%d leases for %d admissions; want at most a quarter as many", opened, n)
	}
	t.Logf("%d admissions out of %d leases", n, opened)

	// Settle half, release a quarter (twice), leave a quarter in flight.
	var spent, inFlight int64
	release := func(a *budgetv1.Admission) bool {
		t.Helper()
		return harness.OK[budgetv1.ReleaseResponse](t, "release")(in.client.Release(harness.Context(t), connect.NewRequest(&budgetv1.ReleaseRequest{ReservationId: a.ReservationId, CounterKeys: a.CounterKeys}))).Released
	}
	for i, a := range adms {
		switch i % 4 {
		case 0, 1:
			cost := est1k1k/2 + int64(i)
			e.settle(a, "d1", cost)
			spent += cost
		case 2:
			if !release(a) {
				t.Fatalf("first release of %s: false", a.ReservationId)
			}
			if release(a) {
				t.Fatalf("second release of %s: true", a.ReservationId)
			}
		default:
			inFlight += a.ReservedNanos
		}
	}
	for _, k := range adms[0].CounterKeys {
		harness.Eventually(t, 10*leaseMaxAge, "leases closed on "+k, func() (bool, string) {
			st := e.state(k)
			return st.Spent == spent && st.Reserved == inFlight && st.Held == inFlight, fmt.Sprintf("%+v; want spent %d, reserved %d", st, spent, inFlight)
		})
	}
}

// TestLeasesNeverPassTheLimit: two instances leasing one team budget under
// bursts of concurrent requests never hold or spend past its limit, and
// once their leases close, what a lease held back is admitted again: the
// budget fills to exactly floor(limit / estimate) admissions.
func TestLeasesNeverPassTheLimit(t *testing.T) {
	e := newEnv(t)
	a, b := e.newInstance(nil), e.newInstance(nil)
	clients := []budgetAPI{a.client, b.client}
	createKey(t, a.client, "k-lease-limit", "team-lease-limit")
	setBudget(t, a.client, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "team-lease-limit", ""), LimitUsd: "5", Duration: "1d"})
	const want = 5 * usd / est1k1k // 400

	var counter string
	n := 0
	for round := range 8 {
		var reqs []*budgetv1.AdmitRequest
		for i := range 64 {
			reqs = append(reqs, admitReq(fmt.Sprintf("limit-%d-%d", round, i), "k-lease-limit", 1_000, 1_000))
		}
		for i, r := range admitAll(t, clients, reqs) {
			if adm := r.GetAdmitted(); adm != nil {
				wantReservation(t, adm, reqs[i].RequestId)
				counter = adm.CounterKeys[0]
				n++
			}
		}
		if st := e.state(counter); st.Spent+st.Reserved > 5*usd || int64(n)*est1k1k > 5*usd {
			t.Fatalf("round %d: %d admitted, counter %+v: past the limit", round, n, st)
		}
	}
	// The leases close; then sequential requests fill the budget exactly.
	time.Sleep(2 * leaseMaxAge)
	for i := 0; ; i++ {
		r := admit(t, clients[i%2], admitReq(fmt.Sprintf("fill-%d", i), "k-lease-limit", 1_000, 1_000))
		if r.GetAdmitted() == nil {
			denied(t, r, budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
			break
		}
		n++
		if int64(n) > want {
			t.Fatalf("admitted %d; the limit holds %d", n, want)
		}
	}
	if int64(n) != want {
		t.Fatalf("admitted %d in all; want exactly %d", n, want)
	}
	harness.Eventually(t, 10*leaseMaxAge, "leases closed", func() (bool, string) {
		st := e.state(counter)
		return st.Reserved == want*est1k1k && st.Held == want*est1k1k, fmt.Sprintf("%+v", st)
	})
}

// counterValue reads the counter name from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestGrantsAreLeaseParts: a request asking for grant_parts gets a block of
// its lease's parts; parts the caller hands out settle and release like any
// other, the rest released as one part, and once the lease closes the
// counter holds exactly the parts still in flight.
func TestGrantsAreLeaseParts(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	createKey(t, in.client, "k-grant", "", &budgetv1.BudgetSpec{LimitUsd: "1000", Duration: "1d"})
	var reqs []*budgetv1.AdmitRequest
	for i := range 100 {
		reqs = append(reqs, admitReq(fmt.Sprintf("warm-%d", i), "k-grant", 1_000, 1_000))
	}
	var inFlight int64
	for _, r := range admitAll(t, []budgetAPI{in.client}, reqs) {
		if a := admitted(t, r); a.Grant != nil {
			t.Fatalf("a grant nobody asked for: %v", a.Grant)
		}
		inFlight += est1k1k
	}
	var a *budgetv1.Admission
	for i := 0; a.GetGrant() == nil; i++ { // until a lease has room for a block
		if i == 50 {
			t.Fatal("no grant after 50 requests asking for one")
		}
		r := admitReq(fmt.Sprintf("grant-%d", i), "k-grant", 1_000, 1_000)
		r.GrantParts = 16
		a = admitted(t, admit(t, in.client, r))
		inFlight += est1k1k
	}
	g := a.Grant
	lease, _, ok := redisstore.ParseLeasePart(a.ReservationId)
	if !ok || g.LeaseId != lease || g.Parts == 0 || g.Parts > 15 || g.HandOutFor.AsDuration() <= 0 || g.HandOutFor.AsDuration() > leaseMaxAge {
		t.Fatalf("grant %v with reservation %s", g, a.ReservationId)
	}
	// Hand out half the block (rounded up): settle one, release one (twice),
	// keep the others in flight; release the rest as the gateway would.
	used := (g.Parts + 1) / 2
	var spent int64
	for n := range used {
		part := proto.CloneOf(a)
		part.Grant = nil
		part.ReservationId = redisstore.LeasePart(g.LeaseId, g.FirstPart+uint64(n), a.ReservedNanos)
		switch n {
		case 0:
			e.settle(part, "d1", 7_000_000)
			spent += 7_000_000
		case 1:
			for i, want := range []bool{true, false} {
				rel := harness.OK[budgetv1.ReleaseResponse](t, "release")(in.client.Release(harness.Context(t), connect.NewRequest(&budgetv1.ReleaseRequest{ReservationId: part.ReservationId, CounterKeys: part.CounterKeys}))).Released
				if rel != want {
					t.Fatalf("release %d of a granted part: %v", i+1, rel)
				}
			}
		default:
			inFlight += a.ReservedNanos
		}
	}
	rest := redisstore.LeasePart(g.LeaseId, g.FirstPart+uint64(used), int64(g.Parts-used)*a.ReservedNanos)
	if g.Parts > used {
		harness.OK[budgetv1.ReleaseResponse](t, "release rest")(in.client.Release(harness.Context(t), connect.NewRequest(&budgetv1.ReleaseRequest{ReservationId: rest, CounterKeys: a.CounterKeys})))
	}
	e.wantState(a.CounterKeys[0], spent, inFlight)
}
