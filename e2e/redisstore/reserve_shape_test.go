package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/ledger/redisstore"
)

// BenchmarkReserveBatchAdmissionShape is the Redis side of the admission
// benchmark (e2e/bench BenchmarkAdmitConnect): ReserveBatch calls of 10
// requests (what group commit sends at 32-64 callers) over six counters with
// limits of $100,000 (below 10^15 nano-USD, the scripts' plain-number path,
// as real budgets are), on counters already holding `live` reservations.
// One op is one request. Besides redis-µs/req (the script's own time, which
// bounds throughput), it splits that time by the commands the script runs
// (INFO commandstats counts commands run by scripts too): the rest,
// lua-µs/req, is the interpreter and the reply.
func BenchmarkReserveBatchAdmissionShape(b *testing.B) {
	rdb, st := benchRedis(b)
	ctx := context.Background()
	const size = 10
	for _, live := range []int{0, 50_000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			cs := sixCounters(b, st, fmt.Sprintf("shape-%d-%d", live, b.N))
			for i := range cs {
				cs[i].Limit = 100_000 * 1_000_000_000
			}
			reserve := func(prefix string, n int) {
				for done := 0; done < n; done += size {
					reqs := make([]redisstore.ReserveRequest, min(size, n-done))
					for j := range reqs {
						reqs[j] = redisstore.ReserveRequest{ID: fmt.Sprintf("%s-%d", prefix, done+j), Amount: 7_500_000, TTL: 5 * time.Minute, Counters: cs}
					}
					for _, r := range st.ReserveBatch(ctx, reqs) {
						if r.Err != nil || !r.Admitted {
							b.Fatal(r)
						}
					}
				}
			}
			reserve(fmt.Sprintf("pre-%d", b.N), live)
			before := commandTimes(b, rdb)
			b.ResetTimer()
			reserve(fmt.Sprintf("bench-%d", b.N), b.N)
			b.StopTimer()
			after := commandTimes(b, rdb)
			script := after["evalsha"] + after["eval"] - before["evalsha"] - before["eval"]
			inner := int64(0)
			for _, c := range []string{"hmget", "hset", "zadd", "time", "hget", "zrangebyscore", "zscore", "hdel", "zrem"} {
				d := after[c] - before[c]
				inner += d
				if d > 0 {
					b.ReportMetric(float64(d)/float64(b.N), c+"-µs/req")
				}
			}
			b.ReportMetric(float64(script)/float64(b.N), "redis-µs/req")
			b.ReportMetric(float64(script-inner)/float64(b.N), "lua-µs/req")
		})
	}
}

// commandTimes reads INFO commandstats: usec by command name.
func commandTimes(b *testing.B, rdb *redis.Client) map[string]int64 {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\r\n") {
		name, stats, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			if k, v, _ := strings.Cut(kv, "="); k == "usec" {
				out[name], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return out
}
