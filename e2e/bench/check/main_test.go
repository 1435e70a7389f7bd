package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/bench/figures"
)

// writeRun writes a results.json whose figures are all at their goals
// (limits and figures without a goal at 1), then with overrides.
func writeRun(t *testing.T, overrides map[string]float64) string {
	t.Helper()
	var lines []figures.Line
	for _, s := range figures.Catalog {
		if s.GoBench != nil {
			continue
		}
		v := s.Goal
		if v == 0 {
			v = 1
		}
		if o, ok := overrides[s.Name]; ok {
			v = o
		}
		lines = append(lines, figures.Line{Name: s.Name, Value: v, At: time.Now()})
	}
	gb := []figures.GoBench{{Pkg: "github.com/spendledger/spendledger/ledger/pricing", Name: "BenchmarkCost",
		Metrics: []figures.Metric{{Value: 500, Unit: "ns/op"}}}}
	res, missing := figures.Assemble(lines, gb, time.Now(), false)
	path := filepath.Join(t.TempDir(), "results.json")
	if err := figures.WriteResults(path, figures.Results{Figures: res, Missing: missing}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExitCodes(t *testing.T) {
	good := writeRun(t, nil)
	if code := run(good, "", 0.2); code != 0 {
		t.Errorf("a run at its goals: exit %d", code)
	}
	if code := run(writeRun(t, map[string]float64{"gateway_added_p50_ms": 0.31}), "", 0.2); code != 1 {
		t.Errorf("a missed goal: exit %d", code)
	}
	slower := writeRun(t, map[string]float64{figures.LimitJetStreamPublish: 0.7})
	if code := run(slower, good, 0.2); code != 1 {
		t.Errorf("a 30%% regression against the baseline: exit %d", code)
	}
	if code := run(slower, good, 0.5); code != 0 {
		t.Errorf("a 30%% regression within a 50%% tolerance: exit %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run(bad, "", 0.2); code != 2 {
		t.Errorf("an unreadable file: exit %d", code)
	}
}
