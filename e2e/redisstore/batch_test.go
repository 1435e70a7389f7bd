package redisstore_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// The ApplyBatch tests mirror the Apply ones: the batch must mean exactly
// what one Apply per event, in order, means.

func (e *env) applyBatch(as ...redisstore.Application) [][]redisstore.Outcome {
	e.t.Helper()
	rs, err := e.st.ApplyBatch(e.ctx, as)
	if err != nil {
		e.t.Fatalf("apply batch: %v", err)
	}
	if len(rs) != len(as) {
		e.t.Fatalf("apply batch: %d results for %d events", len(rs), len(as))
	}
	out := make([][]redisstore.Outcome, len(rs))
	for i, r := range rs {
		if r.FallbackCause != nil {
			e.t.Fatalf("apply batch: fallback cause without fallback: %v", r.FallbackCause)
		}
		out[i] = r.Outcomes
	}
	return out
}

func batchOutcomes(rs []redisstore.ApplyResult) string {
	out := make([][]redisstore.Outcome, len(rs))
	for i, r := range rs {
		out[i] = r.Outcomes
	}
	return fmt.Sprint(out)
}

// Redelivered batches settle each event once; an event twice in one batch
// is a duplicate the second time; events sharing counters add up.
func testBatchSettlesOnce(e *env) {
	k1, k2, k3 := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "t"), e.key(scope.KindOrg, "o")
	e.seed(k1, 1_000)
	e.seed(k2, 2_000)
	e.seed(k3, 3_000)
	cs := []redisstore.Counter{{Key: k1, Limit: usd}, {Key: k2, Limit: usd}, {Key: k3, Limit: usd}}
	e.reserve("req-a", 50_000_000, time.Minute, cs[0], cs[1])
	e.reserve("req-b", 40_000_000, time.Minute, cs[1], cs[2])
	e.reserve("other", 3_000_000, time.Minute, cs...)
	a := redisstore.Application{EventID: "ev-a", StreamSeq: 42, TxID: 900, Cost: 37_123_456, ReservationID: "req-a", Keys: []string{k1, k2}}
	b := redisstore.Application{EventID: "ev-b", StreamSeq: 43, TxID: 900, Cost: 5, ReservationID: "req-b", Keys: []string{k2, k3}}
	c := redisstore.Application{EventID: "ev-c", StreamSeq: 44, TxID: 900, Cost: -7, Keys: []string{k3, k1, k2}}
	for i := range 4 {
		got := fmt.Sprint(e.applyBatch(a, b, a, c))
		want := fmt.Sprint([][]redisstore.Outcome{
			{redisstore.Settled, redisstore.Settled},
			{redisstore.Settled, redisstore.Settled},
			{redisstore.Duplicate, redisstore.Duplicate},
			{redisstore.Direct, redisstore.Direct, redisstore.Direct},
		})
		if i > 0 {
			want = fmt.Sprint([][]redisstore.Outcome{
				{redisstore.Duplicate, redisstore.Duplicate},
				{redisstore.Duplicate, redisstore.Duplicate},
				{redisstore.Duplicate, redisstore.Duplicate},
				{redisstore.Duplicate, redisstore.Duplicate, redisstore.Duplicate},
			})
		}
		if got != want {
			e.t.Fatalf("delivery %d: %v, want %v", i+1, got, want)
		}
		e.want(k1, 1_000+37_123_456-7, 3_000_000)
		e.want(k2, 2_000+37_123_456+5-7, 3_000_000)
		e.want(k3, 3_000+5-7, 3_000_000)
	}
	// Settled means released; and Apply agrees the events are applied.
	for _, id := range []string{"req-a", "req-b"} {
		if rel, err := e.st.Release(e.ctx, id, []string{k1, k2, k3}); err != nil || rel {
			e.t.Fatalf("release %s after settle: %v %v", id, rel, err)
		}
	}
	if got := e.apply(c); outcomes(got...) != outcomes(redisstore.Duplicate, redisstore.Duplicate, redisstore.Duplicate) {
		e.t.Fatalf("apply after batch: %v", got)
	}
	// And the other way round: a batch after Apply finds its marker.
	d := redisstore.Application{EventID: "ev-d", StreamSeq: 45, TxID: 901, Cost: 100, Keys: []string{k1}}
	e.apply(d)
	if got := fmt.Sprint(e.applyBatch(d)); got != fmt.Sprint([][]redisstore.Outcome{{redisstore.Duplicate}}) {
		e.t.Fatalf("batch after apply: %v", got)
	}
	e.want(k1, 1_000+37_123_456-7+100, 3_000_000)
}

