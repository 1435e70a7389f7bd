package figures

import (
	"path/filepath"
	"testing"
	"time"
)

func TestAssembleJoinsFiguresWithGoalsAndLimits(t *testing.T) {
	at := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	lines := []Line{
		{Name: "ledger_ingest_entries_per_s", Value: 10_000, At: at, Load1: ptr(2.5)},
		{Name: "ledger_ingest_entries_per_s", Value: 31_000, At: at, Load1: ptr(0.5), Note: "last"},
		{Name: LimitPostgresInsert, Value: 240_000, At: at},
		{Name: "ledger_lag_p99_ms", Value: 12.5, At: at},
		{Name: "admission_admits_per_s_c64", Value: 5_000, At: at}, // its limit is not measured
		{Fact: FactRedisVersion, FactValue: "7.0.15", At: at},
	}
	gb := []GoBench{{Pkg: "github.com/spendledger/spendledger/ledger/pricing", Name: "BenchmarkCost",
		Iterations: 10, Metrics: []Metric{{250, "ns/op"}, {0, "allocs/op"}}}}
	res, missing := Assemble(lines, gb, at, false)

	got := map[string]Result{}
	for _, r := range res {
		got[r.Name] = r
	}
	ingest := got["ledger_ingest_entries_per_s"]
	if ingest.Value != 31_000 || ingest.Note != "last" || *ingest.Load1 != 0.5 {
		t.Errorf("the last measurement should count: %+v", ingest)
	}
	if ingest.Limit == nil || *ingest.Limit != 240_000 || ingest.Ratio == nil || *ingest.Ratio != 31_000.0/240_000 {
		t.Errorf("ingest limit/ratio = %v/%v, want 240000 and 31000/240000", ingest.Limit, ingest.Ratio)
	}
	if ingest.Goal == nil || *ingest.Goal != 30_000 || ingest.GoalKind != "at_least" || ingest.Met == nil || !*ingest.Met {
		t.Errorf("ingest goal: %+v", ingest)
	}
	if lag := got["ledger_lag_p99_ms"]; lag.GoalKind != "at_most" || !*lag.Met || lag.Limit != nil || lag.Ratio != nil {
		t.Errorf("lag: %+v", lag)
	}
	if adm := got["admission_admits_per_s_c64"]; *adm.Met || adm.Limit != nil {
		t.Errorf("admission: %+v", adm)
	}
	if c := got["pricing_cost_events_per_s"]; c.Value != 4_000_000 || c.Date != "2026-11-22" || c.Load1 != nil {
		t.Errorf("pricing from Go bench: %+v", c)
	}
	if got[LimitPostgresInsert].Goal != nil {
		t.Errorf("a limit has no goal: %+v", got[LimitPostgresInsert])
	}
	if len(res)+len(missing) != len(Catalog) {
		t.Errorf("%d results + %d missing != %d catalog figures", len(res), len(missing), len(Catalog))
	}
	for _, m := range missing {
		if _, ok := got[m]; ok {
			t.Errorf("%s both measured and missing", m)
		}
	}
	if Facts(lines)[FactRedisVersion] != "7.0.15" {
		t.Errorf("facts: %v", Facts(lines))
	}
}

func TestResultsRoundTripThroughJSON(t *testing.T) {
	at := time.Now().UTC().Truncate(time.Second)
	res, missing := Assemble([]Line{{Name: "gateway_added_p50_ms", Value: 0.25, At: at}}, nil, at, true)
	path := filepath.Join(t.TempDir(), "results.json")
	in := Results{GeneratedAt: at, Short: true, Figures: res, Missing: missing, Machine: DetectMachine(nil)}
	if err := WriteResults(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Short || len(out.Figures) != 1 || out.Figures[0].Value != 0.25 || *out.Figures[0].Goal != 0.3 || len(out.Missing) != len(Catalog)-1 {
		t.Errorf("round trip: %+v", out)
	}
	if out.Machine.Cores < 1 || out.Machine.Go == "" || out.Machine.NATS != "unknown" {
		t.Errorf("machine: %+v", out.Machine)
	}
}

func TestCatalogIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	sections := map[Section]bool{}
	for _, s := range Sections {
		sections[s] = true
	}
	for _, s := range Catalog {
		if seen[s.Name] {
			t.Errorf("%s twice", s.Name)
		}
		seen[s.Name] = true
		if !sections[s.Section] || s.Unit == "" || s.Title == "" || s.Command == "" || (s.Better != Higher && s.Better != Lower) {
			t.Errorf("incomplete spec %+v", s)
		}
		if s.Limit != "" {
			if l, ok := Lookup(s.Limit); !ok || l.Section != SectionLimits {
				t.Errorf("%s: limit %q is not a limit figure", s.Name, s.Limit)
			}
		}
		if s.Section == SectionLimits && s.Goal != 0 {
			t.Errorf("%s: a limit has no goal", s.Name)
		}
	}
}

func ptr(v float64) *float64 { return &v }
