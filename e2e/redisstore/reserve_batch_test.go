package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/e2e/harness"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// ReserveBatch (group commit) must decide every request exactly as Reserve
// would, one after the other in the batch's order. These tests hold it to
// that: by construction (fixed cases asserted to the nano) and by
// difference (random workloads run through ReserveBatch on one Redis
// database and through Reserve, request by request, on another; every
// decision and every stored field must match).

func TestReserveBatch(t *testing.T) {
	in := harness.StartInfra(t)
	client := func(db int) *redis.Client {
		opt, err := redis.ParseURL(in.RedisURL)
		if err != nil {
			t.Fatal(err)
		}
		opt.DB, opt.PoolSize = db, 64
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}
	rdb := client(0)
	st := redisstore.New(rdb)
	for _, tc := range []struct {
		name string
		fn   func(*env)
	}{
		{"NeverPassesLimit", testBatchReserveLimit},
		{"IdempotentWithinAndAcrossBatches", testBatchReserveIdempotent},
		{"ExpiredReservationsEvicted", testBatchReserveExpiry},
		{"MissingCounter", testBatchReserveMissing},
		{"ErrorsStayWithTheirRequest", testBatchReserveErrors},
		{"ExactBeyond10To15", testBatchReserveLarge},
		{"SplitsLongBatches", testBatchReserveSplit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tc.fn(&env{t: t, ctx: ctx, rdb: rdb, st: st, id: strings.ToLower(tc.name)})
		})
	}
	t.Run("MatchesReserveInOrder", func(t *testing.T) {
		for seed := range uint64(6) {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				a, b := client(1), client(2)
				ctx := context.Background()
				a.FlushDB(ctx)
				b.FlushDB(ctx)
				differential(t, seed, a, b)
			})
		}
	})
}

// TestReserveBatchCluster: on Redis Cluster ReserveBatch is Reserve per
// request, so a batch across slots keeps Reserve's slot-by-slot semantics.
func TestReserveBatchCluster(t *testing.T) {
	cc := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := &env{t: t, ctx: ctx, rdb: cc, st: redisstore.New(cc), id: "cluster", cluster: true}
	testBatchReserveLimit(e)
	k1, k2 := e.key(scope.KindKey, "x1"), e.key(scope.KindTeam, "x2")
	e.seed(k1, 0)
	e.seed(k2, 900)
	rs := e.st.ReserveBatch(ctx, []redisstore.ReserveRequest{
		{ID: "a", Amount: 100, TTL: time.Minute, Counters: []redisstore.Counter{{Key: k1, Limit: 1000}, {Key: k2, Limit: 1000}}},
		{ID: "b", Amount: 100, TTL: time.Minute, Counters: []redisstore.Counter{{Key: k1, Limit: 1000}, {Key: k2, Limit: 1000}}},
	})
	admitted := 0
	for _, r := range rs {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Admitted {
			admitted++
		}
	}
	if admitted != 1 {
		t.Fatalf("admitted %d of two 100-nano requests with 100 nanos left: %+v", admitted, rs)
	}
	e.want(k1, 0, 100)
	e.want(k2, 900, 100)
}

func (e *env) batch(reqs ...redisstore.ReserveRequest) []redisstore.ReserveBatchResult {
	e.t.Helper()
	rs := e.st.ReserveBatch(e.ctx, reqs)
	if len(rs) != len(reqs) {
		e.t.Fatalf("reserve batch: %d results for %d requests", len(rs), len(reqs))
	}
	return rs
}

