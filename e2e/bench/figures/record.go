package figures

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RecordEnv names the file a run's measurements are appended to (JSON
// lines). Unset, Append does nothing.
const RecordEnv = "SPENDLEDGER_BENCH_RECORD"

// ShortEnv, set to 1, asks every load driver for a smoke run: a tenth or
// less of the full counts and durations, to prove the pipeline works. Its
// figures are marked short and compare with nothing.
const ShortEnv = "BENCH_SHORT"

// Short reports whether this is a smoke run.
func Short() bool { return os.Getenv(ShortEnv) == "1" }

// Line is one line of a run's record file: a measured figure, or a fact
// about the run (a server version) when Fact is set.
type Line struct {
	Name  string    `json:"name,omitempty"`
	Value float64   `json:"value,omitempty"`
	Note  string    `json:"note,omitempty"`
	At    time.Time `json:"at"`
	// Load1 is the one-minute load average when the line was written (nil
	// for Go benchmark output, which does not say).
	Load1 *float64 `json:"load1,omitempty"`
	Short bool     `json:"short,omitempty"`
	// Fact and FactValue describe the run rather than measure it.
	Fact      string `json:"fact,omitempty"`
	FactValue string `json:"fact_value,omitempty"`
}

var appendMu sync.Mutex

// Append records a measurement of the catalog figure name in the run's
// record file. A name outside the Catalog is an error: figures are named
// in one place.
func Append(name string, value float64, note string) error {
	if _, ok := Lookup(name); !ok {
		return fmt.Errorf("figures: %q is not in the catalog", name)
	}
	return appendLine(Line{Name: name, Value: value, Note: note})
}

// AppendFact records a fact about the run, such as a server's version.
func AppendFact(key, value string) error {
	return appendLine(Line{Fact: key, FactValue: value})
}

func appendLine(l Line) error {
	path := os.Getenv(RecordEnv)
	if path == "" {
		return nil
	}
	load := Load1()
	l.At, l.Load1, l.Short = time.Now().UTC(), &load, Short()
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("figures: encode %s: %w", l.Name+l.Fact, err)
	}
	appendMu.Lock()
	defer appendMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("figures: open record file: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("figures: append to %s: %w", path, err)
	}
	return f.Close()
}

// ReadRecord reads a record file. A missing file is an empty run (every
// load driver failed before measuring).
func ReadRecord(path string) ([]Line, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("figures: %w", err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("figures: %s line %d: %w", path, n, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("figures: read %s: %w", path, err)
	}
	return out, nil
}

// Load1 is the one-minute load average now (0 where /proc is missing): on
// a shared machine it says how much to trust a figure.
func Load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