// Without the reservation (released, none, unknown) an event is direct; a
// reservation an earlier event of the batch settled is gone for a later one.
func testBatchDirectWhenGone(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seed(k, 0)
	c := redisstore.Counter{Key: k, Limit: usd}
	e.reserve("released", 10_000_000, time.Minute, c)
	e.reserve("shared", 1_000, time.Minute, c)
	e.reserve("other", 20_000_000, time.Minute, c)
	if _, err := e.st.Release(e.ctx, "released", []string{k}); err != nil {
		e.t.Fatal(err)
	}
	got := fmt.Sprint(e.applyBatch(
		redisstore.Application{EventID: "ev-released", StreamSeq: 1, TxID: 10, Cost: 9_999_999, ReservationID: "released", Keys: []string{k}},
		redisstore.Application{EventID: "ev-none", StreamSeq: 2, TxID: 11, Cost: 1, Keys: []string{k}},
		redisstore.Application{EventID: "ev-unknown", StreamSeq: 3, TxID: 12, Cost: -2, ReservationID: "never", Keys: []string{k}},
		redisstore.Application{EventID: "ev-shared-1", StreamSeq: 4, TxID: 13, Cost: 10, ReservationID: "shared", Keys: []string{k}},
		redisstore.Application{EventID: "ev-shared-2", StreamSeq: 5, TxID: 14, Cost: 20, ReservationID: "shared", Keys: []string{k}},
	))
	want := fmt.Sprint([][]redisstore.Outcome{{redisstore.Direct}, {redisstore.Direct}, {redisstore.Direct}, {redisstore.Settled}, {redisstore.Direct}})
	if got != want {
		e.t.Fatalf("%v, want %v", got, want)
	}
	e.want(k, 9_999_999+1-2+10+20, 20_000_000) // the other reservation untouched
}

