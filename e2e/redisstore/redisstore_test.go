// Package redisstore_test runs ledger/redisstore against a real redis-server:
// the harness's for a single node, and a one-node Redis Cluster started here
// (every slot on one node still enforces CROSSSLOT, so it exercises the slot
// grouping and rollback). Every amount is asserted to the nano-USD.
package redisstore_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/e2e/harness"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

const usd = int64(1_000_000_000) // nano-USD per dollar

var daily = window.Spec{Duration: window.MustParse("1d"), Calendar: true}

// counterKey names a test counter through the one key function.
func counterKey(kind scope.Kind, id string) string {
	s := scope.Scope{Kind: kind, ID: id}
	if kind.PerModel() {
		s.ModelGroup = "claude-opus-4-6"
	}
	return scope.CounterKey(s, daily, 20522)
}

// env is one test's view of a Redis: a Store, a raw client to inspect keys,
// and a unique prefix for scope IDs so tests sharing a Redis never collide.
type env struct {
	t   *testing.T
	ctx context.Context
	rdb redis.UniversalClient
	st  *redisstore.Store
	id  string
	// cluster: every counter of a test sits in its own slot group, so calls
	// are atomic per counter rather than across all of them.
	cluster bool
}

func (e *env) key(kind scope.Kind, name string) string { return counterKey(kind, e.id+"-"+name) }

// seed creates a counter with spent and a snapshot nothing is visible in
// but xids below 1, expiring in an hour.
func (e *env) seed(key string, spent int64) {
	e.t.Helper()
	e.seedSnap(key, spent, "1:1:")
}

func (e *env) seedSnap(key string, spent int64, snap string) {
	e.t.Helper()
	created, err := e.st.Seed(e.ctx, key, spent, snap, time.Now().Add(time.Hour))
	if err != nil || !created {
		e.t.Fatalf("seed %s: created %v, %v", key, created, err)
	}
}

func (e *env) read(keys ...string) []redisstore.State {
	e.t.Helper()
	s, err := e.st.Read(e.ctx, keys)
	if err != nil {
		e.t.Fatalf("read: %v", err)
	}
	return s
}

// want asserts a counter's state to the nano.
func (e *env) want(key string, spent, reserved int64) {
	e.t.Helper()
	s := e.read(key)[0]
	if !s.Exists || s.Spent != spent || s.Reserved != reserved || s.Held != reserved {
		e.t.Fatalf("%s: %+v, want spent %d reserved=held %d", key, s, spent, reserved)
	}
}

func (e *env) reserve(id string, amount int64, ttl time.Duration, counters ...redisstore.Counter) redisstore.ReserveResult {
	e.t.Helper()
	r, err := e.st.Reserve(e.ctx, redisstore.ReserveRequest{ID: id, Amount: amount, TTL: ttl, Counters: counters})
	if err != nil {
		e.t.Fatalf("reserve %s: %v", id, err)
	}
	return r
}

func (e *env) apply(a redisstore.Application) []redisstore.Outcome {
	e.t.Helper()
	r, err := e.st.Apply(e.ctx, a)
	if err != nil {
		e.t.Fatalf("apply %s: %v", a.EventID, err)
	}
	return r.Outcomes
}

func outcomes(o ...redisstore.Outcome) string { return fmt.Sprint(o) }

