// Command check compares a results.json written by `make bench` with the
// goals of e2e/bench/figures.Catalog and exits 1 when a figure misses its
// goal or was not measured; with -baseline, also when a figure is worse
// than an earlier run's by more than -tolerance. It prints one line per
// finding on stdout and a one-line summary on stderr.
//
//	go run ./e2e/bench/check [-baseline old.json] [-tolerance 0.2] e2e/bench/results.json
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spendledger/spendledger/e2e/bench/figures"
)

func main() {
	baseline := flag.String("baseline", "", "an earlier results.json to compare with (optional)")
	tolerance := flag.Float64("tolerance", 0.2, "how much worse than the baseline a figure may be, as a fraction")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: check [-baseline old.json] [-tolerance 0.2] results.json")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(flag.Arg(0), *baseline, *tolerance))
}

func run(path, baselinePath string, tolerance float64) int {
	cur, err := figures.ReadResults(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-check:", err)
		return 2
	}
	var base *figures.Results
	if baselinePath != "" {
		b, err := figures.ReadResults(baselinePath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-check:", err)
			return 2
		}
		if b.Short != cur.Short {
			fmt.Fprintln(os.Stderr, "bench-check: one run is a smoke run (BENCH_SHORT) and the other is not; the baseline is ignored")
		}
		base = &b
	}
	if cur.Short {
		fmt.Fprintln(os.Stderr, "bench-check: note: this is a smoke run (BENCH_SHORT); its figures say little about the goals")
	}
	findings := figures.Check(cur, base, tolerance)
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "bench-check: %d finding(s) in %s\n", len(findings), path)
		return 1
	}
	fmt.Fprintf(os.Stderr, "bench-check: %d figures, every goal met\n", len(cur.Figures))
	return 0
}
