package redisstore_test

import (
	"time"

	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// A lease is reserved once and handed out in parts: settling a part takes
// its amount off the lease exactly once (redelivered, in a batch, or twice
// in one batch), releasing one does too (twice is a no-op), releasing the
// unused rest empties the lease, and the counter's reserved always equals
// what its reservations hold.
func testLeaseParts(e *env) {
	k1, k2 := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "t")
	e.seed(k1, 1_000)
	e.seed(k2, 2_000)
	cs := []redisstore.Counter{{Key: k1, Limit: usd}, {Key: k2, Limit: usd}}
	lease := redisstore.LeaseID("l1")
	if r := e.reserve(lease, 600_000_000, time.Minute, cs...); !r.Admitted {
		e.t.Fatalf("lease: %+v", r)
	}
	e.reserve("other", 3_000_000, time.Minute, cs...)
	p1 := redisstore.LeasePart(lease, 1, 100_000_000)
	p2 := redisstore.LeasePart(lease, 2, 200_000_000)
	p3 := redisstore.LeasePart(lease, 3, 50_000_000)
	p4 := redisstore.LeasePart(lease, 4, 70_000_000)
	keys := []string{k1, k2}

	// Part 1 settles once, however often its event comes.
	a1 := redisstore.Application{EventID: "ev-1", StreamSeq: 10, TxID: 900, Cost: 80_000_001, ReservationID: p1, Keys: keys}
	for i := range 3 {
		want := outcomes(redisstore.Settled, redisstore.Settled)
		if i > 0 {
			want = outcomes(redisstore.Duplicate, redisstore.Duplicate)
		}
		if got := outcomes(e.apply(a1)...); got != want {
			e.t.Fatalf("part 1 delivery %d: %v, want %v", i+1, got, want)
		}
		e.want(k1, 1_000+80_000_001, 503_000_000)
		e.want(k2, 2_000+80_000_001, 503_000_000)
	}

	// Parts 3 and 4 in one batch, part 3 twice: 120M taken, not 170M.
	a3 := redisstore.Application{EventID: "ev-3", StreamSeq: 11, TxID: 900, Cost: 7, ReservationID: p3, Keys: keys}
	a4 := redisstore.Application{EventID: "ev-4", StreamSeq: 12, TxID: 900, Cost: 9, ReservationID: p4, Keys: keys}
	got := e.applyBatch(a3, a4, a3)
	if g := outcomes(got[2]...); g != outcomes(redisstore.Duplicate, redisstore.Duplicate) {
		e.t.Fatalf("part 3 again in its batch: %v", g)
	}
	e.want(k1, 1_000+80_000_001+16, 383_000_000)
	e.want(k2, 2_000+80_000_001+16, 383_000_000)

	// Part 2's request failed: released once.
	for i, want := range []bool{true, false, false} {
		rel, err := e.st.Release(e.ctx, p2, keys)
		if err != nil || rel != want {
			e.t.Fatalf("release part 2 #%d: %v %v, want %v", i+1, rel, err, want)
		}
		e.want(k1, 1_000+80_000_001+16, 183_000_000)
	}

	// The lease closes: its unused rest (part 0) goes back, and with it the
	// lease's field; only "other" is left.
	rest := redisstore.LeasePart(lease, 0, 180_000_000)
	if rel, err := e.st.Release(e.ctx, rest, keys); err != nil || !rel {
		e.t.Fatalf("release rest: %v %v", rel, err)
	}
	e.want(k1, 1_000+80_000_001+16, 3_000_000)
	e.want(k2, 2_000+80_000_001+16, 3_000_000)
	if n, err := e.rdb.HExists(e.ctx, k1, "r:"+lease).Result(); err != nil || n {
		e.t.Fatalf("lease field after its rest was released: %v %v", n, err)
	}
	// An event of a part whose lease is gone is a direct increment.
	a5 := redisstore.Application{EventID: "ev-5", StreamSeq: 13, TxID: 900, Cost: 5, ReservationID: redisstore.LeasePart(lease, 5, 1), Keys: keys}
	if g := outcomes(e.apply(a5)...); g != outcomes(redisstore.Direct, redisstore.Direct) {
		e.t.Fatalf("part of a closed lease: %v", g)
	}
	e.want(k1, 1_000+80_000_001+21, 3_000_000)
}

// A part never takes more than its lease holds (a lease over-settled by
// mistake cannot make reserved hide another reservation), an event already
// in a counter's seed takes nothing from the lease (its other parts are
// live), and an expired lease's parts settle directly.
func testLeaseBounds(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seedSnap(k, 0, "100:200:150")
	c := redisstore.Counter{Key: k, Limit: usd}
	lease := redisstore.LeaseID("l2")
	e.reserve(lease, 100, time.Minute, c)
	e.reserve("other", 40, time.Minute, c)

	inSeed := redisstore.Application{EventID: "ev-seen", StreamSeq: 20, TxID: 99, Cost: 1_000, ReservationID: redisstore.LeasePart(lease, 1, 60), Keys: []string{k}}
	if g := outcomes(e.apply(inSeed)...); g != outcomes(redisstore.InSeed) {
		e.t.Fatalf("part in seed: %v", g)
	}
	e.want(k, 0, 140)

	big := redisstore.Application{EventID: "ev-big", StreamSeq: 21, TxID: 300, Cost: 3, ReservationID: redisstore.LeasePart(lease, 2, 250), Keys: []string{k}}
	if g := outcomes(e.apply(big)...); g != outcomes(redisstore.Settled) {
		e.t.Fatalf("oversized part: %v", g)
	}
	e.want(k, 3, 40)

	short := redisstore.LeaseID("l3")
	e.reserve(short, 500, 30*time.Millisecond, c)
	time.Sleep(80 * time.Millisecond)
	e.reserve("evicts", 1, time.Minute, c) // evicts the expired lease
	e.want(k, 3, 41)
	late := redisstore.Application{EventID: "ev-late", StreamSeq: 22, TxID: 300, Cost: 4, ReservationID: redisstore.LeasePart(short, 1, 200), Keys: []string{k}}
	if g := outcomes(e.apply(late)...); g != outcomes(redisstore.Direct) {
		e.t.Fatalf("part of an expired lease: %v", g)
	}
	if rel, err := e.st.Release(e.ctx, redisstore.LeasePart(short, 2, 100), []string{k}); err != nil || rel {
		e.t.Fatalf("release part of an expired lease: %v %v", rel, err)
	}
	e.want(k, 7, 41)
}
