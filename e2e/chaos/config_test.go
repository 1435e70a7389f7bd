package chaos_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
)

// config is one run's knobs, from the environment (see the package doc).
type config struct {
	mode     string   // "short" or "long"
	catalog  []string // the faults a round runs, each once
	seed     uint64
	steps    int           // faults to run at most; 0: no bound
	duration time.Duration // schedule no fault after this; 0: no bound
	clients  int
	report   string        // markdown report path
	gapMin   time.Duration // quiet time before each fault, drawn in [gapMin, gapMax)
	gapMax   time.Duration
}

func loadConfig(t *testing.T) config {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := config{mode: os.Getenv("CHAOS_MODE")}
	switch c.mode {
	case "", "short":
		c.mode = "short"
		c.catalog = faults
		c.steps, c.clients = len(c.catalog), 6
		c.gapMin, c.gapMax = time.Second, 3*time.Second
		// Git-ignored, next to the logs the harness keeps of a failed test.
		c.report = filepath.Join(root, "e2e", ".logs", "chaos", "REPORT-short.md")
	case "long":
		c.catalog = append(append([]string(nil), faults...), compoundFaults...)
		c.duration, c.clients = 5*time.Minute, 8
		c.gapMin, c.gapMax = 2*time.Second, 8*time.Second
		c.report = filepath.Join(root, "e2e", "chaos", "REPORT.md")
	default:
		t.Fatalf("CHAOS_MODE=%q: want short or long", c.mode)
	}

	c.seed = uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: want an unsigned integer: %v", v, err)
		}
		c.seed = n
	}
	steps, stepsSet := envInt(t, "CHAOS_STEPS", 1, 1_000_000)
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("CHAOS_DURATION=%q: want a positive Go duration such as 10m", v)
		}
		c.duration = d
		if !stepsSet {
			c.steps = 0 // the duration alone bounds the run
		}
	}
	if stepsSet {
		c.steps = steps
		if os.Getenv("CHAOS_DURATION") == "" {
			c.duration = 0 // the steps alone bound the run
		}
	}
	if n, ok := envInt(t, "CHAOS_CLIENTS", 1, 64); ok {
		c.clients = n
	}
	if v := os.Getenv("CHAOS_REPORT"); v != "" {
		c.report = v
	}
	return c
}

// envInt reads an integer in [lo, hi] from the environment; false when unset.
func envInt(t *testing.T, name string, lo, hi int) (int, bool) {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		t.Fatalf("%s=%q: want an integer in %d..%d", name, v, lo, hi)
	}
	return n, true
}
