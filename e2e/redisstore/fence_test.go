package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/e2e/harness"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// TestLossFenceRefusesAndLeavesNothingReserved: a Store built WithLossFence
// refuses to reserve while Redis holds no epoch (ErrLost) or a fence
// (ErrFenced), single and batched, and what the script wrote in that step is
// released; once the fence is lifted it reserves, also after the scripts were
// flushed from Redis (the NOSCRIPT path inside MULTI).
func TestLossFenceRefusesAndLeavesNothingReserved(t *testing.T) {
	in := harness.StartInfra(t)
	opt, err := redis.ParseURL(in.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := redisstore.New(rdb, redisstore.WithLossFence())
	e := &env{t: t, ctx: ctx, rdb: rdb, st: st, id: "fence"}
	k := e.key(scope.KindKey, "k")
	e.seed(k, 0)
	counters := []redisstore.Counter{{Key: k, Limit: usd}}
	reserve := func(id string) error {
		_, err := st.Reserve(ctx, redisstore.ReserveRequest{ID: id, Amount: 1000, TTL: time.Minute, Counters: counters})
		return err
	}
	batch := func(ids ...string) []error {
		var reqs []redisstore.ReserveRequest
		for _, id := range ids {
			reqs = append(reqs, redisstore.ReserveRequest{ID: id, Amount: 1000, TTL: time.Minute, Counters: counters})
		}
		var errs []error
		for _, r := range st.ReserveBatch(ctx, reqs) {
			errs = append(errs, r.Err)
		}
		return errs
	}
	reserved := func() int64 { return e.read(k)[0].Reserved }

	if err := reserve("lost-1"); !errors.Is(err, redisstore.ErrLost) {
		t.Fatalf("no epoch: %v; want ErrLost", err)
	}
	for _, err := range batch("lost-2", "lost-3") {
		if !errors.Is(err, redisstore.ErrLost) {
			t.Fatalf("no epoch, batched: %v; want ErrLost", err)
		}
	}
	if r := reserved(); r != 0 {
		t.Fatalf("reserved %d after refusals; want 0", r)
	}

	if err := st.StartEpoch(ctx, "e1", &redisstore.Fence{Since: time.Now(), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if f, err := st.CurrentFence(ctx); err != nil || f == nil || f.Reason != "test" {
		t.Fatalf("fence %v, %v", f, err)
	}
	if err := reserve("fenced-1"); !errors.Is(err, redisstore.ErrFenced) {
		t.Fatalf("fenced: %v; want ErrFenced", err)
	}
	for _, err := range batch("fenced-2", "fenced-3") {
		if !errors.Is(err, redisstore.ErrFenced) {
			t.Fatalf("fenced, batched: %v; want ErrFenced", err)
		}
	}
	if r := reserved(); r != 0 {
		t.Fatalf("reserved %d while fenced; want 0", r)
	}

	if err := st.LiftFence(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := reserve("ok-1"); err != nil {
		t.Fatalf("after the fence, scripts flushed: %v", err)
	}
	for _, err := range batch("ok-2", "ok-3") {
		if err != nil {
			t.Fatalf("after the fence, batched: %v", err)
		}
	}
	if r := reserved(); r != 3000 {
		t.Fatalf("reserved %d; want 3000", r)
	}
}