// 64 requests of 0.025 USD in one batch over six counters, the binding one
// a 1 USD budget with 0.123456789 USD spent: exactly
// floor((1 - 0.123456789) / 0.025) = 35 are admitted (the first 35: the
// batch is decided in order), the others denied naming that counter.
func testBatchReserveLimit(e *env) {
	var cs []redisstore.Counter
	for _, kind := range []scope.Kind{scope.KindKey, scope.KindTeam, scope.KindUser, scope.KindOrg, scope.KindTag, scope.KindKeyModel} {
		k := e.key(kind, "limit")
		spent, limit := int64(0), 1000*usd
		if kind == scope.KindTeam {
			spent, limit = 123_456_789, usd
		}
		e.seed(k, spent)
		cs = append(cs, redisstore.Counter{Key: k, Limit: limit})
	}
	const est = 25_000_000
	var reqs []redisstore.ReserveRequest
	for i := range 64 {
		reqs = append(reqs, redisstore.ReserveRequest{ID: fmt.Sprintf("r%d", i), Amount: est, TTL: time.Minute, Counters: cs})
	}
	rs := e.batch(reqs...)
	for i, r := range rs {
		if r.Err != nil {
			e.t.Fatalf("request %d: %v", i, r.Err)
		}
		if want := i < 35; r.Admitted != want || (!want && r.Denied != 1) {
			e.t.Fatalf("request %d: admitted %v denied %d; want admitted %v (denied by the team counter)", i, r.Admitted, r.Denied, want)
		}
		if i == 34 && (r.States[1].Spent != 123_456_789 || r.States[1].Reserved != 35*est) {
			e.t.Fatalf("last admitted saw %+v", r.States[1])
		}
		if r.Admitted && r.ExpiresAt.Before(time.Now().Add(50*time.Second)) {
			e.t.Fatalf("request %d expires at %v", i, r.ExpiresAt)
		}
	}
	e.want(cs[1].Key, 123_456_789, 35*est)
	for _, c := range append(cs[:1:1], cs[2:]...) {
		e.want(c.Key, 0, 35*est)
	}
	if r := e.read(cs[1].Key)[0]; r.Spent+r.Reserved > usd {
		e.t.Fatalf("team passed its limit: %+v", r)
	}
}

// A request repeating an ID (in the same batch or a later one) charges no
// counter twice; one with an extra counter charges only that one.
func testBatchReserveIdempotent(e *env) {
	k1, k2 := e.key(scope.KindKey, "a"), e.key(scope.KindTeam, "b")
	e.seed(k1, 0)
	e.seed(k2, 0)
	c1, c2 := redisstore.Counter{Key: k1, Limit: usd}, redisstore.Counter{Key: k2, Limit: usd}
	rs := e.batch(
		redisstore.ReserveRequest{ID: "x", Amount: 300, TTL: time.Minute, Counters: []redisstore.Counter{c1}},
		redisstore.ReserveRequest{ID: "x", Amount: 300, TTL: time.Minute, Counters: []redisstore.Counter{c1}},
		redisstore.ReserveRequest{ID: "x", Amount: 300, TTL: time.Minute, Counters: []redisstore.Counter{c1, c2}},
		redisstore.ReserveRequest{ID: "y", Amount: 5, TTL: time.Minute, Counters: []redisstore.Counter{c2}},
	)
	for i, r := range rs {
		if r.Err != nil || !r.Admitted {
			e.t.Fatalf("request %d: %+v", i, r)
		}
	}
	if rs[1].States[0].Reserved != 300 || rs[2].States[1].Reserved != 300 || rs[3].States[0].Reserved != 305 {
		e.t.Fatalf("states: %+v", rs)
	}
	e.want(k1, 0, 300)
	e.want(k2, 0, 305)
	// Across batches too, and a Release then frees it all.
	e.batch(redisstore.ReserveRequest{ID: "x", Amount: 300, TTL: time.Minute, Counters: []redisstore.Counter{c1, c2}})
	e.want(k1, 0, 300)
	e.want(k2, 0, 305)
	if rel, err := e.st.Release(e.ctx, "x", []string{k1, k2}); err != nil || !rel {
		e.t.Fatalf("release: %v %v", rel, err)
	}
	e.want(k1, 0, 0)
	e.want(k2, 0, 5)
}

// An expired reservation is evicted before a batch's requests are checked,
// and a request fits once it is.
func testBatchReserveExpiry(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seed(k, 100_000_000)
	c := []redisstore.Counter{{Key: k, Limit: usd}}
	rs := e.batch(
		redisstore.ReserveRequest{ID: "short", Amount: 600_000_000, TTL: 50 * time.Millisecond, Counters: c},
		redisstore.ReserveRequest{ID: "big", Amount: 600_000_000, TTL: time.Minute, Counters: c},
	)
	if !rs[0].Admitted || rs[1].Admitted || rs[1].Denied != 0 {
		e.t.Fatalf("short admitted, big denied: %+v", rs)
	}
	time.Sleep(120 * time.Millisecond)
	rs = e.batch(
		redisstore.ReserveRequest{ID: "big", Amount: 600_000_000, TTL: time.Minute, Counters: c},
		redisstore.ReserveRequest{ID: "over", Amount: 300_000_001, TTL: time.Minute, Counters: c},
		redisstore.ReserveRequest{ID: "fits", Amount: 300_000_000, TTL: time.Minute, Counters: c},
	)
	if !rs[0].Admitted || rs[0].States[0].Reserved != 600_000_000 || rs[1].Admitted || !rs[2].Admitted {
		e.t.Fatalf("after expiry: %+v", rs)
	}
	e.want(k, 100_000_000, 900_000_000)
	if rel, err := e.st.Release(e.ctx, "short", []string{k}); err != nil || rel {
		e.t.Fatalf("release evicted: %v %v", rel, err)
	}
}

