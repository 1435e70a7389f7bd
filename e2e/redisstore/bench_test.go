package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/e2e/harness"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// The benchmarks report, besides ns/op (one call as the caller sees it):
//
//	ops/s       calls per second
//	redis-µs/op Redis's own time per script call (INFO commandstats): the
//	            cost that bounds throughput, since Redis runs scripts on
//	            one thread
//	ping-µs     a PING round trip, measured first: the floor under ns/op
//	            that no script can go below on this machine

// sixCounters seeds the six counters a typical request checks (key, team,
// user, org, provider, key×model) under name, with limits that never deny.
func sixCounters(b *testing.B, st *redisstore.Store, name string) []redisstore.Counter {
	b.Helper()
	var cs []redisstore.Counter
	for _, kind := range []scope.Kind{scope.KindKey, scope.KindTeam, scope.KindUser, scope.KindOrg, scope.KindProvider, scope.KindKeyModel} {
		k := counterKey(kind, name)
		if _, err := st.Seed(context.Background(), k, 0, "1:1:", time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		cs = append(cs, redisstore.Counter{Key: k, Limit: 1 << 62})
	}
	return cs
}

func benchRedis(b *testing.B) (*redis.Client, *redisstore.Store) {
	in := harness.StartInfra(b)
	opt, err := redis.ParseURL(in.RedisURL)
	if err != nil {
		b.Fatal(err)
	}
	opt.PoolSize = 64
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { rdb.Close() })
	return rdb, redisstore.New(rdb)
}

// serverTime tracks Redis's time spent in scripts (EVALSHA/EVAL).
type serverTime struct {
	rdb   *redis.Client
	calls int64
	usec  int64
}

func (s *serverTime) read(b *testing.B) (calls, usec int64) { return harness.ScriptStats(b, s.rdb) }

func (s *serverTime) start(b *testing.B) { s.calls, s.usec = s.read(b) }

func (s *serverTime) report(b *testing.B, began time.Time, ops int) {
	calls, usec := s.read(b)
	b.ReportMetric(float64(ops)/time.Since(began).Seconds(), "ops/s")
	if calls > s.calls {
		b.ReportMetric(float64(usec-s.usec)/float64(calls-s.calls), "redis-µs/op")
	}
}

// pingMicros measures a PING round trip (reported after the loop: ResetTimer
// drops metrics reported before it).
func pingMicros(b *testing.B, rdb *redis.Client) float64 {
	ctx := context.Background()
	start := time.Now()
	for range 1000 {
		if err := rdb.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000
}

func reserveOne(b *testing.B, st *redisstore.Store, id string, cs []redisstore.Counter) {
	r, err := st.Reserve(context.Background(), redisstore.ReserveRequest{ID: id, Amount: 1_000_000, TTL: 5 * time.Minute, Counters: cs})
	if err != nil || !r.Admitted {
		b.Fatal(r, err)
	}
}

// BenchmarkReserve: one Reserve over six counters at a time.
//
//	fresh:  the counters hold few live reservations (a new set every 32
//	        calls): small Redis encodings
//	loaded: the counters already hold 5000 live reservations each (a busy
//	        team at thousands of requests a second)
func BenchmarkReserve(b *testing.B) {
	rdb, st := benchRedis(b)
	b.Run("fresh", func(b *testing.B) {
		sets := make([][]redisstore.Counter, b.N/32+1)
		for i := range sets {
			sets[i] = sixCounters(b, st, fmt.Sprintf("fresh-%d-%d", b.N, i))
		}
		ping := pingMicros(b, rdb)
		st0 := serverTime{rdb: rdb}
		st0.start(b)
		b.ResetTimer()
		began := time.Now()
		for i := range b.N {
			reserveOne(b, st, fmt.Sprintf("f%d", i), sets[i/32])
		}
		b.StopTimer()
		st0.report(b, began, b.N)
		b.ReportMetric(ping, "ping-µs")
	})
	b.Run("loaded", func(b *testing.B) {
		cs := sixCounters(b, st, fmt.Sprintf("loaded-%d", b.N))
		for i := range 5000 {
			reserveOne(b, st, fmt.Sprintf("pre%d", i), cs)
		}
		ping := pingMicros(b, rdb)
		st0 := serverTime{rdb: rdb}
		st0.start(b)
		b.ResetTimer()
		began := time.Now()
		for i := range b.N {
			reserveOne(b, st, fmt.Sprintf("l%d", i), cs)
		}
		b.StopTimer()
		st0.report(b, began, b.N)
		b.ReportMetric(ping, "ping-µs")
	})
}

// BenchmarkReserveParallel: 32 concurrent callers on the same six loaded
// counters (the hot case: one team's keys), for throughput.
func BenchmarkReserveParallel(b *testing.B) {
	rdb, st := benchRedis(b)
	cs := sixCounters(b, st, "parallel")
	for i := range 5000 {
		reserveOne(b, st, fmt.Sprintf("pre%d", i), cs)
	}
	var n atomic.Int64
	b.SetParallelism(16) // × GOMAXPROCS goroutines
	st0 := serverTime{rdb: rdb}
	st0.start(b)
	b.ResetTimer()
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			reserveOne(b, st, fmt.Sprintf("p%d", n.Add(1)), cs)
		}
	})
	b.StopTimer()
	st0.report(b, began, b.N)
}

