// Package figures is the one place that knows what `make bench` measures:
// the catalog of figures (name, unit, goal, the machine limit it is compared
// with, the command that re-runs it), how a benchmark records a measurement
// during a run, how a run's measurements become results.json records, and
// how a results.json is checked against the goals.
//
// A run flows through three steps:
//
//  1. The load drivers in e2e/bench call Append (through the bench
//     package's record helper) for every figure they measure; Append
//     writes one JSON line to the file named by $SPENDLEDGER_BENCH_RECORD,
//     and does nothing when it is unset, so a benchmark run by hand
//     touches no file. Go benchmarks of other packages (pricing's pure
//     function, the pricer) only print Go's benchmark format; ParseGoBench
//     reads that text.
//  2. Assemble joins both with the Catalog into one Result per figure:
//     value, goal, the limit measured in the same run, the ratio, the date.
//     e2e/bench/report writes them as BENCHMARKS.md and results.json.
//  3. Check compares a results.json with the Catalog's goals (and, if
//     given, an earlier results.json): e2e/bench/check exits non-zero on a
//     missed goal, a missing figure or a regression.
//
// A figure's goal lives only in the Catalog: a results.json carries a copy
// for readers, but Check judges by the Catalog, so an old file cannot lower
// a goal.
package figures