// A missing counter: its requests report it and hold nothing; the others
// are decided.
func testBatchReserveMissing(e *env) {
	k, gone := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "gone")
	e.seed(k, 0)
	c, g := redisstore.Counter{Key: k, Limit: usd}, redisstore.Counter{Key: gone, Limit: usd}
	rs := e.batch(
		redisstore.ReserveRequest{ID: "a", Amount: 10, TTL: time.Minute, Counters: []redisstore.Counter{c}},
		redisstore.ReserveRequest{ID: "b", Amount: 20, TTL: time.Minute, Counters: []redisstore.Counter{c, g}},
		redisstore.ReserveRequest{ID: "c", Amount: 30, TTL: time.Minute, Counters: []redisstore.Counter{c}},
	)
	if !rs[0].Admitted || rs[1].Admitted || !slices.Equal(rs[1].Missing, []int{1}) || !rs[2].Admitted || rs[2].States[0].Reserved != 40 {
		e.t.Fatalf("missing: %+v", rs)
	}
	e.want(k, 0, 40)
	if n, _ := e.rdb.Exists(e.ctx, gone).Result(); n != 0 {
		e.t.Fatal("a missing counter was created")
	}
}

// Invalid requests and requests on a corrupt counter get their own error
// and write nothing; the rest of the batch is decided.
func testBatchReserveErrors(e *env) {
	k, bad := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "bad")
	e.seed(k, 0)
	e.seed(bad, 0)
	if err := e.rdb.HSet(e.ctx, bad, "spent", "twelve").Err(); err != nil {
		e.t.Fatal(err)
	}
	c, b := redisstore.Counter{Key: k, Limit: usd}, redisstore.Counter{Key: bad, Limit: usd}
	rs := e.batch(
		redisstore.ReserveRequest{ID: "ok1", Amount: 10, TTL: time.Minute, Counters: []redisstore.Counter{c}},
		redisstore.ReserveRequest{ID: "dup", Amount: 10, TTL: time.Minute, Counters: []redisstore.Counter{c, c}},
		redisstore.ReserveRequest{ID: "zero", Amount: 0, TTL: time.Minute, Counters: []redisstore.Counter{c}},
		redisstore.ReserveRequest{ID: "corrupt", Amount: 10, TTL: time.Minute, Counters: []redisstore.Counter{c, b}},
		redisstore.ReserveRequest{ID: "ok2", Amount: 20, TTL: time.Minute, Counters: []redisstore.Counter{c}},
	)
	if rs[0].Err != nil || !rs[0].Admitted || rs[4].Err != nil || !rs[4].Admitted || rs[4].States[0].Reserved != 30 {
		e.t.Fatalf("valid requests: %+v", rs)
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(rs[i].Err, redisstore.ErrInvalid) {
			e.t.Fatalf("request %d: %v, want ErrInvalid", i, rs[i].Err)
		}
	}
	if rs[3].Err == nil || !strings.Contains(rs[3].Err.Error(), "not an int64") {
		e.t.Fatalf("corrupt counter: %v", rs[3].Err)
	}
	e.want(k, 0, 30)
	if v, _ := e.rdb.HGet(e.ctx, bad, "reserved").Result(); v != "0" {
		e.t.Fatalf("corrupt counter written: reserved %q", v)
	}
}