// The reconcile-failure path for batches: when the batch script fails, every
// cost still lands — once, not never, not twice — and reservations are
// released.
func testBatchFallback(e *env) {
	k1, k2 := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "t")
	e.seed(k1, 500)
	e.seed(k2, 0)
	cs := []redisstore.Counter{{Key: k1, Limit: usd}, {Key: k2, Limit: usd}}
	keys := []string{k1, k2}
	both := func(o redisstore.Outcome) []redisstore.Outcome { return []redisstore.Outcome{o, o} }

	// 1. The batch script never reaches Redis.
	broken, h := e.faultyStore(false, "apply_batch")
	e.reserve("req-1", 80_000_000, time.Minute, cs...)
	e.reserve("req-2", 1_000_000, time.Minute, cs[0])
	batch := []redisstore.Application{
		{EventID: "ev-1", StreamSeq: 7, TxID: 1000, Cost: 61_000_017, ReservationID: "req-1", Keys: keys},
		{EventID: "ev-2", StreamSeq: 8, TxID: 1000, Cost: 5, ReservationID: "req-2", Keys: []string{k1}},
	}
	for i := range 3 { // the batch is redelivered twice
		rs, err := broken.ApplyBatchWithFallback(e.ctx, batch)
		if err != nil {
			e.t.Fatalf("delivery %d: %v", i+1, err)
		}
		want := fmt.Sprint([][]redisstore.Outcome{both(redisstore.Direct), {redisstore.Direct}})
		if i > 0 {
			want = fmt.Sprint([][]redisstore.Outcome{both(redisstore.Duplicate), {redisstore.Duplicate}})
		}
		if got := batchOutcomes(rs); got != want {
			e.t.Fatalf("delivery %d: %v, want %v", i+1, got, want)
		}
		for _, r := range rs {
			if r.FallbackCause == nil || !r.Done() {
				e.t.Fatalf("delivery %d: %+v, want done via fallback", i+1, r)
			}
		}
		e.want(k1, 500+61_000_017+5, 0) // reservations released by the fallback
		e.want(k2, 61_000_017, 0)
	}
	if h.hits.Load() == 0 {
		e.t.Fatal("the fault never fired")
	}
	// The healthy paths agree: duplicates.
	if got := fmt.Sprint(e.applyBatch(batch...)); got != fmt.Sprint([][]redisstore.Outcome{both(redisstore.Duplicate), {redisstore.Duplicate}}) {
		e.t.Fatalf("healthy batch after fallback: %v", got)
	}
	if got := e.apply(batch[0]); outcomes(got...) != outcomes(redisstore.Duplicate, redisstore.Duplicate) {
		e.t.Fatalf("healthy apply after fallback: %v", got)
	}

	// 2. The batch script runs on Redis but its reply is lost: the fallback
	// finds the markers and adds nothing.
	lost, h2 := e.faultyStore(true, "apply_batch")
	// The hook learns the script's SHA from its first EVAL; on Cluster the
	// two slots' calls run at once, and one could reach Redis by EVALSHA
	// before the hook knows it. One call on a throwaway counter first.
	warm := e.key(scope.KindOrg, "warm-up")
	e.seed(warm, 0)
	if _, err := lost.ApplyBatchWithFallback(e.ctx, []redisstore.Application{{EventID: "ev-warm", StreamSeq: 1, TxID: 1, Cost: 1, Keys: []string{warm}}}); err != nil {
		e.t.Fatal(err)
	}
	e.reserve("req-3", 80_000_000, time.Minute, cs...)
	a3 := redisstore.Application{EventID: "ev-3", StreamSeq: 9, TxID: 1001, Cost: 3, ReservationID: "req-3", Keys: keys}
	rs, err := lost.ApplyBatchWithFallback(e.ctx, []redisstore.Application{a3})
	if err != nil || batchOutcomes(rs) != fmt.Sprint([][]redisstore.Outcome{both(redisstore.Duplicate)}) || rs[0].FallbackCause == nil || h2.hits.Load() == 0 {
		e.t.Fatalf("lost reply: %+v %v", rs, err)
	}
	e.want(k1, 500+61_000_017+5+3, 0)
	e.want(k2, 61_000_017+3, 0)

	// 3. ApplyDirectBatch leaves the reservation; a redelivery through the
	// healthy ApplyBatch releases it without counting the cost again.
	e.reserve("req-4", 80_000_000, time.Minute, cs...)
	a4 := redisstore.Application{EventID: "ev-4", StreamSeq: 10, TxID: 1002, Cost: 11, ReservationID: "req-4", Keys: keys}
	if rs, err := e.st.ApplyDirectBatch(e.ctx, []redisstore.Application{a4}); err != nil || batchOutcomes(rs) != fmt.Sprint([][]redisstore.Outcome{both(redisstore.Direct)}) {
		e.t.Fatalf("apply direct batch: %+v %v", rs, err)
	}
	e.want(k1, 500+61_000_017+5+3+11, 80_000_000)
	if got := fmt.Sprint(e.applyBatch(a4)); got != fmt.Sprint([][]redisstore.Outcome{both(redisstore.Duplicate)}) {
		e.t.Fatalf("apply batch after direct: %v", got)
	}
	e.want(k1, 500+61_000_017+5+3+11, 0)

	// 4. Both batch scripts failing is an error (the ledger retries event
	// by event), and nothing was written: the next delivery applies it.
	dead, _ := e.faultyStore(false, "apply_batch", "apply_direct_batch")
	a5 := redisstore.Application{EventID: "ev-5", StreamSeq: 11, TxID: 1003, Cost: 13, Keys: keys}
	if rs, err := dead.ApplyBatchWithFallback(e.ctx, []redisstore.Application{a5}); err == nil {
		e.t.Fatalf("both scripts failing: %+v, want an error", rs)
	}
	e.want(k1, 500+61_000_017+5+3+11, 0)
	if got := fmt.Sprint(e.applyBatch(a5)); got != fmt.Sprint([][]redisstore.Outcome{both(redisstore.Direct)}) {
		e.t.Fatalf("apply batch after double failure: %v", got)
	}
	e.want(k1, 500+61_000_017+5+3+11+13, 0)
}

