// Package bench holds the load drivers `make bench` runs against the real
// stack. They are Go benchmarks, so `go test` without -bench never runs them;
// each drives a bounded amount of load on loopback and reports its figure with
// b.ReportMetric, which `make bench` records.
package bench

import (
	"testing"

	"github.com/spendledger/spendledger/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
