package figures

import (
	"strings"
	"testing"
)

const sampleGoBench = `goos: linux
goarch: amd64
pkg: github.com/spendledger/spendledger/ledger/pricing
cpu: AMD EPYC
BenchmarkCost         	 4980590	       240.8 ns/op	       0 B/op	       0 allocs/op
BenchmarkUpperBound-2 	83000000	        14.4 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	github.com/spendledger/spendledger/ledger/pricing	3.2s
pkg: github.com/spendledger/spendledger/services/internal/pricer
BenchmarkPriceEvent   	some output written while it ran
  500000	      2180 ns/op	     912 B/op	      14 allocs/op
BenchmarkBroken  not a result
`

func TestParseGoBenchReadsResultsPerPackage(t *testing.T) {
	got, err := ParseGoBench(strings.NewReader(sampleGoBench))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d results, want 3: %+v", len(got), got)
	}
	if got[2].Name != "BenchmarkPriceEvent" || got[2].Pkg != "github.com/spendledger/spendledger/services/internal/pricer" || got[2].Iterations != 500000 {
		t.Errorf("a result split by output written while it ran: %+v", got[2])
	}
	if got[0].Pkg != "github.com/spendledger/spendledger/ledger/pricing" || got[0].Name != "BenchmarkCost" || got[0].Iterations != 4980590 {
		t.Errorf("first = %+v", got[0])
	}
	if v, ok := got[0].Metric("ns/op"); !ok || v != 240.8 {
		t.Errorf("ns/op = %v %v, want 240.8", v, ok)
	}
	if got[1].Name != "BenchmarkUpperBound" {
		t.Errorf("the -GOMAXPROCS suffix is kept: %q", got[1].Name)
	}
}

func TestParseGoBenchJoinsANameSplitFromItsNumbers(t *testing.T) {
	in := "pkg: example.com/p\nBenchmarkSlow-2   \t\n=== some log line\n       1\t3370000000 ns/op\t     29700 events/s\n"
	got, err := ParseGoBench(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "BenchmarkSlow" || got[0].Pkg != "example.com/p" {
		t.Fatalf("got %+v", got)
	}
	if v, _ := got[0].Metric("events/s"); v != 29700 {
		t.Errorf("events/s = %v", v)
	}
}