// An event with a missing counter writes nothing on any of its counters
// (per slot group on Cluster); the other events of the batch are applied.
func testBatchMissing(e *env) {
	present, absent := e.key(scope.KindKey, "present"), e.key(scope.KindTeam, "absent")
	e.seed(present, 5)
	e.reserve("r", 7, time.Minute, redisstore.Counter{Key: present, Limit: usd})
	a := redisstore.Application{EventID: "ev-a", StreamSeq: 3, TxID: 9, Cost: 100, ReservationID: "r", Keys: []string{present, absent}, PruneFloor: 2}
	b := redisstore.Application{EventID: "ev-b", StreamSeq: 4, TxID: 9, Cost: 20, Keys: []string{present}, PruneFloor: 2}
	rs, err := e.st.ApplyBatch(e.ctx, []redisstore.Application{a, b})
	first := fmt.Sprint([][]redisstore.Outcome{{redisstore.Skipped, redisstore.Missing}, {redisstore.Direct}})
	second := fmt.Sprint([][]redisstore.Outcome{{redisstore.Settled, redisstore.Direct}})
	if e.cluster {
		// Other slot, other call: the present counter is applied at once.
		first = fmt.Sprint([][]redisstore.Outcome{{redisstore.Settled, redisstore.Missing}, {redisstore.Direct}})
		second = fmt.Sprint([][]redisstore.Outcome{{redisstore.Duplicate, redisstore.Direct}})
	}
	if err != nil || batchOutcomes(rs) != first || fmt.Sprint(rs[0].Missing()) != "[1]" || rs[0].Done() || !rs[1].Done() {
		e.t.Fatalf("apply batch: %s %v, want %s", batchOutcomes(rs), err, first)
	}
	if !e.cluster {
		e.want(present, 5+20, 7) // ev-b only; ev-a's reservation still held
		if err := e.rdb.ZScore(e.ctx, present+":m", "ev-a").Err(); err != redis.Nil {
			e.t.Fatalf("event with a missing counter wrote a marker (%v)", err)
		}
	}
	if e.rdb.Exists(e.ctx, absent, absent+":m").Val() != 0 {
		e.t.Fatal("apply batch created a missing counter")
	}
	// The caller reseeds and applies the unfinished event again; each cost
	// lands once on each counter.
	e.seed(absent, 0)
	if got := fmt.Sprint(e.applyBatch(a)); got != second {
		e.t.Fatalf("apply after reseed: %v, want %v", got, second)
	}
	e.want(present, 125, 0)
	e.want(absent, 100, 0)
}

// Seed snapshot visibility, event by event within one batch, exact for xid8
// beyond 2^53.
func testBatchInSeed(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seedSnap(k, 1_000_000, "100:105:102")
	k2 := e.key(scope.KindKey, "big-xid")
	e.seedSnap(k2, 0, "9007199254740990:9007199254740993:9007199254740991")
	cases := []struct {
		key  string
		tx   uint64
		want redisstore.Outcome
	}{
		{k, 99, redisstore.InSeed},  // below xmin: committed before
		{k, 100, redisstore.InSeed}, // xmin, not in progress
		{k, 102, redisstore.Direct}, // in progress at the snapshot
		{k, 104, redisstore.InSeed}, // completed before the snapshot
		{k, 105, redisstore.Direct}, // xmax: started after
		{k, 1 << 40, redisstore.Direct},
		{k2, 9007199254740992, redisstore.InSeed},
		{k2, 9007199254740991, redisstore.Direct},
		{k2, 9007199254740993, redisstore.Direct},
		{k2, math.MaxUint64, redisstore.Direct},
	}
	var as []redisstore.Application
	var want [][]redisstore.Outcome
	for i, c := range cases {
		as = append(as, redisstore.Application{EventID: fmt.Sprintf("ev-%d", c.tx), StreamSeq: uint64(i + 1), TxID: c.tx, Cost: 10 << i, Keys: []string{c.key}})
		want = append(want, []redisstore.Outcome{c.want})
	}
	if got := fmt.Sprint(e.applyBatch(as...)); got != fmt.Sprint(want) {
		e.t.Fatalf("%v, want %v", got, want)
	}
	e.want(k, 1_000_000+10<<2+10<<4+10<<5, 0)
	e.want(k2, 10<<7+10<<8+10<<9, 0)
	// ApplyDirectBatch makes the same decisions.
	k3 := e.key(scope.KindKey, "direct")
	e.seedSnap(k3, 0, "100:105:102")
	for i := range as {
		if as[i].Keys[0] != k {
			as = as[:i]
			break
		}
		as[i].Keys = []string{k3}
	}
	rs, err := e.st.ApplyDirectBatch(e.ctx, as)
	if err != nil || batchOutcomes(rs) != fmt.Sprint(want[:len(as)]) {
		e.t.Fatalf("direct: %s %v, want %v", batchOutcomes(rs), err, want[:len(as)])
	}
	e.want(k3, 10<<2+10<<4+10<<5, 0)
}

