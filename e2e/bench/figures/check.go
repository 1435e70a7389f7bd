package figures

import (
	"fmt"
	"strings"
)

// Finding is one reason a results.json fails the check.
type Finding struct {
	Name   string
	Kind   string // "missing", "goal", "regression"
	Detail string
}

func (f Finding) String() string { return fmt.Sprintf("%-10s %-42s %s", f.Kind, f.Name, f.Detail) }

// Check judges cur against the Catalog's goals: every figure with a goal
// must be measured and meet it. With a baseline (an earlier results.json of
// the same kind of run), a figure also fails when it is worse than the
// baseline's by more than tolerance (0.2: 20%); a smoke run and a full run
// are not compared with each other.
func Check(cur Results, baseline *Results, tolerance float64) []Finding {
	var out []Finding
	got := map[string]Result{}
	for _, r := range cur.Figures {
		got[r.Name] = r
	}
	for _, s := range Catalog {
		r, ok := got[s.Name]
		switch {
		case !ok && s.Goal != 0:
			out = append(out, Finding{s.Name, "missing", "not measured in this run"})
		case ok && !s.Met(r.Value):
			out = append(out, Finding{s.Name, "goal", fmt.Sprintf("%s %s, goal %s %s %s", Num(r.Value), s.Unit, GoalOp(s.Better), Num(s.Goal), s.Unit)})
		}
	}
	if baseline == nil || baseline.Short != cur.Short {
		return out
	}
	base := map[string]Result{}
	for _, r := range baseline.Figures {
		base[r.Name] = r
	}
	for _, s := range Catalog {
		r, ok1 := got[s.Name]
		b, ok2 := base[s.Name]
		if !ok1 || !ok2 || b.Value == 0 {
			continue
		}
		worse := r.Value < b.Value*(1-tolerance)
		if s.Better == Lower {
			worse = r.Value > b.Value*(1+tolerance)
		}
		if worse {
			out = append(out, Finding{s.Name, "regression", fmt.Sprintf("%s %s, baseline %s (%+.0f%%)",
				Num(r.Value), s.Unit, Num(b.Value), 100*(r.Value/b.Value-1))})
		}
	}
	return out
}

// GoalOp is how a goal reads: ≥ for a minimum, ≤ for a maximum.
func GoalOp(b Better) string {
	if b == Lower {
		return "≤"
	}
	return "≥"
}

// Num prints a figure with about three significant digits, without
// trailing zeros, and thousands separators where it is large: 29,700 or
// 0.312 or 12.4 or 2.
func Num(v float64) string {
	switch {
	case v >= 1000 || v <= -1000:
		return thousands(int64(v + 0.5))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return trimZeros(fmt.Sprintf("%.1f", v))
	case v >= 1:
		return trimZeros(fmt.Sprintf("%.2f", v))
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// trimZeros drops a fraction's trailing zeros: 2.00 is 2, 82.0 is 82.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}