func TestRedisStore(t *testing.T) {
	in := harness.StartInfra(t)
	opt, err := redis.ParseURL(in.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.PoolSize = 128
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	runSuite(t, rdb)
}

// runSuite runs every behaviour test on rdb: a single node or a cluster.
func runSuite(t *testing.T, rdb redis.UniversalClient) {
	st := redisstore.New(rdb)
	for _, tc := range []struct {
		name string
		fn   func(*env)
	}{
		{"ConcurrentReserveNeverPassesLimit", testConcurrentReserve},
		{"ReserveIdempotent", testReserveIdempotent},
		{"ReservationExpiry", testReservationExpiry},
		{"ReleaseTwiceIsNoop", testReleaseTwice},
		{"LeasePartsSettleAndReleaseOnce", testLeaseParts},
		{"LeaseBounds", testLeaseBounds},
		{"ApplySettlesExactlyOnce", testApplySettlesOnce},
		{"ApplyWithoutReservationIsDirect", testApplyDirectWhenGone},
		{"ReconcileFailureFallsBackExactlyOnce", testFallback},
		{"BatchSettlesExactlyOnce", testBatchSettlesOnce},
		{"BatchWithoutReservationIsDirect", testBatchDirectWhenGone},
		{"BatchFailureFallsBackExactlyOnce", testBatchFallback},
		{"BatchMissingCounterWritesNothingForItsEvent", testBatchMissing},
		{"BatchSeedSnapshotVisibility", testBatchInSeed},
		{"BatchMarkerPruning", testBatchPruning},
		{"BatchExact", testBatchExactness},
		{"BatchMatchesApplyInOrder", testBatchMatchesApply},
		{"SeedRace", testSeedRace},
		{"SeedSnapshotVisibility", testSeedSnapshot},
		{"MissingCounterWritesNothing", testMissing},
		{"MarkerPruning", testMarkerPruning},
		{"KeysExpireWithTheirCounter", testExpiry},
		{"ExactBeyond2To53", testExactness},
		{"ArithmeticMatchesBigInt", testArithmetic},
		{"ScanCounters", testScan},
		{"InvalidArguments", testInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, cluster := rdb.(*redis.ClusterClient)
			tc.fn(&env{t: t, ctx: ctx, rdb: rdb, st: st, id: strings.ToLower(tc.name), cluster: cluster})
		})
	}
}

// 64 concurrent requests with a 0.025 USD estimate on six counters, the
// binding one a 1 USD budget with 0.123456789 USD already spent: exactly
// floor((1 - 0.123456789) / 0.025) = 35 are admitted, and nothing passes
// any limit.
func testConcurrentReserve(e *env) {
	const spent, amount = int64(123_456_789), int64(25_000_000)
	counters := []redisstore.Counter{
		{Key: e.key(scope.KindKey, "k"), Limit: 5 * usd},
		{Key: e.key(scope.KindTeam, "t"), Limit: 3 * usd},
		{Key: e.key(scope.KindUser, "u"), Limit: usd}, // binding
		{Key: e.key(scope.KindOrg, "o"), Limit: 10 * usd},
		{Key: e.key(scope.KindProvider, "p"), Limit: 2 * usd},
		{Key: e.key(scope.KindKeyModel, "k"), Limit: 4 * usd},
	}
	for i, c := range counters {
		e.seed(c.Key, map[bool]int64{true: spent}[i == 2])
	}
	const n = 64
	var admitted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r, err := e.st.Reserve(e.ctx, redisstore.ReserveRequest{ID: fmt.Sprintf("req-%d", i), Amount: amount, TTL: time.Minute, Counters: counters})
			switch {
			case err != nil:
				errs <- err
			case r.Admitted:
				admitted.Add(1)
				if r.Denied != -1 || len(r.Missing) != 0 {
					errs <- fmt.Errorf("admitted with denied %d missing %v", r.Denied, r.Missing)
				}
			case r.Denied != 2:
				errs <- fmt.Errorf("denied on counter %d, want 2 (the 1 USD budget)", r.Denied)
			case r.States[2].Spent+r.States[2].Reserved+amount <= usd:
				errs <- fmt.Errorf("denied although it fits: %+v", r.States[2])
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Error(err)
	}
	want := (usd - spent) / amount // 35
	if got := admitted.Load(); got != want {
		e.t.Fatalf("admitted %d, want %d", got, want)
	}
	for i, c := range counters {
		e.want(c.Key, map[bool]int64{true: spent}[i == 2], want*amount) // 875_000_000
	}
	if s := e.read(counters[2].Key)[0]; s.Spent+s.Reserved > usd || s.Live != 875_000_000 {
		e.t.Fatalf("binding counter %+v", s)
	}
}