// Markers at or below the batch's smallest prune floor are deleted, lazily,
// before the batch's own markers are added.
func testBatchPruning(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seed(k, 0)
	markers := k + ":m"
	ev := func(seq, floor uint64) redisstore.Application {
		return redisstore.Application{EventID: fmt.Sprintf("ev-%d", seq), StreamSeq: seq, TxID: 50 + seq, Cost: 1, Keys: []string{k}, PruneFloor: floor}
	}
	wantMarkers := func(want string) {
		e.t.Helper()
		if got := fmt.Sprint(e.rdb.ZRangeByScore(e.ctx, markers, &redis.ZRangeBy{Min: "(-inf", Max: "+inf"}).Val()); got != want {
			e.t.Fatalf("markers %s, want %s", got, want)
		}
	}
	e.applyBatch(ev(1001, 0), ev(1002, 0), ev(1003, 0), ev(1004, 0), ev(1005, 0))
	wantMarkers("[ev-1001 ev-1002 ev-1003 ev-1004 ev-1005]")
	// The smallest floor of the batch (1003) applies.
	e.applyBatch(ev(1007, 1006), ev(1006, 1003))
	wantMarkers("[ev-1004 ev-1005 ev-1006 ev-1007]")
	if got := fmt.Sprint(e.applyBatch(ev(1005, 1004))); got != fmt.Sprint([][]redisstore.Outcome{{redisstore.Duplicate}}) {
		e.t.Fatalf("redelivered seq 1005: %v", got)
	}
	e.applyBatch(ev(1600, 1500)) // less than 1000 past the last prune: kept
	wantMarkers("[ev-1004 ev-1005 ev-1006 ev-1007 ev-1600]")
	e.applyBatch(ev(2100, 2003), ev(2101, 2050))
	wantMarkers("[ev-2100 ev-2101]")
	e.want(k, 10, 0)
	if _, err := e.st.ApplyBatch(e.ctx, []redisstore.Application{ev(2200, 0), ev(7, 7)}); !errors.Is(err, redisstore.ErrInvalid) {
		e.t.Fatalf("floor at an event's own seq: %v", err)
	}
	if _, err := e.st.ApplyBatch(e.ctx, []redisstore.Application{ev(2200, 0), {EventID: "x", StreamSeq: 1, TxID: 0, Keys: []string{k}}}); !errors.Is(err, redisstore.ErrInvalid) {
		e.t.Fatalf("tx id 0: %v", err)
	}
	wantMarkers("[ev-2100 ev-2101]") // an invalid batch writes nothing
}

// An int64 overflow fails the batch before it writes anything, in the batch
// script and its fallback alike; amounts beyond 2^53 accumulate exactly.
func testBatchExactness(e *env) {
	top := e.key(scope.KindOrg, "top")
	other := e.key(scope.KindOrg, "other")
	e.seed(top, math.MaxInt64-10)
	e.seed(other, 0)
	batch := []redisstore.Application{
		{EventID: "ev-ok", StreamSeq: 1, TxID: 5, Cost: 7, Keys: []string{other}},
		{EventID: "ev-1", StreamSeq: 2, TxID: 5, Cost: 6, Keys: []string{top}},
		{EventID: "ev-2", StreamSeq: 3, TxID: 5, Cost: 6, Keys: []string{top}}, // 12 > 10
	}
	if _, err := e.st.ApplyBatchWithFallback(e.ctx, batch); err == nil {
		e.t.Fatal("overflowing batch succeeded")
	}
	e.want(top, math.MaxInt64-10, 0)
	if err := e.rdb.ZScore(e.ctx, top+":m", "ev-1").Err(); err != redis.Nil {
		e.t.Fatalf("failed batch wrote a marker (%v)", err)
	}
	if !e.cluster {
		e.want(other, 0, 0) // same call: nothing written
	}
	// A later negative cost within the batch does not excuse the overflow on
	// the way (one Apply per event would fail too).
	batch[2].Cost = -6
	batch[1].Cost = 11
	if _, err := e.st.ApplyBatch(e.ctx, batch); err == nil {
		e.t.Fatal("intermediate overflow succeeded")
	}
	huge := e.key(scope.KindOrg, "huge")
	e.seed(huge, 1<<60+1)
	var as []redisstore.Application
	want := big.NewInt(1<<60 + 1)
	for i := range 50 {
		c := int64(1<<54 + i)
		as = append(as, redisstore.Application{EventID: fmt.Sprintf("h-%d", i), StreamSeq: uint64(10 + i), TxID: 5, Cost: c, Keys: []string{huge}})
		want.Add(want, big.NewInt(c))
	}
	e.applyBatch(as...)
	e.want(huge, want.Int64(), 0)
}

