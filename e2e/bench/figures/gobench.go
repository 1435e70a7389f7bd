package figures

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// GoBench is one result line of `go test -bench` output.
type GoBench struct {
	Pkg        string
	Name       string // without the -GOMAXPROCS suffix
	Iterations int64
	Metrics    []Metric // in the order printed
}

// Metric is one "value unit" pair of a result line.
type Metric struct {
	Value float64
	Unit  string
}

// Metric returns the value printed with unit.
func (g GoBench) Metric(unit string) (float64, bool) {
	for _, m := range g.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// ParseGoBench reads Go's benchmark format (golang.org/design/14313): "pkg:"
// lines name the package of the results after them; a result is a name
// starting with "Benchmark", an iteration count, then value-unit pairs. The
// testing package prints a name before running the benchmark and the
// numbers after it, so output written meanwhile can split the two across
// lines: a name whose numbers do not follow it on its line is joined with
// the next line that starts with a count.
func ParseGoBench(r io.Reader) ([]GoBench, error) {
	var (
		out     []GoBench
		pkg     string
		pending string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg, pending = strings.TrimSpace(p), ""
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name := pending
		if strings.HasPrefix(f[0], "Benchmark") {
			name, f = f[0], f[1:]
		}
		if name == "" {
			continue
		}
		res, ok := parseCounts(f)
		if !ok {
			// A name followed by other output: its numbers come later.
			if strings.HasPrefix(line, "Benchmark") {
				pending = name
			}
			continue
		}
		pending = ""
		res.Pkg, res.Name = pkg, procsSuffix.ReplaceAllString(name, "")
		out = append(out, res)
	}
	return out, sc.Err()
}

// parseCounts reads "N v unit v unit ...".
func parseCounts(f []string) (GoBench, bool) {
	if len(f) < 3 || len(f)%2 != 1 {
		return GoBench{}, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return GoBench{}, false
	}
	g := GoBench{Iterations: n}
	for i := 1; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return GoBench{}, false
		}
		g.Metrics = append(g.Metrics, Metric{Value: v, Unit: f[i+1]})
	}
	return g, true
}