// Amounts at and beyond 10^15 (off the overlay's fast path) and limits
// beyond 2^53 are exact, and mix with fast requests on the same counters.
func testBatchReserveLarge(e *env) {
	k := e.key(scope.KindOrg, "big")
	e.seed(k, 9_000_000_000_000_000)        // 9M USD spent
	limit := int64(209_000_000_000_000_000) // 209M USD
	c := []redisstore.Counter{{Key: k, Limit: limit}}
	rs := e.batch(
		redisstore.ReserveRequest{ID: "s1", Amount: 7, TTL: time.Minute, Counters: c},
		redisstore.ReserveRequest{ID: "l1", Amount: 199_999_999_999_999_993, TTL: time.Minute, Counters: c},
		redisstore.ReserveRequest{ID: "s2", Amount: 1, TTL: time.Minute, Counters: c},
		redisstore.ReserveRequest{ID: "l2", Amount: 1_000_000_000_000_000, TTL: time.Minute, Counters: c},
	)
	if !rs[0].Admitted || !rs[1].Admitted || rs[2].Admitted || rs[3].Admitted {
		e.t.Fatalf("large: %+v", rs)
	}
	if s := rs[1].States[0]; s.Spent != 9_000_000_000_000_000 || s.Reserved != 200_000_000_000_000_000 {
		e.t.Fatalf("large state: %+v", s)
	}
	e.want(k, 9_000_000_000_000_000, 200_000_000_000_000_000)
}

// More requests than one call takes are split, in order.
func testBatchReserveSplit(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seed(k, 0)
	n := 2*redisstore.MaxReserveBatch + 100 // 300 fit
	var reqs []redisstore.ReserveRequest
	for i := range n {
		reqs = append(reqs, redisstore.ReserveRequest{ID: fmt.Sprintf("r%d", i), Amount: 3, TTL: time.Minute, Counters: []redisstore.Counter{{Key: k, Limit: 3 * 300}}})
	}
	for i, r := range e.batch(reqs...) {
		if r.Err != nil || r.Admitted != (i < 300) {
			e.t.Fatalf("request %d: %+v", i, r)
		}
	}
	e.want(k, 0, 3*300)
}

// differential runs one random workload through ReserveBatch on a and
// through Reserve, one request at a time, on b, and compares every decision
// and, after each round, every counter's stored fields and reservation ids.
// Rounds are 60ms apart and short TTLs 30ms, so whether a reservation has
// expired never depends on the instant within a round.
func differential(t *testing.T, seed uint64, a, b *redis.Client) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	sa, sb := redisstore.New(a), redisstore.New(b)
	var keys []string
	kinds := []scope.Kind{scope.KindKey, scope.KindTeam, scope.KindUser, scope.KindOrg, scope.KindTag, scope.KindKeyModel, scope.KindProvider, scope.KindEndUser}
	for i, kind := range kinds {
		keys = append(keys, counterKey(kind, fmt.Sprintf("diff%d", i)))
	}
	seeded := map[string]bool{}
	seedBoth := func(k string, spent int64) {
		for _, s := range []*redisstore.Store{sa, sb} {
			if _, err := s.Seed(ctx, k, spent, "1:1:", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		seeded[k] = true
	}
	// Two counters start missing and are seeded later; one starts huge.
	for i, k := range keys[:6] {
		spent := int64(rng.IntN(1000))
		if i == 3 {
			spent = 8_999_999_999_999_000
		}
		seedBoth(k, spent)
	}
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = fmt.Sprintf("id%d", i)
	}
	var tally [4]int // admitted, denied, missing, errors
	defer func() {
		t.Logf("admitted %d, denied %d, missing %d, errors %d", tally[0], tally[1], tally[2], tally[3])
	}()
	for round := range 12 {
		if round == 4 {
			seedBoth(keys[6], 50)
		}
		if round == 8 {
			seedBoth(keys[7], 0)
		}
		var reqs []redisstore.ReserveRequest
		for range 1 + rng.IntN(24) {
			r := redisstore.ReserveRequest{ID: ids[rng.IntN(len(ids))], TTL: time.Hour}
			switch rng.IntN(5) {
			case 0:
				r.TTL = 30 * time.Millisecond
			case 1:
				r.ID = fmt.Sprintf("fresh-%d-%d", round, len(reqs))
			}
			switch rng.IntN(10) {
			case 0:
				r.Amount = 1_000_000_000_000_000 + rng.Int64N(1000)
			case 1:
				r.Amount = 0 // invalid
			default:
				r.Amount = 1 + rng.Int64N(400)
			}
			for _, i := range rng.Perm(len(keys))[:1+rng.IntN(4)] {
				limit := int64(500 + rng.IntN(20000))
				switch rng.IntN(6) {
				case 0:
					limit = 9_000_000_000_000_000 + rng.Int64N(2_000_000_000_000_000)
				case 1:
					limit = 0
				}
				r.Counters = append(r.Counters, redisstore.Counter{Key: keys[i], Limit: limit})
			}
			reqs = append(reqs, r)
		}
		began := time.Now()
		got := sa.ReserveBatch(ctx, reqs)
		for i, req := range reqs {
			want, err := sb.Reserve(ctx, req)
			g := got[i]
			if (err == nil) != (g.Err == nil) || (err != nil && errors.Is(err, redisstore.ErrInvalid) != errors.Is(g.Err, redisstore.ErrInvalid)) {
				t.Fatalf("round %d request %d %+v: batch err %v, reserve err %v", round, i, req, g.Err, err)
			}
			switch {
			case err != nil:
				tally[3]++
				continue
			case want.Admitted:
				tally[0]++
			case len(want.Missing) > 0:
				tally[2]++
			default:
				tally[1]++
			}
			if g.Admitted != want.Admitted || g.Denied != want.Denied || !slices.Equal(g.Missing, want.Missing) ||
				!slices.Equal(g.States, want.States) || g.ExpiresAt.IsZero() != want.ExpiresAt.IsZero() {
				t.Fatalf("round %d request %d %+v:\nbatch   %+v\nreserve %+v", round, i, req, g.ReserveResult, want)
			}
		}
		if time.Since(began) > 25*time.Millisecond {
			t.Logf("round %d took %v: expiry may differ; stopping the comparison here", round, time.Since(began))
			return
		}
		for _, k := range keys {
			if fa, fb := counterFields(t, a, k), counterFields(t, b, k); fa != fb {
				t.Fatalf("round %d: %s differs\nbatch   %s\nreserve %s", round, k, fa, fb)
			}
		}
		// Release a few ids on both, then let the short ones expire.
		for range rng.IntN(4) {
			id := ids[rng.IntN(len(ids))]
			ra, ea := sa.Release(ctx, id, keys)
			rb, eb := sb.Release(ctx, id, keys)
			if ra != rb || ea != nil || eb != nil {
				t.Fatalf("release %s: %v %v / %v %v", id, ra, ea, rb, eb)
			}
		}
		time.Sleep(60 * time.Millisecond)
	}
}