func testReserveIdempotent(e *env) {
	k1, k2 := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "t")
	e.seed(k1, 0)
	e.seed(k2, 7)
	cs := []redisstore.Counter{{Key: k1, Limit: usd}, {Key: k2, Limit: usd}}
	first := e.reserve("r1", 400_000_000, time.Minute, cs...)
	// A retry — even one with another amount — is the same reservation.
	for _, amount := range []int64{400_000_000, 900_000_000, 1} {
		again := e.reserve("r1", amount, time.Minute, cs...)
		if !again.Admitted || !again.ExpiresAt.Equal(first.ExpiresAt) {
			e.t.Fatalf("retry: %+v, first %+v", again, first)
		}
		e.want(k1, 0, 400_000_000)
		e.want(k2, 7, 400_000_000)
	}
	// A second request sees the first exactly once: 0.4 + 0.6 fits, 0.6 + 1 nano does not.
	if r := e.reserve("r2", 600_000_001, time.Minute, cs...); r.Admitted || r.Denied != 0 {
		e.t.Fatalf("r2: %+v", r)
	}
	if r := e.reserve("r3", 600_000_000-7, time.Minute, cs...); !r.Admitted {
		e.t.Fatalf("r3: %+v", r)
	}
	e.want(k2, 7, 999_999_993)
	// A counter that holds the id is not charged again when another does not
	// (here: only k1 held r4 from an earlier call on k1 alone).
	k3 := e.key(scope.KindOrg, "o")
	e.seed(k3, 0)
	e.reserve("r4", 5, time.Minute, redisstore.Counter{Key: k3, Limit: usd})
	if r := e.reserve("r4", 5, time.Minute, redisstore.Counter{Key: k3, Limit: usd}, redisstore.Counter{Key: k1, Limit: 2 * usd}); !r.Admitted {
		e.t.Fatalf("r4: %+v", r)
	}
	e.want(k3, 0, 5)
	e.want(k1, 0, 1_000_000_000-7+5) // r1 + r3 + r4
	// A denied id holds nothing afterwards, even where an earlier attempt
	// reserved it.
	e.reserve("r5", 10, time.Minute, redisstore.Counter{Key: k3, Limit: usd})
	if r := e.reserve("r5", 10, time.Minute, redisstore.Counter{Key: k3, Limit: usd}, redisstore.Counter{Key: k2, Limit: usd}); r.Admitted || r.Denied != 1 {
		e.t.Fatalf("r5: %+v", r)
	}
	e.want(k3, 0, 5)
}