// BenchmarkApply: projecting one event onto six counters (direct: no
// reservation), with markers pruned 5000 sequences behind, as the ledger
// does.
func BenchmarkApply(b *testing.B) {
	rdb, st := benchRedis(b)
	cs := sixCounters(b, st, "apply")
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.Key
	}
	ctx := context.Background()
	st0 := serverTime{rdb: rdb}
	st0.start(b)
	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		seq := uint64(i + 1)
		r, err := st.Apply(ctx, redisstore.Application{EventID: fmt.Sprintf("e%d", seq), StreamSeq: seq, TxID: 10 + seq, Cost: 1234, Keys: keys, PruneFloor: max(seq, 5000) - 5000})
		if err != nil || !r.Done() {
			b.Fatal(r, err)
		}
	}
	b.StopTimer()
	st0.report(b, began, b.N)
}

// BenchmarkApplyBatch: projecting events with ApplyBatch, the shape the
// ledger benchmark drives (each event on one of 64 key counters and one of 8
// team counters), in batches of the given size; one op is one event, markers
// are pruned 5000 sequences behind. With reserved, every event settles a
// reservation on both counters (the Reserve calls are outside the timer, and
// their script time is mixed into Redis's, so only events/s is reported).
// redis-µs/op is Redis's time per script call, what an admission may wait
// behind one; redis-µs/event is the throughput cost.
func BenchmarkApplyBatch(b *testing.B) {
	rdb, st := benchRedis(b)
	ctx := context.Background()
	for _, reserved := range []bool{false, true} {
		for _, size := range []int{64, 256, 500} {
			name := fmt.Sprintf("size=%d/reserved=%v", size, reserved)
			b.Run(name, func(b *testing.B) {
				keys, teams := make([]string, 64), make([]string, 8)
				for i := range keys {
					keys[i] = counterKey(scope.KindKey, fmt.Sprintf("%s-k%d", name, i))
				}
				for i := range teams {
					teams[i] = counterKey(scope.KindTeam, fmt.Sprintf("%s-t%d", name, i))
				}
				for _, k := range append(append([]string(nil), keys...), teams...) {
					if _, err := st.Seed(ctx, k, 0, "1:1:", time.Now().Add(time.Hour)); err != nil {
						b.Fatal(err)
					}
				}
				st0 := serverTime{rdb: rdb}
				st0.start(b)
				var spent time.Duration
				seq := uint64(0)
				b.ResetTimer()
				for done := 0; done < b.N; done += size {
					b.StopTimer()
					batch := make([]redisstore.Application, min(size, b.N-done))
					for i := range batch {
						seq++
						k, t := keys[seq%64], teams[seq%8]
						batch[i] = redisstore.Application{EventID: fmt.Sprintf("e%d", seq), StreamSeq: seq, TxID: 10 + seq, Cost: 1234,
							Keys: []string{k, t}, PruneFloor: max(seq, 5000) - 5000}
						if reserved {
							batch[i].ReservationID = fmt.Sprintf("r%d", seq)
							reserveOne(b, st, batch[i].ReservationID, []redisstore.Counter{{Key: k, Limit: 1 << 62}, {Key: t, Limit: 1 << 62}})
						}
					}
					b.StartTimer()
					began := time.Now()
					rs, err := st.ApplyBatch(ctx, batch)
					spent += time.Since(began)
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range rs {
						if !r.Done() {
							b.Fatal(r)
						}
					}
				}
				b.StopTimer()
				if !reserved {
					calls, usec := st0.read(b)
					if calls > st0.calls {
						b.ReportMetric(float64(usec-st0.usec)/float64(calls-st0.calls), "redis-µs/op")
						b.ReportMetric(float64(usec-st0.usec)/float64(b.N), "redis-µs/event")
					}
				}
				b.ReportMetric(float64(b.N)/spent.Seconds(), "events/s")
			})
		}
	}
}
