package bench

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/e2e/bench/figures"
)

// record reports a catalog figure twice: to go test's output
// (b.ReportMetric, with the figure's name as the unit, so two figures of
// one benchmark in the same unit do not overwrite each other) and to the
// run's record file, from which `make bench` writes BENCHMARKS.md and
// results.json. note says what the figure was measured over.
func record(b *testing.B, name string, value float64, note string) {
	b.Helper()
	if err := figures.Append(name, value, note); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(value, name)
}

// scaled is full in a full run and short in a smoke run (BENCH_SHORT=1):
// every load driver sizes its load through it.
func scaled[T any](full, short T) T {
	if figures.Short() {
		return short
	}
	return full
}

// recordServerVersions asks each store of the run for its version, for the
// machine section of BENCHMARKS.md.
func recordServerVersions(b *testing.B, natsURL, postgresURL, redisURL string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		b.Fatal(err)
	}
	natsVersion := nc.ConnectedServerVersion()
	nc.Close()
	conn, err := pgx.Connect(ctx, postgresURL)
	if err != nil {
		b.Fatal(err)
	}
	var pgVersion string
	err = conn.QueryRow(ctx, `SHOW server_version`).Scan(&pgVersion)
	conn.Close(ctx)
	if err != nil {
		b.Fatal(err)
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	info, err := rdb.InfoMap(ctx, "server").Result()
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range map[string]string{
		figures.FactNATSVersion: natsVersion, figures.FactPostgresVersion: pgVersion,
		figures.FactRedisVersion: info["Server"]["redis_version"],
	} {
		if err := figures.AppendFact(k, v); err != nil {
			b.Fatal(err)
		}
	}
}