func testReservationExpiry(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seed(k, 100_000_000)
	c := redisstore.Counter{Key: k, Limit: usd}
	if r := e.reserve("short", 600_000_000, 50*time.Millisecond, c); !r.Admitted {
		e.t.Fatalf("short: %+v", r)
	}
	if r := e.reserve("big", 600_000_000, time.Minute, c); r.Admitted {
		e.t.Fatalf("big admitted while short is live: %+v", r)
	}
	time.Sleep(120 * time.Millisecond)
	// Expired but not yet evicted: stored, not live.
	if s := e.read(k)[0]; s.Reserved != 600_000_000 || s.Held != 600_000_000 || s.Live != 0 {
		e.t.Fatalf("after expiry: %+v", s)
	}
	r := e.reserve("big", 600_000_000, time.Minute, c)
	if !r.Admitted || r.States[0].Reserved != 600_000_000 || r.States[0].Spent != 100_000_000 {
		e.t.Fatalf("big after expiry: %+v", r)
	}
	e.want(k, 100_000_000, 600_000_000)
	// The expired reservation is gone: releasing it does nothing, settling
	// its event is a direct increment.
	if rel, err := e.st.Release(e.ctx, "short", []string{k}); err != nil || rel {
		e.t.Fatalf("release expired: %v %v", rel, err)
	}
	got := e.apply(redisstore.Application{EventID: "ev-short", StreamSeq: 1, TxID: 10, Cost: 1, ReservationID: "short", Keys: []string{k}})
	if outcomes(got...) != outcomes(redisstore.Direct) {
		e.t.Fatalf("apply for expired reservation: %v", got)
	}
	e.want(k, 100_000_001, 600_000_000)
	// More expired reservations than one call evicts (256): the rest go on
	// the next call, and every nano is accounted for on the way.
	k2 := e.key(scope.KindTeam, "many")
	e.seed(k2, 0)
	c2 := redisstore.Counter{Key: k2, Limit: usd}
	start := time.Now()
	for i := range 300 {
		e.reserve(fmt.Sprintf("m%d", i), 1_000, 2*time.Second, c2)
	}
	if time.Since(start) > 1500*time.Millisecond {
		// The first would have expired (and been evicted) during the loop.
		e.t.Skip("300 reserves took over 1.5s; cannot place their expiry")
	}
	time.Sleep(2*time.Second + 100*time.Millisecond) // all of them expired
	if r := e.reserve("after-1", 7, time.Minute, c2); !r.Admitted || r.States[0].Reserved != 45*1_000+7 {
		e.t.Fatalf("first eviction pass: %+v", r.States)
	}
	if r := e.reserve("after-2", 9, time.Minute, c2); !r.Admitted || r.States[0].Reserved != 16 {
		e.t.Fatalf("second eviction pass: %+v", r.States)
	}
	if s := e.read(k2)[0]; s.Reserved != 16 || s.Held != 16 || s.Live != 16 {
		e.t.Fatalf("after eviction: %+v", s)
	}
	// A retry after its own reservation expired reserves afresh.
	if r := e.reserve("quick", 1, time.Millisecond, c); !r.Admitted {
		e.t.Fatalf("quick: %+v", r)
	}
	time.Sleep(10 * time.Millisecond)
	if r := e.reserve("quick", 2, time.Minute, c); !r.Admitted || r.States[0].Reserved != 600_000_002 {
		e.t.Fatalf("quick retry: %+v", r)
	}
}

func testReleaseTwice(e *env) {
	k1, k2 := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "t")
	e.seed(k1, 0)
	e.seed(k2, 0)
	cs := []redisstore.Counter{{Key: k1, Limit: usd}, {Key: k2, Limit: usd}}
	e.reserve("a", 300_000_000, time.Minute, cs...)
	e.reserve("b", 200_000_000, time.Minute, cs...)
	for i, want := range []bool{true, false, false} {
		rel, err := e.st.Release(e.ctx, "a", []string{k1, k2})
		if err != nil || rel != want {
			e.t.Fatalf("release #%d: %v %v, want %v", i+1, rel, err, want)
		}
		e.want(k1, 0, 200_000_000)
		e.want(k2, 0, 200_000_000)
	}
	// A missing counter is skipped.
	if rel, err := e.st.Release(e.ctx, "b", []string{e.key(scope.KindOrg, "absent"), k1}); err != nil || !rel {
		e.t.Fatalf("release with a missing counter: %v %v", rel, err)
	}
	e.want(k1, 0, 0)
	e.want(k2, 0, 200_000_000)
}

func testApplySettlesOnce(e *env) {
	k1, k2 := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "t")
	e.seed(k1, 1_000)
	e.seed(k2, 2_000)
	cs := []redisstore.Counter{{Key: k1, Limit: usd}, {Key: k2, Limit: usd}}
	e.reserve("req", 50_000_000, time.Minute, cs...)
	e.reserve("other", 3_000_000, time.Minute, cs...)
	a := redisstore.Application{EventID: "ev-1", StreamSeq: 42, TxID: 900, Cost: 37_123_456, ReservationID: "req", Keys: []string{k1, k2}}
	for i := range 5 {
		got := e.apply(a)
		want := outcomes(redisstore.Settled, redisstore.Settled)
		if i > 0 {
			want = outcomes(redisstore.Duplicate, redisstore.Duplicate)
		}
		if outcomes(got...) != want {
			e.t.Fatalf("delivery %d: %v, want %v", i+1, got, want)
		}
		e.want(k1, 1_000+37_123_456, 3_000_000)
		e.want(k2, 2_000+37_123_456, 3_000_000)
	}
	// Settled means released: the reservation cannot be released again.
	if rel, err := e.st.Release(e.ctx, "req", []string{k1, k2}); err != nil || rel {
		e.t.Fatalf("release after settle: %v %v", rel, err)
	}
}

