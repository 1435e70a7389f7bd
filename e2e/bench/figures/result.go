package figures

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Results is results.json: the machine, and one record per figure measured.
type Results struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Short marks a smoke run (BENCH_SHORT=1): reduced counts, figures not
	// comparable with a full run's.
	Short   bool     `json:"short"`
	Command string   `json:"command"`
	Machine Machine  `json:"machine"`
	Figures []Result `json:"figures"`
	// Missing names the catalog figures this run did not measure.
	Missing []string `json:"missing,omitempty"`
}

// Result is one figure of one run. Goal, Limit and Ratio are null where the
// figure has no goal or no limit was measured for it.
type Result struct {
	Name  string   `json:"name"`
	Value float64  `json:"value"`
	Unit  string   `json:"unit"`
	Goal  *float64 `json:"goal"`
	// GoalKind is "at_least" (throughput) or "at_most" (latency, time).
	GoalKind   string    `json:"goal_kind,omitempty"`
	Met        *bool     `json:"met,omitempty"`
	Limit      *float64  `json:"limit"`
	LimitName  string    `json:"limit_name,omitempty"`
	Ratio      *float64  `json:"ratio"`
	Date       string    `json:"date"`
	MeasuredAt time.Time `json:"measured_at"`
	Section    Section   `json:"section"`
	Title      string    `json:"title"`
	Command    string    `json:"command"`
	Note       string    `json:"note,omitempty"`
	// Load1 is the machine's one-minute load average when the figure was
	// taken: the noise it was taken in (null where unknown).
	Load1 *float64 `json:"load1"`
	Short bool     `json:"short,omitempty"`
}

// Assemble turns a run's recorded lines and Go benchmark results into one
// Result per catalog figure measured, in catalog order, and names the ones
// not measured. goBenchAt dates the Go benchmark figures (they carry no
// time of their own). When a figure was recorded more than once, the last
// measurement counts.
func Assemble(lines []Line, gobench []GoBench, goBenchAt time.Time, short bool) (results []Result, missing []string) {
	last := map[string]Line{}
	for _, l := range lines {
		if l.Fact == "" {
			last[l.Name] = l
		}
	}
	for _, s := range Catalog {
		var (
			l  Line
			ok bool
		)
		if s.GoBench != nil {
			l, ok = fromGoBench(s.GoBench, gobench, goBenchAt, short)
		} else {
			l, ok = last[s.Name]
		}
		if !ok {
			missing = append(missing, s.Name)
			continue
		}
		results = append(results, newResult(s, l))
	}
	byName := map[string]Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	for i, r := range results {
		s, _ := Lookup(r.Name)
		lim, ok := byName[s.Limit]
		if s.Limit == "" || !ok || lim.Value == 0 {
			continue
		}
		v, ratio := lim.Value, r.Value/lim.Value
		results[i].Limit, results[i].LimitName, results[i].Ratio = &v, s.Limit, &ratio
	}
	return results, missing
}

func newResult(s Spec, l Line) Result {
	r := Result{
		Name: s.Name, Value: l.Value, Unit: s.Unit,
		Date: l.At.Format(time.DateOnly), MeasuredAt: l.At,
		Section: s.Section, Title: s.Title, Command: s.Command, Note: l.Note,
		Load1: l.Load1, Short: l.Short,
	}
	if s.Goal != 0 {
		g, met := s.Goal, s.Met(l.Value)
		r.Goal, r.Met, r.GoalKind = &g, &met, goalKind(s.Better)
	}
	return r
}

func goalKind(b Better) string {
	if b == Lower {
		return "at_most"
	}
	return "at_least"
}

func fromGoBench(src *GoBenchSource, gobench []GoBench, at time.Time, short bool) (Line, bool) {
	for i := len(gobench) - 1; i >= 0; i-- {
		g := gobench[i]
		if g.Pkg != src.Pkg || g.Name != src.Bench {
			continue
		}
		v, ok := g.Metric(src.Metric)
		if !ok {
			continue
		}
		note := fmt.Sprintf("%d iterations, %g %s", g.Iterations, v, src.Metric)
		if allocs, ok := g.Metric("allocs/op"); ok {
			note += fmt.Sprintf(", %g allocs/op", allocs)
		}
		if src.Convert != nil {
			v = src.Convert(v)
		}
		return Line{Value: v, Note: note, At: at.UTC(), Short: short}, true
	}
	return Line{}, false
}

// Facts collects the run's facts (last value of each key wins).
func Facts(lines []Line) map[string]string {
	out := map[string]string{}
	for _, l := range lines {
		if l.Fact != "" {
			out[l.Fact] = l.FactValue
		}
	}
	return out
}

// WriteResults writes results.json, indented so a diff of two runs reads.
func WriteResults(path string, r Results) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("figures: encode results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("figures: write results: %w", err)
	}
	return nil
}

// ReadResults reads a results.json.
func ReadResults(path string) (Results, error) {
	var r Results
	data, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("figures: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("figures: %s: %w", path, err)
	}
	return r, nil
}