// Random batches (reservations, shared counters, redeliveries, amounts
// beyond 2^53, more events than one call takes) leave every counter exactly
// as one Apply per event, in order, leaves its twin, with the same outcomes.
func testBatchMatchesApply(e *env) {
	rng := rand.New(rand.NewPCG(3, 4))
	const counters = 6
	var batchKeys, applyKeys []string
	var cs, ct []redisstore.Counter
	for i := range counters {
		kind := []scope.Kind{scope.KindKey, scope.KindTeam, scope.KindOrg}[i%3]
		b, a := e.key(kind, fmt.Sprintf("b%d", i)), e.key(kind, fmt.Sprintf("a%d", i))
		spent := rng.Int64N(1 << 55)
		e.seedSnap(b, spent, "100:200:150")
		e.seedSnap(a, spent, "100:200:150")
		batchKeys, applyKeys = append(batchKeys, b), append(applyKeys, a)
		cs = append(cs, redisstore.Counter{Key: b, Limit: math.MaxInt64})
		ct = append(ct, redisstore.Counter{Key: a, Limit: math.MaxInt64})
	}
	var seq uint64
	for round := range 3 {
		n := []int{40, 200, redisstore.MaxBatchEvents + 60}[round]
		var batch, twin []redisstore.Application
		for i := range n {
			var a redisstore.Application
			if i > 0 && rng.IntN(8) == 0 {
				a = batch[rng.IntN(len(batch))] // redelivered in the same batch
			} else {
				seq++
				a = redisstore.Application{EventID: fmt.Sprintf("r%d-%d", round, i), StreamSeq: 1000 + seq, TxID: 100 + rng.Uint64N(200), Cost: rng.Int64N(1<<54) - 1<<50}
				perm := rng.Perm(counters)[:1+rng.IntN(3)]
				if rng.IntN(2) == 0 {
					a.ReservationID = fmt.Sprintf("res-%d-%d", round, rng.IntN(n/2+1))
					amount := 1 + rng.Int64N(1<<40)
					if rng.IntN(2) == 0 {
						// A part of one of a few leases, which the
						// lease's other parts also take from (and
						// some more than it holds).
						lease := redisstore.LeaseID(fmt.Sprintf("l%d-%d", round, rng.IntN(4)))
						a.ReservationID = redisstore.LeasePart(lease, seq, 1+rng.Int64N(1<<40))
						amount = 1 << 42
						var rb, ra []redisstore.Counter
						for _, p := range perm {
							rb, ra = append(rb, cs[p]), append(ra, ct[p])
						}
						e.reserve(lease, amount, time.Minute, rb...)
						e.reserve(lease, amount, time.Minute, ra...)
						for _, p := range perm {
							a.Keys = append(a.Keys, batchKeys[p])
						}
						batch = append(batch, a)
						continue
					}
					var rb, ra []redisstore.Counter
					for _, p := range perm {
						rb, ra = append(rb, cs[p]), append(ra, ct[p])
					}
					e.reserve(a.ReservationID, amount, time.Minute, rb...)
					e.reserve(a.ReservationID, amount, time.Minute, ra...)
				}
				for _, p := range perm {
					a.Keys = append(a.Keys, batchKeys[p])
				}
			}
			batch = append(batch, a)
		}
		// Floors below every event of the batch, as the ledger gives them.
		lo := batch[0].StreamSeq
		for _, a := range batch {
			lo = min(lo, a.StreamSeq)
		}
		for i := range batch {
			batch[i].PruneFloor = lo - 1 - uint64(rng.IntN(3))
			t := batch[i]
			t.Keys = nil
			for _, k := range batch[i].Keys {
				for j := range batchKeys {
					if batchKeys[j] == k {
						t.Keys = append(t.Keys, applyKeys[j])
					}
				}
			}
			twin = append(twin, t)
		}
		got := e.applyBatch(batch...)
		for i, a := range twin {
			want := e.apply(a)
			if fmt.Sprint(got[i]) != fmt.Sprint(want) {
				e.t.Fatalf("round %d event %d (%s): batch %v, apply %v", round, i, a.EventID, got[i], want)
			}
		}
		for i := range batchKeys {
			b, a := e.read(batchKeys[i])[0], e.read(applyKeys[i])[0]
			if b != a {
				e.t.Fatalf("round %d counter %d: batch %+v, apply %+v", round, i, b, a)
			}
		}
	}
}
