// Command report assembles one `make bench` run into BENCHMARKS.md and
// results.json.
//
// It reads the run directory that `make bench` filled: figures.jsonl (the
// measurements the load drivers of e2e/bench recorded) and unit.txt (the Go
// benchmark output of the other packages), joins them with the figure
// catalog (e2e/bench/figures), detects the machine, and writes both files.
// The prose of BENCHMARKS.md lives in the template benchmarks.md.tmpl beside
// this file, so what the figures mean survives every regeneration while
// every figure comes from the run.
//
//	go run ./e2e/bench/report -run e2e/.logs/bench -md BENCHMARKS.md -json e2e/bench/results.json
package main

import (
	"bytes"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/spendledger/spendledger/e2e/bench/figures"
)

//go:embed benchmarks.md.tmpl
var defaultTemplate string

func main() {
	runDir := flag.String("run", "e2e/.logs/bench", "directory holding the run's figures.jsonl and unit.txt")
	mdPath := flag.String("md", "BENCHMARKS.md", "where to write the report")
	jsonPath := flag.String("json", "e2e/bench/results.json", "where to write the figures, machine-readable")
	command := flag.String("command", "make bench", "the command that produced the run, for the report")
	flag.Parse()
	if err := run(*runDir, *mdPath, *jsonPath, *command); err != nil {
		slog.Error("bench report", "err", err)
		os.Exit(1)
	}
}

func run(runDir, mdPath, jsonPath, command string) error {
	lines, err := figures.ReadRecord(filepath.Join(runDir, "figures.jsonl"))
	if err != nil {
		return err
	}
	gobench, unitAt, err := readGoBench(filepath.Join(runDir, "unit.txt"))
	if err != nil {
		return err
	}
	short := figures.Short()
	for _, l := range lines {
		short = short || l.Short
	}
	res := figures.Results{GeneratedAt: time.Now().UTC(), Short: short, Command: command,
		Machine: figures.DetectMachine(figures.Facts(lines))}
	res.Figures, res.Missing = figures.Assemble(lines, gobench, unitAt, short)

	md, err := render(defaultTemplate, res, gobench)
	if err != nil {
		return err
	}
	if err := os.WriteFile(mdPath, md, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", mdPath, err)
	}
	if err := figures.WriteResults(jsonPath, res); err != nil {
		return err
	}
	slog.Info("bench report written", "md", mdPath, "json", jsonPath,
		"figures", len(res.Figures), "missing", len(res.Missing), "short", short)
	return nil
}

// readGoBench parses the Go benchmark output of the run and dates it by the
// file's modification time (when the benchmarks finished). No file means
// the unit benchmarks did not run: their figures are missing, not an error.
func readGoBench(path string) ([]figures.GoBench, time.Time, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Now(), nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	gb, err := figures.ParseGoBench(f)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return gb, st.ModTime(), nil
}

// render fills the template.
func render(tmpl string, res figures.Results, gobench []figures.GoBench) ([]byte, error) {
	t, err := template.New("BENCHMARKS.md").Funcs(template.FuncMap{
		"table":     func(s string) string { return sectionTable(res, figures.Section(s)) },
		"machine":   func() string { return machineTable(res) },
		"unitTable": func() string { return goBenchTable(gobench) },
		"missing":   func() []string { return res.Missing },
		"generated": func() string { return res.GeneratedAt.Format("2006-01-02 15:04 UTC") },
		"short":     func() bool { return res.Short },
		"command":   func() string { return res.Command },
	}).Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, nil); err != nil {
		return nil, fmt.Errorf("render template: %w", err)
	}
	return buf.Bytes(), nil
}