// counterFields renders a counter's hash (without next_expiry, a time) and
// its reservation ids (without their expiry scores), sorted.
func counterFields(t *testing.T, rdb *redis.Client, k string) string {
	ctx := context.Background()
	h, err := rdb.HGetAll(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for f, v := range h {
		if f != "next_expiry" {
			parts = append(parts, f+"="+v)
		}
	}
	slices.Sort(parts)
	x, err := rdb.ZRange(ctx, k+":x", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(x)
	return fmt.Sprintf("%v x=%q", parts, x)
}

// BenchmarkReserveBatch: batches of 32 Reserve requests over the same six
// counters (already holding 5000 live reservations, as in
// BenchmarkReserve/loaded), in one script call each. redis-µs/req is
// Redis's own time per request, to set against BenchmarkReserve's
// redis-µs/op.
func BenchmarkReserveBatch(b *testing.B) {
	rdb, st := benchRedis(b)
	cs := sixCounters(b, st, "batch")
	for i := range 5000 {
		reserveOne(b, st, fmt.Sprintf("pre%d", i), cs)
	}
	const size = 32
	ctx := context.Background()
	st0 := serverTime{rdb: rdb}
	st0.start(b)
	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		reqs := make([]redisstore.ReserveRequest, size)
		for j := range reqs {
			reqs[j] = redisstore.ReserveRequest{ID: fmt.Sprintf("b%d-%d", i, j), Amount: 1_000_000, TTL: 5 * time.Minute, Counters: cs}
		}
		for _, r := range st.ReserveBatch(ctx, reqs) {
			if r.Err != nil || !r.Admitted {
				b.Fatal(r)
			}
		}
	}
	b.StopTimer()
	calls, usec := st0.read(b)
	b.ReportMetric(float64(b.N*size)/time.Since(began).Seconds(), "reserves/s")
	b.ReportMetric(float64(usec-st0.usec)/float64((calls-st0.calls)*size), "redis-µs/req")
}
