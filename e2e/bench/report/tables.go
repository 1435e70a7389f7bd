package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spendledger/spendledger/e2e/bench/figures"
)

// sectionTable is the Markdown table of one section's figures: every
// catalog figure of the section, measured or not, in catalog order.
func sectionTable(res figures.Results, section figures.Section) string {
	got := map[string]figures.Result{}
	for _, r := range res.Figures {
		got[r.Name] = r
	}
	var sb strings.Builder
	sb.WriteString("| figure | goal | result | limit (same run) | result ÷ limit | command | measured |\n")
	sb.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range figures.Catalog {
		if s.Section != section {
			continue
		}
		r, ok := got[s.Name]
		cells := []string{fmt.Sprintf("%s <br>`%s`", s.Title, s.Name), goalCell(s)}
		if !ok {
			cells = append(cells, "**not measured in this run**", "", "", "`"+s.Command+"`", "")
		} else {
			cells = append(cells, resultCell(r), limitCell(r), ratioCell(r), "`"+s.Command+"`", measuredCell(r))
		}
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		sb.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return sb.String()
}

func measuredCell(r figures.Result) string {
	if r.Load1 == nil {
		return r.Date
	}
	return fmt.Sprintf("%s, load %.1f", r.Date, *r.Load1)
}

func goalCell(s figures.Spec) string {
	if s.Goal == 0 {
		return "—"
	}
	return fmt.Sprintf("%s %s %s", figures.GoalOp(s.Better), figures.Num(s.Goal), s.Unit)
}

func resultCell(r figures.Result) string {
	out := fmt.Sprintf("**%s %s**", figures.Num(r.Value), r.Unit)
	if r.Met != nil {
		if *r.Met {
			out += " — met"
		} else {
			out += " — **not met**"
		}
	}
	if r.Note != "" {
		out += " (" + r.Note + ")"
	}
	return out
}

func limitCell(r figures.Result) string {
	if r.Limit == nil {
		return "—"
	}
	s, _ := figures.Lookup(r.LimitName)
	return fmt.Sprintf("%s %s (`%s`)", figures.Num(*r.Limit), s.Unit, r.LimitName)
}

func ratioCell(r figures.Result) string {
	if r.Ratio == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", *r.Ratio)
}

// machineTable describes the machine and the servers the run measured.
func machineTable(res figures.Results) string {
	m := res.Machine
	rows := [][2]string{
		{"CPU", m.CPU}, {"cores", fmt.Sprint(m.Cores)}, {"RAM", m.RAM},
		{"OS", m.OS + ", Linux " + m.Kernel}, {"Go", m.Go},
		{"NATS server", m.NATS}, {"PostgreSQL", m.Postgres}, {"Redis", m.Redis},
	}
	var sb strings.Builder
	sb.WriteString("| | |\n| --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "| %s | %s |\n", r[0], r[1])
	}
	return sb.String()
}

// goBenchTable lists every Go benchmark of the unit packages, grouped by
// package, with all the metrics each printed.
func goBenchTable(gb []figures.GoBench) string {
	if len(gb) == 0 {
		return "No Go benchmark output in this run.\n"
	}
	sorted := append([]figures.GoBench(nil), gb...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Pkg < sorted[j].Pkg })
	var sb strings.Builder
	sb.WriteString("| package | benchmark | iterations | metrics |\n| --- | --- | --- | --- |\n")
	for _, g := range sorted {
		var ms []string
		for _, m := range g.Metrics {
			ms = append(ms, fmt.Sprintf("%s %s", figures.Num(m.Value), m.Unit))
		}
		fmt.Fprintf(&sb, "| `%s` | `%s` | %d | %s |\n", strings.TrimPrefix(g.Pkg, "github.com/spendledger/spendledger/"),
			g.Name, g.Iterations, strings.Join(ms, ", "))
	}
	return sb.String()
}