func testApplyDirectWhenGone(e *env) {
	k := e.key(scope.KindKey, "k")
	e.seed(k, 0)
	c := redisstore.Counter{Key: k, Limit: usd}
	e.reserve("released", 10_000_000, time.Minute, c)
	e.reserve("other", 20_000_000, time.Minute, c)
	if _, err := e.st.Release(e.ctx, "released", []string{k}); err != nil {
		e.t.Fatal(err)
	}
	for i, a := range []redisstore.Application{
		{EventID: "ev-released", StreamSeq: 1, TxID: 10, Cost: 9_999_999, ReservationID: "released", Keys: []string{k}},
		{EventID: "ev-none", StreamSeq: 2, TxID: 11, Cost: 1, Keys: []string{k}},
		{EventID: "ev-unknown", StreamSeq: 3, TxID: 12, Cost: -2, ReservationID: "never", Keys: []string{k}},
	} {
		if got := e.apply(a); outcomes(got...) != outcomes(redisstore.Direct) {
			e.t.Fatalf("apply %d: %v, want direct", i, got)
		}
	}
	e.want(k, 9_999_999+1-2, 20_000_000) // the other reservation untouched
}

// scriptFault is a go-redis hook that breaks scripts: every EVAL whose
// source starts with one of headers, and every EVALSHA of such a source. With after
// set, the command runs on Redis and only its reply is replaced by an error
// (a lost reply); otherwise it never reaches Redis.
type scriptFault struct {
	headers []string
	after   bool
	mu      sync.Mutex
	shas    map[string]bool
	hits    atomic.Int64
}

func (h *scriptFault) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptFault) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *scriptFault) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		name := strings.ToLower(cmd.Name())
		if len(args) < 2 || (name != "eval" && name != "evalsha") {
			return next(ctx, cmd)
		}
		arg, _ := args[1].(string)
		h.mu.Lock()
		hit := name == "evalsha" && h.shas[arg]
		for _, p := range h.headers {
			if name == "eval" && strings.HasPrefix(arg, p) {
				sum := sha1.Sum([]byte(arg))
				h.shas[hex.EncodeToString(sum[:])] = true
				hit = true
			}
		}
		h.mu.Unlock()
		if !hit {
			return next(ctx, cmd)
		}
		h.hits.Add(1)
		if h.after {
			if err := next(ctx, cmd); err != nil {
				return err
			}
		}
		err := errors.New("injected script fault")
		cmd.SetErr(err)
		return err
	}
}

