package redisstore_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// 16 instances reseed the same cold counter at once: one creates it, and
// the sum is in it once.
func testSeedRace(e *env) {
	k := e.key(scope.KindTeam, "cold")
	const sum = int64(777_000_000_123)
	var created atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			c, err := e.st.Seed(e.ctx, k, sum, "500:510:503,507", time.Now().Add(time.Hour))
			if err != nil {
				e.t.Error(err)
			}
			if c {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if created.Load() != 1 {
		e.t.Fatalf("created %d times, want 1", created.Load())
	}
	e.want(k, sum, 0)
	// A later seed with another sum changes nothing either.
	if c, err := e.st.Seed(e.ctx, k, 1, "600:600:", time.Now().Add(time.Hour)); c || err != nil {
		e.t.Fatalf("reseed of a live counter: %v %v", c, err)
	}
	e.want(k, sum, 0)
}

// Entries whose transaction is visible in the seed snapshot are in the seeded
// sum and must be skipped; the others are applied.
func testSeedSnapshot(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seedSnap(k, 1_000_000, "100:105:102")
	for i, c := range []struct {
		tx   uint64
		want redisstore.Outcome
	}{
		{99, redisstore.InSeed},  // below xmin: committed before
		{100, redisstore.InSeed}, // xmin, not in progress
		{102, redisstore.Direct}, // in progress at the snapshot
		{104, redisstore.InSeed}, // completed before the snapshot
		{105, redisstore.Direct}, // xmax: started after
		{1 << 40, redisstore.Direct},
	} {
		a := redisstore.Application{EventID: fmt.Sprintf("ev-%d", c.tx), StreamSeq: uint64(i + 1), TxID: c.tx, Cost: 10 << i, Keys: []string{k}}
		if got := e.apply(a); outcomes(got...) != outcomes(c.want) {
			e.t.Errorf("tx %d: %v, want %v", c.tx, got, c.want)
		}
	}
	e.want(k, 1_000_000+10<<2+10<<4+10<<5, 0)

	// xid8 values beyond 2^53, where doubles would round 2^53+1 to 2^53 and
	// call tx 2^53 "at xmax", are compared exactly.
	k2 := e.key(scope.KindKey, "big-xid")
	e.seedSnap(k2, 0, "9007199254740990:9007199254740993:9007199254740991")
	for i, c := range []struct {
		tx   uint64
		want redisstore.Outcome
	}{
		{9007199254740992, redisstore.InSeed},
		{9007199254740991, redisstore.Direct},
		{9007199254740993, redisstore.Direct},
		{math.MaxUint64, redisstore.Direct},
	} {
		a := redisstore.Application{EventID: fmt.Sprintf("ev-%d", c.tx), StreamSeq: uint64(i + 1), TxID: c.tx, Cost: 1, Keys: []string{k2}}
		if got := e.apply(a); outcomes(got...) != outcomes(c.want) {
			e.t.Errorf("tx %d: %v, want %v", c.tx, got, c.want)
		}
	}
	e.want(k2, 3, 0)
}

func testMissing(e *env) {
	present, absent := e.key(scope.KindKey, "present"), e.key(scope.KindTeam, "absent")
	e.seed(present, 5)
	r, err := e.st.Reserve(e.ctx, redisstore.ReserveRequest{ID: "r", Amount: 1, TTL: time.Minute,
		Counters: []redisstore.Counter{{Key: present, Limit: usd}, {Key: absent, Limit: usd}}})
	if err != nil || r.Admitted || r.Denied != -1 || fmt.Sprint(r.Missing) != "[1]" {
		e.t.Fatalf("reserve: %+v %v", r, err)
	}
	e.want(present, 5, 0)
	if e.rdb.HExists(e.ctx, present, "r:r").Val() { // the documented r:<id> field
		e.t.Fatal("present counter holds the reservation after a missing reserve")
	}
	if e.rdb.Exists(e.ctx, absent).Val() != 0 {
		e.t.Fatal("missing counter created by reserve")
	}

	a := redisstore.Application{EventID: "ev", StreamSeq: 3, TxID: 9, Cost: 100, Keys: []string{present, absent}, PruneFloor: 2}
	res, err := e.st.Apply(e.ctx, a)
	first, second := outcomes(redisstore.Skipped, redisstore.Missing), outcomes(redisstore.Direct, redisstore.Direct)
	if e.cluster {
		// Other slot, other call: the present counter is applied at once.
		first, second = outcomes(redisstore.Direct, redisstore.Missing), outcomes(redisstore.Duplicate, redisstore.Direct)
	}
	if err != nil || outcomes(res.Outcomes...) != first || fmt.Sprint(res.Missing()) != "[1]" || res.Done() {
		e.t.Fatalf("apply: %+v %v", res, err)
	}
	if !e.cluster {
		e.want(present, 5, 0)
		// Pins the documented layout: markers live in <counter>:m.
		if err := e.rdb.ZScore(e.ctx, present+":m", "ev").Err(); err != redis.Nil {
			e.t.Fatalf("apply with a missing counter wrote a marker (%v)", err)
		}
	}
	if e.rdb.Exists(e.ctx, absent, absent+":m").Val() != 0 {
		e.t.Fatal("apply created a missing counter")
	}
	// The caller reseeds and applies again; the cost lands once on each.
	e.seed(absent, 0)
	if got := e.apply(a); outcomes(got...) != second {
		e.t.Fatalf("apply after reseed: %v", got)
	}
	e.want(present, 105, 0)
	e.want(absent, 100, 0)
}

// Markers at or below the prune floor are deleted, lazily: once the floor
// has moved 1000 sequences past the counter's last prune.
func testMarkerPruning(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seed(k, 0)
	markers := k + ":m" // the documented layout
	apply := func(seq, floor uint64) redisstore.Outcome {
		return e.apply(redisstore.Application{EventID: fmt.Sprintf("ev-%d", seq), StreamSeq: seq, TxID: 50 + seq, Cost: 1, Keys: []string{k}, PruneFloor: floor})[0]
	}
	wantMarkers := func(want string) {
		e.t.Helper()
		if got := fmt.Sprint(e.rdb.ZRangeByScore(e.ctx, markers, &redis.ZRangeBy{Min: "(-inf", Max: "+inf"}).Val()); got != want { // past the sentinel
			e.t.Fatalf("markers %s, want %s", got, want)
		}
	}
	for seq := uint64(1001); seq <= 1005; seq++ {
		apply(seq, 0)
	}
	wantMarkers("[ev-1001 ev-1002 ev-1003 ev-1004 ev-1005]")
	if o := apply(1006, 1003); o != redisstore.Direct {
		e.t.Fatalf("seq 1006: %v", o)
	}
	wantMarkers("[ev-1004 ev-1005 ev-1006]")
	// Events above the floor still deduplicate.
	if o := apply(1005, 1004); o != redisstore.Duplicate {
		e.t.Fatalf("redelivered seq 1005: %v", o)
	}
	apply(1600, 1500) // less than 1000 past the last prune: kept
	wantMarkers("[ev-1004 ev-1005 ev-1006 ev-1600]")
	apply(2100, 2003)
	wantMarkers("[ev-2100]")
	e.want(k, 8, 0)
	if _, err := e.st.Apply(e.ctx, redisstore.Application{EventID: "ev-x", StreamSeq: 7, TxID: 1, Cost: 1, Keys: []string{k}, PruneFloor: 7}); !errors.Is(err, redisstore.ErrInvalid) {
		e.t.Fatalf("floor at the event's own seq: %v", err)
	}
}

func testExpiry(e *env) {
	k := e.key(scope.KindKey, "k")
	at := time.Now().Add(90 * time.Minute).Truncate(time.Millisecond)
	if c, err := e.st.Seed(e.ctx, k, 0, "1:1:", at); !c || err != nil {
		e.t.Fatal(c, err)
	}
	e.reserve("r", 1, time.Minute, redisstore.Counter{Key: k, Limit: usd})
	e.apply(redisstore.Application{EventID: "ev", StreamSeq: 1, TxID: 5, Cost: 1, Keys: []string{k}})
	// All three keys of the documented layout expire at the seed's time.
	for _, key := range []string{k, k + ":x", k + ":m"} {
		got, err := e.rdb.Do(e.ctx, "PEXPIRETIME", key).Int64()
		if err != nil || got != at.UnixMilli() {
			e.t.Errorf("PEXPIRETIME %s = %d %v, want %d", key, got, err, at.UnixMilli())
		}
	}
	// A companion lost on its own (only possible if Redis evicts keys, which
	// noeviction forbids) comes back with its sentinel and the counter's
	// expiry on the next write that notices.
	k3 := e.key(scope.KindKey, "lost")
	if c, err := e.st.Seed(e.ctx, k3, 0, "1:1:", at); !c || err != nil {
		e.t.Fatal(c, err)
	}
	e.rdb.Del(e.ctx, k3+":x", k3+":m")
	e.reserve("r", 1, time.Minute, redisstore.Counter{Key: k3, Limit: usd})
	e.apply(redisstore.Application{EventID: "ev", StreamSeq: 1, TxID: 5, Cost: 1, Keys: []string{k3}})
	for _, key := range []string{k3 + ":x", k3 + ":m"} {
		got, err := e.rdb.Do(e.ctx, "PEXPIRETIME", key).Int64()
		if err != nil || got != at.UnixMilli() {
			e.t.Errorf("repaired %s: PEXPIRETIME %d %v, want %d", key, got, err, at.UnixMilli())
		}
	}
	e.want(k3, 1, 1)

	// A window already over is not recreated.
	old := e.key(scope.KindKey, "old")
	if c, err := e.st.Seed(e.ctx, old, 5, "1:1:", time.Now().Add(-time.Second)); c || !errors.Is(err, redisstore.ErrExpired) {
		e.t.Fatalf("seed in the past: %v %v", c, err)
	}
	if e.rdb.Exists(e.ctx, old).Val() != 0 {
		e.t.Fatal("expired seed created the counter")
	}
	// And a counter whose time has come is gone, companions with it.
	short := e.key(scope.KindKey, "short")
	if c, err := e.st.Seed(e.ctx, short, 0, "1:1:", time.Now().Add(300*time.Millisecond)); !c || err != nil {
		e.t.Fatal(c, err)
	}
	e.reserve("r", 1, time.Hour, redisstore.Counter{Key: short, Limit: usd})
	e.apply(redisstore.Application{EventID: "ev", StreamSeq: 1, TxID: 5, Cost: 1, Keys: []string{short}})
	time.Sleep(400 * time.Millisecond)
	if n := e.rdb.Exists(e.ctx, short, short+":x", short+":m").Val(); n != 0 {
		e.t.Fatalf("%d keys of an expired counter remain", n)
	}
}

// Money is exact over the whole int64 range, not just below 2^53.
func testExactness(e *env) {
	k := e.key(scope.KindOrg, "huge")
	const spent = int64(1<<60 + 1) // a double would hold 2^60
	e.seed(k, spent)
	c := redisstore.Counter{Key: k, Limit: spent + 1000}
	if r := e.reserve("a", 999, time.Minute, c); !r.Admitted || r.States[0].Spent != spent {
		e.t.Fatalf("999 of 1000: %+v", r)
	}
	if r := e.reserve("b", 2, time.Minute, c); r.Admitted {
		e.t.Fatalf("one nano past the limit admitted: %+v", r)
	}
	if r := e.reserve("c", 1, time.Minute, c); !r.Admitted || r.States[0].Reserved != 1000 {
		e.t.Fatalf("exactly the limit: %+v", r)
	}
	e.apply(redisstore.Application{EventID: "ev", StreamSeq: 1, TxID: 5, Cost: 5, ReservationID: "a", Keys: []string{k}})
	e.want(k, spent+5, 1)

	// Limits up to MaxInt64 work; an int64 overflow is an error before any
	// write, in Apply and in its fallback alike.
	top := e.key(scope.KindOrg, "top")
	e.seed(top, math.MaxInt64-10)
	if r := e.reserve("r", 10, time.Minute, redisstore.Counter{Key: top, Limit: math.MaxInt64}); !r.Admitted {
		e.t.Fatalf("reserve to MaxInt64: %+v", r)
	}
	if r := e.reserve("r2", 1, time.Minute, redisstore.Counter{Key: top, Limit: math.MaxInt64}); r.Admitted {
		e.t.Fatalf("reserve past MaxInt64 admitted: %+v", r)
	}
	a := redisstore.Application{EventID: "ev", StreamSeq: 1, TxID: 5, Cost: 11, Keys: []string{top}}
	if _, err := e.st.ApplyWithFallback(e.ctx, a); err == nil {
		e.t.Fatal("overflowing apply succeeded")
	}
	e.want(top, math.MaxInt64-10, 10)
	if err := e.rdb.ZScore(e.ctx, top+":m", "ev").Err(); err != redis.Nil {
		e.t.Fatalf("failed apply wrote a marker (%v)", err)
	}
	neg := e.key(scope.KindOrg, "neg")
	e.seed(neg, math.MinInt64+3)
	e.apply(redisstore.Application{EventID: "ev", StreamSeq: 1, TxID: 5, Cost: -3, Keys: []string{neg}})
	e.want(neg, math.MinInt64, 0)
}

// Admission decisions agree with exact big-integer arithmetic, around 2^53
// (where the scripts switch from doubles to limbs) and near the int64 ends.
func testArithmetic(e *env) {
	rng := rand.New(rand.NewPCG(1, 2))
	near := func(c int64) int64 { return c + rng.Int64N(2001) - 1000 }
	pick := func() int64 {
		switch rng.IntN(5) {
		case 0:
			return near(1 << 53)
		case 1:
			return near(-(1 << 53))
		case 2:
			return near(math.MaxInt64/2 - 1000)
		case 3:
			return near(1e15)
		}
		return rng.Int64N(1 << 62)
	}
	for i := range 150 {
		k := e.key(scope.KindKey, fmt.Sprintf("n%d", i))
		spent, pre, amount := pick(), 1+rng.Int64N(1<<53), 1+rng.Int64N(1<<54)
		if spent > 0 && spent > math.MaxInt64-pre {
			pre = 1
		}
		e.seed(k, spent)
		if r := e.reserve("pre", pre, time.Minute, redisstore.Counter{Key: k, Limit: math.MaxInt64}); !r.Admitted || r.States[0].Reserved != pre || r.States[0].Spent != spent {
			e.t.Fatalf("#%d pre-reserve %d on spent %d: %+v", i, pre, spent, r)
		}
		total := new(big.Int).Add(big.NewInt(spent), big.NewInt(pre))
		total.Add(total, big.NewInt(amount))
		// A limit just at, or one below, the total.
		limit := new(big.Int).Sub(total, big.NewInt(rng.Int64N(2)))
		if !limit.IsInt64() || limit.Sign() < 0 {
			continue
		}
		want := total.Cmp(limit) <= 0
		r := e.reserve("req", amount, time.Minute, redisstore.Counter{Key: k, Limit: limit.Int64()})
		if r.Admitted != want {
			e.t.Fatalf("#%d spent %d + reserved %d + amount %d vs limit %v: admitted %v, want %v", i, spent, pre, amount, limit, r.Admitted, want)
		}
		wantReserved := pre
		if want {
			wantReserved += amount
		}
		e.want(k, spent, wantReserved)
	}
}

func testScan(e *env) {
	keys := map[string]bool{}
	for _, name := range []string{"a", "b", "c"} {
		k := e.key(scope.KindTag, name)
		keys[k] = true
		e.seed(k, 0)
		e.reserve("r", 1, time.Minute, redisstore.Counter{Key: k, Limit: usd})
		e.apply(redisstore.Application{EventID: "ev", StreamSeq: 1, TxID: 5, Cost: 1, Keys: []string{k}})
	}
	if err := e.rdb.Set(e.ctx, "not-a-counter", 1, time.Minute).Err(); err != nil {
		e.t.Fatal(err)
	}
	seen := map[string]int{}
	if err := e.st.ScanCounters(e.ctx, func(k string) error {
		if _, _, _, err := scope.ParseCounterKey(k); err != nil {
			return err
		}
		seen[k]++
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	for k := range keys {
		if seen[k] == 0 {
			e.t.Errorf("scan missed %s", k)
		}
	}
	stop := errors.New("stop")
	if err := e.st.ScanCounters(e.ctx, func(string) error { return stop }); !errors.Is(err, stop) {
		e.t.Fatalf("scan error from fn: %v", err)
	}
}

func testInvalid(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seed(k, 0)
	c := []redisstore.Counter{{Key: k, Limit: usd}}
	for name, req := range map[string]redisstore.ReserveRequest{
		"zero amount":     {ID: "r", Amount: 0, TTL: time.Minute, Counters: c},
		"negative amount": {ID: "r", Amount: -1, TTL: time.Minute, Counters: c},
		"no id":           {Amount: 1, TTL: time.Minute, Counters: c},
		"no ttl":          {ID: "r", Amount: 1, Counters: c},
		"no counters":     {ID: "r", Amount: 1, TTL: time.Minute},
		"duplicate":       {ID: "r", Amount: 1, TTL: time.Minute, Counters: append(c, c...)},
		"companion key":   {ID: "r", Amount: 1, TTL: time.Minute, Counters: []redisstore.Counter{{Key: k + ":x", Limit: 1}}},
		"negative limit":  {ID: "r", Amount: 1, TTL: time.Minute, Counters: []redisstore.Counter{{Key: k, Limit: -1}}},
	} {
		if _, err := e.st.Reserve(e.ctx, req); !errors.Is(err, redisstore.ErrInvalid) {
			e.t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := e.st.Apply(e.ctx, redisstore.Application{EventID: "e", StreamSeq: redisstore.MaxExactSeq + 1, TxID: 1, Keys: []string{k}}); !errors.Is(err, redisstore.ErrInvalid) {
		e.t.Errorf("seq above 2^53: %v", err)
	}
	if _, err := e.st.Seed(e.ctx, e.key(scope.KindKey, "x"), 0, "105:100:", time.Now().Add(time.Hour)); !errors.Is(err, redisstore.ErrInvalid) {
		e.t.Errorf("bad snapshot: %v", err)
	}
	e.want(k, 0, 0)
}
