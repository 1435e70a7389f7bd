package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spendledger/spendledger/e2e/bench/figures"
)

// TestReportFromARun writes a run directory as `make bench` leaves it and
// checks both outputs: every catalog figure appears in BENCHMARKS.md (its
// value, or "not measured"), the prose of the template survives, and
// results.json holds one record per measured figure with goal, limit and
// ratio.
func TestReportFromARun(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(figures.RecordEnv, filepath.Join(dir, "figures.jsonl"))
	t.Setenv(figures.ShortEnv, "")
	for name, v := range map[string]float64{
		"ledger_ingest_entries_per_s":  24_000,
		figures.LimitPostgresInsert:    240_000,
		"gateway_added_p50_ms":         0.25,
		figures.LimitJetStreamPublish:  120_000,
		"pricing_service_events_per_s": 30_000,
		"ledger_replay_seconds":        3.1,
		"admission_admits_per_s_c32":   5_000,
		figures.LimitRedisEvalsha:      10_000,
	} {
		if err := figures.Append(name, v, "note for "+name); err != nil {
			t.Fatal(err)
		}
	}
	if err := figures.AppendFact(figures.FactPostgresVersion, "15.14"); err != nil {
		t.Fatal(err)
	}
	unit := "pkg: github.com/spendledger/spendledger/ledger/pricing\nBenchmarkCost \t 1000000\t 250.0 ns/op\t 0 B/op\t 0 allocs/op\n"
	if err := os.WriteFile(filepath.Join(dir, "unit.txt"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	md, js := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "results.json")
	if err := run(dir, md, js, "make bench"); err != nil {
		t.Fatal(err)
	}

	text, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	out := string(text)
	for _, s := range figures.Catalog {
		if !strings.Contains(out, "`"+s.Name+"`") {
			t.Errorf("BENCHMARKS.md lacks %s", s.Name)
		}
	}
	for _, want := range []string{
		"**24,000 entries/s** — **not met** (note for ledger_ingest_entries_per_s)",
		"| 240,000 rows/s (`limit_postgres_insert100_rows_per_s`) | 0.10 |",
		"**0.25 ms** — met",
		"**4,000,000 events/s** — met",
		"| PostgreSQL | 15.14 |",
		"**not measured in this run**",
		"`BenchmarkCost` | 1000000 | 250 ns/op, 0 B/op, 0 allocs/op |",
		"the replay's first reads also set hint bits", // template prose
	} {
		if !strings.Contains(out, want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
	if strings.Contains(out, "Smoke run") {
		t.Error("a full run is marked as a smoke run")
	}

	var res map[string]any
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	figs := res["figures"].([]any)
	if len(figs) != 9 {
		t.Fatalf("results.json has %d figures, want 9 (8 recorded + pricing from Go)", len(figs))
	}
	for _, f := range figs {
		rec := f.(map[string]any)
		for _, k := range []string{"name", "value", "unit", "goal", "limit", "ratio", "date"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("record %v lacks %q", rec["name"], k)
			}
		}
		if rec["name"] == "pricing_service_events_per_s" && rec["ratio"].(float64) != 0.25 {
			t.Errorf("pricing ratio to the JetStream limit = %v, want 0.25", rec["ratio"])
		}
	}
}

func TestShortRunIsMarked(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(figures.RecordEnv, filepath.Join(dir, "figures.jsonl"))
	t.Setenv(figures.ShortEnv, "1")
	if err := figures.Append("ledger_lag_p99_ms", 9, ""); err != nil {
		t.Fatal(err)
	}
	t.Setenv(figures.ShortEnv, "")
	md, js := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "results.json")
	if err := run(dir, md, js, "BENCH_SHORT=1 make bench"); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(md)
	if !strings.Contains(string(text), "**Smoke run**") || !strings.Contains(string(text), "`BENCH_SHORT=1 make bench`") {
		t.Error("a smoke run is not marked in BENCHMARKS.md")
	}
	res, err := figures.ReadResults(js)
	if err != nil || !res.Short {
		t.Errorf("results.json short = %v, %v", res.Short, err)
	}
}

func TestTemplateShowsEverySection(t *testing.T) {
	for _, s := range figures.Sections {
		if !strings.Contains(defaultTemplate, `{{table "`+string(s)+`"}}`) {
			t.Errorf("the template never shows section %s", s)
		}
	}
}