// faultyStore is a Store whose client fails the named scripts. The script
// cache is flushed first, so the hook sees a script's source (EVAL) before
// any EVALSHA of it.
func (e *env) faultyStore(after bool, scripts ...string) (*redisstore.Store, *scriptFault) {
	e.t.Helper()
	h := &scriptFault{after: after, shas: map[string]bool{}}
	for _, s := range scripts {
		h.headers = append(h.headers, redisstore.ScriptHeader(s))
	}
	var c redis.UniversalClient
	switch r := e.rdb.(type) {
	case *redis.Client:
		c = redis.NewClient(r.Options())
	case *redis.ClusterClient:
		c = redis.NewClusterClient(r.Options())
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.ScriptFlush(e.ctx).Err(); err != nil {
		e.t.Fatal(err)
	}
	c.AddHook(h)
	return redisstore.New(c), h
}

// The reconcile-failure path (reference bug 000): when the settle script
// fails, the cost must still land — once, not never, not twice.
func testFallback(e *env) {
	k1, k2 := e.key(scope.KindKey, "k"), e.key(scope.KindTeam, "t")
	e.seed(k1, 500)
	e.seed(k2, 0)
	cs := []redisstore.Counter{{Key: k1, Limit: usd}, {Key: k2, Limit: usd}}
	keys := []string{k1, k2}

	// 1. Apply never reaches Redis.
	broken, h := e.faultyStore(false, "apply")
	e.reserve("req-1", 80_000_000, time.Minute, cs...)
	a := redisstore.Application{EventID: "ev-1", StreamSeq: 7, TxID: 1000, Cost: 61_000_017, ReservationID: "req-1", Keys: keys}
	for i := range 3 { // the event is redelivered twice
		r, err := broken.ApplyWithFallback(e.ctx, a)
		if err != nil {
			e.t.Fatalf("delivery %d: %v", i+1, err)
		}
		want := outcomes(redisstore.Direct, redisstore.Direct)
		if i > 0 {
			want = outcomes(redisstore.Duplicate, redisstore.Duplicate)
		}
		if outcomes(r.Outcomes...) != want || r.FallbackCause == nil || !r.Done() {
			e.t.Fatalf("delivery %d: %v cause %v, want %v via fallback", i+1, r.Outcomes, r.FallbackCause, want)
		}
		e.want(k1, 500+61_000_017, 0) // reservation released by the fallback
		e.want(k2, 61_000_017, 0)
	}
	if h.hits.Load() == 0 {
		e.t.Fatal("the fault never fired")
	}
	// The healthy path agrees: it is a duplicate.
	if got := e.apply(a); outcomes(got...) != outcomes(redisstore.Duplicate, redisstore.Duplicate) {
		e.t.Fatalf("healthy apply after fallback: %v", got)
	}

	// 2. Apply runs on Redis but its reply is lost: the fallback finds the
	// marker and adds nothing.
	lost, h2 := e.faultyStore(true, "apply")
	e.reserve("req-2", 80_000_000, time.Minute, cs...)
	a2 := redisstore.Application{EventID: "ev-2", StreamSeq: 8, TxID: 1001, Cost: 3, ReservationID: "req-2", Keys: keys}
	r, err := lost.ApplyWithFallback(e.ctx, a2)
	want := outcomes(redisstore.Duplicate, redisstore.Duplicate)
	if e.cluster {
		// Apply failed after the first slot group; the fallback did the second.
		want = outcomes(redisstore.Duplicate, redisstore.Direct)
	}
	if err != nil || outcomes(r.Outcomes...) != want || r.FallbackCause == nil || h2.hits.Load() == 0 {
		e.t.Fatalf("lost reply: %+v %v", r, err)
	}
	e.want(k1, 500+61_000_017+3, 0)
	e.want(k2, 61_000_017+3, 0)

	// 3. ApplyDirect leaves the reservation; a redelivery through the
	// healthy Apply releases it without counting the cost again.
	e.reserve("req-3", 80_000_000, time.Minute, cs...)
	a3 := redisstore.Application{EventID: "ev-3", StreamSeq: 9, TxID: 1002, Cost: 11, ReservationID: "req-3", Keys: keys}
	if r, err := e.st.ApplyDirect(e.ctx, a3); err != nil || outcomes(r.Outcomes...) != outcomes(redisstore.Direct, redisstore.Direct) {
		e.t.Fatalf("apply direct: %+v %v", r, err)
	}
	e.want(k1, 500+61_000_017+3+11, 80_000_000)
	if got := e.apply(a3); outcomes(got...) != outcomes(redisstore.Duplicate, redisstore.Duplicate) {
		e.t.Fatalf("apply after direct: %v", got)
	}
	e.want(k1, 500+61_000_017+3+11, 0)

	// 4. Both scripts failing is an error (the ledger does not ack), and
	// nothing was written: the next delivery applies it.
	both, _ := e.faultyStore(false, "apply", "apply_direct")
	a4 := redisstore.Application{EventID: "ev-4", StreamSeq: 10, TxID: 1003, Cost: 13, Keys: keys}
	if r, err := both.ApplyWithFallback(e.ctx, a4); err == nil {
		e.t.Fatalf("both scripts failing: %+v, want an error", r)
	}
	e.want(k1, 500+61_000_017+3+11, 0)
	if got := e.apply(a4); outcomes(got...) != outcomes(redisstore.Direct, redisstore.Direct) {
		e.t.Fatalf("apply after double failure: %v", got)
	}
	e.want(k1, 500+61_000_017+3+11+13, 0)
}
