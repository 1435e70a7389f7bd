package figures

import (
	"strings"
	"testing"
	"time"
)

// fullRun measures every catalog figure at exactly its goal (limits at 1).
func fullRun(short bool) Results {
	var lines []Line
	for _, s := range Catalog {
		v := s.Goal
		if v == 0 {
			v = 1
		}
		lines = append(lines, Line{Name: s.Name, Value: v, At: time.Now()})
	}
	// Go benchmark figures come from Go's output: 1e9/1e6 = 1000 ns/op.
	gb := []GoBench{
		{Pkg: "github.com/spendledger/spendledger/ledger/pricing", Name: "BenchmarkCost", Metrics: []Metric{{1000, "ns/op"}}},
		{Pkg: "github.com/spendledger/spendledger/ledger/pricing", Name: "BenchmarkUpperBound", Metrics: []Metric{{1, "ns/op"}}},
		{Pkg: "github.com/spendledger/spendledger/services/internal/pricer", Name: "BenchmarkPriceEvent", Metrics: []Metric{{1000, "ns/op"}}},
	}
	res, _ := Assemble(lines, gb, time.Now(), short)
	return Results{Short: short, Figures: res}
}

func set(r Results, name string, v float64) Results {
	out := r
	out.Figures = append([]Result(nil), r.Figures...)
	for i := range out.Figures {
		if out.Figures[i].Name == name {
			out.Figures[i].Value = v
		}
	}
	return out
}

func drop(r Results, name string) Results {
	out := r
	out.Figures = nil
	for _, f := range r.Figures {
		if f.Name != name {
			out.Figures = append(out.Figures, f)
		}
	}
	return out
}

func TestCheckPassesARunAtItsGoals(t *testing.T) {
	if f := Check(fullRun(false), nil, 0.2); len(f) != 0 {
		t.Fatalf("findings on a run exactly at its goals: %v", f)
	}
}

func TestCheckFindsMissedGoalsBothWays(t *testing.T) {
	run := set(set(fullRun(false), "ledger_ingest_entries_per_s", 29_999), "admission_p99_ms_at_5k", 2.01)
	f := Check(run, nil, 0.2)
	if len(f) != 2 || f[0].Kind != "goal" || f[1].Kind != "goal" {
		t.Fatalf("findings = %v", f)
	}
	if !strings.Contains(f[0].String(), "ledger_ingest_entries_per_s") || !strings.Contains(f[0].Detail, "≥ 30,000 entries/s") {
		t.Errorf("finding reads %q", f[0])
	}
	if !strings.Contains(f[1].Detail, "≤ 2 ms") {
		t.Errorf("finding reads %q", f[1])
	}
}

func TestCheckFindsAFigureWithAGoalMissing(t *testing.T) {
	f := Check(drop(drop(fullRun(false), "gateway_added_p99_ms"), "gateway_p99_ms_c50"), nil, 0.2)
	if len(f) != 1 || f[0].Kind != "missing" || f[0].Name != "gateway_added_p99_ms" {
		t.Fatalf("only the figure with a goal is required: %v", f)
	}
}

func TestCheckFindsRegressionsAgainstABaseline(t *testing.T) {
	base := set(set(fullRun(false), "ledger_lag_p50_ms", 10), LimitRedisEvalsha, 10_000)
	within := set(set(base, "ledger_lag_p50_ms", 11.9), LimitRedisEvalsha, 8_100)
	if f := Check(within, &base, 0.2); len(f) != 0 {
		t.Errorf("within tolerance: %v", f)
	}
	worse := set(set(base, "ledger_lag_p50_ms", 12.1), LimitRedisEvalsha, 7_900)
	f := Check(worse, &base, 0.2)
	if len(f) != 2 || f[0].Kind != "regression" || f[1].Kind != "regression" {
		t.Fatalf("findings = %v", f)
	}
	short := fullRun(true)
	if f := Check(worse, &short, 0.2); len(f) != 0 {
		t.Errorf("a smoke run is no baseline for a full run: %v", f)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{29_700: "29,700", 4_150_000: "4,150,000", 240.8: "241", 12.44: "12.4", 2.71: "2.71", 0.312: "0.312", 0: "0", 2: "2", 82: "82", 10.04: "10"} {
		if got := Num(v); got != want {
			t.Errorf("Num(%v) = %q, want %q", v, got, want)
		}
	}
}
