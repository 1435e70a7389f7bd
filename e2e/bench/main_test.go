// Package bench holds the load drivers `make bench` runs against the real
// stack (harness.StartStack: NATS JetStream, Postgres, Redis and the four
// services as processes on loopback). They are Go benchmarks, so `go test`
// without -bench never runs them. Each drives a bounded amount of load
// (counts and durations fixed in the benchmark, a tenth or less with
// BENCH_SHORT=1) and records every figure it measures with record, under
// the figure's name in figures.Catalog: `make bench` collects them into
// BENCHMARKS.md and results.json (e2e/bench/report), and `make bench-check`
// compares a results.json with the goals (e2e/bench/check).
//
// Besides the product's figures, three benchmarks measure the machine's own
// limits in the same run, which BENCHMARKS.md divides the product's figures
// by: BenchmarkPostgresPlainInsert, BenchmarkJetStreamPublish and the
// redis_raw part of BenchmarkAdmitConnect.
package bench

import (
	"testing"

	"github.com/spendledger/spendledger/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
