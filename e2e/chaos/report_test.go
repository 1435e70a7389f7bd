package chaos_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spendledger/spendledger/ledger/money"
)

// run is one chaos run, as the report tells it.
type run struct {
	cfg      config
	started  time.Time
	backend  string
	keys     *keyring
	steps    []step
	requests []*request
	loadTook time.Duration
	books    *books // nil when the run stopped before the checks
}

// writeReport writes the run's markdown report to cfg.report.
func (r *run) writeReport(t *testing.T) {
	var b strings.Builder
	r.header(&b)
	r.loadSection(&b)
	r.faultSection(&b)
	r.checkSection(&b)
	r.budgetSection(&b)
	if err := os.MkdirAll(filepath.Dir(r.cfg.report), 0o755); err != nil {
		t.Errorf("chaos: report: %v", err)
		return
	}
	if err := os.WriteFile(r.cfg.report, []byte(b.String()), 0o644); err != nil {
		t.Errorf("chaos: report: %v", err)
		return
	}
	t.Logf("chaos: report written to %s", r.cfg.report)
}

func (r *run) header(b *strings.Builder) {
	verdict := "PASS: every invariant held"
	switch {
	case r.books == nil:
		verdict = "INCOMPLETE: the run stopped before the checks (see the test log)"
	case r.failed() > 0:
		verdict = fmt.Sprintf("FAIL: %d of %d invariants broken", r.failed(), len(r.books.checks))
	}
	host, _ := os.Hostname()
	fmt.Fprintf(b, "# Chaos report\n\n**%s**\n\n", verdict)
	if r.cfg.mode == "long" {
		b.WriteString("Written by `make chaos` (`e2e/chaos`, long mode). ")
	} else {
		b.WriteString("Written by the short mode of `e2e/chaos`, part of `make test`. ")
	}
	b.WriteString("What it injects and checks: the package doc of `e2e/chaos/chaos_test.go`, and \"Chaos suite\" in `docs/operations.md`.\n\n")
	fmt.Fprintf(b, "| | |\n| --- | --- |\n")
	fmt.Fprintf(b, "| seed | `%d` |\n", r.cfg.seed)
	fmt.Fprintf(b, "| replay | `%s` |\n", r.replayCommand())
	fmt.Fprintf(b, "| mode | %s: %s, %d clients, %v–%v quiet before each fault |\n", r.cfg.mode, r.bounds(), r.cfg.clients, r.cfg.gapMin, r.cfg.gapMax)
	fmt.Fprintf(b, "| date | %s |\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "| machine | %s, %s/%s, %d CPUs, %s; stores: %s binaries |\n", host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), r.backend)
	fmt.Fprintf(b, "| load ran | %v |\n", r.loadTook.Round(time.Second))
	if r.books != nil {
		fmt.Fprintf(b, "| quiescent after | %v |\n", r.books.quiescentIn.Round(time.Second))
	}
	b.WriteString("\n")
}

func (r *run) replayCommand() string {
	if r.cfg.mode == "long" {
		s := fmt.Sprintf("make chaos CHAOS_SEED=%d", r.cfg.seed)
		if r.cfg.steps > 0 {
			s += fmt.Sprintf(" CHAOS_STEPS=%d", r.cfg.steps)
		}
		if r.cfg.duration > 0 {
			s += " CHAOS_DURATION=" + r.cfg.duration.String()
		}
		return s
	}
	return fmt.Sprintf("cd e2e && CHAOS_SEED=%d go test ./chaos/ -run TestChaos -count=1 -v", r.cfg.seed)
}

func (r *run) bounds() string {
	var parts []string
	if r.cfg.steps > 0 {
		parts = append(parts, fmt.Sprintf("at most %d faults", r.cfg.steps))
	}
	if r.cfg.duration > 0 {
		parts = append(parts, fmt.Sprintf("no fault started after %v", r.cfg.duration))
	}
	return strings.Join(parts, ", ")
}

func (r *run) failed() int {
	n := 0
	for _, c := range r.books.checks {
		if !c.ok {
			n++
		}
	}
	return n
}

func (r *run) loadSection(b *strings.Builder) {
	count := map[outcome]int{}
	why := map[string]int{}
	var maxTokens, streamed int
	for _, q := range r.requests {
		count[q.outcome]++
		if q.outcome == failed {
			why[q.why]++
		}
		if q.maxTokens > 0 {
			maxTokens++
		}
		if q.stream {
			streamed++
		}
	}
	fmt.Fprintf(b, "## Load\n\n%d requests from %d clients over %d keys: **%d ok, %d denied (budget), %d failed**. ",
		len(r.requests), r.cfg.clients, len(r.keys.all()), count[ok], count[denied], count[failed])
	fmt.Fprintf(b, "%d set `max_tokens`, %d streamed.\n\n", maxTokens, streamed)
	if len(why) > 0 {
		b.WriteString("| failed requests | count |\n| --- | --- |\n")
		for _, w := range sortedByCount(why) {
			fmt.Fprintf(b, "| %s | %d |\n", strings.ReplaceAll(w, "|", "\\|"), why[w])
		}
		b.WriteString("\n")
	}
}

func (r *run) faultSection(b *strings.Builder) {
	fmt.Fprintf(b, "## Fault schedule\n\nTimes are since the load started; each fault waits out the previous one (every service ready again).\n\n")
	b.WriteString("| step | at | fault | what happened | ready after |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range r.steps {
		fmt.Fprintf(b, "| %d | %v | %s | %s | %v |\n", s.n, s.at.Round(time.Millisecond), s.fault, s.note, s.took.Round(time.Millisecond))
	}
	b.WriteString("\n")
}

func (r *run) checkSection(b *strings.Builder) {
	b.WriteString("## Invariants at quiescence\n\n")
	if r.books == nil {
		b.WriteString("Not checked: the run stopped before quiescence.\n\n")
		return
	}
	b.WriteString("| | invariant | result |\n| --- | --- | --- |\n")
	var details []check
	for _, c := range r.books.checks {
		mark := "✅"
		if !c.ok {
			mark = "❌"
			details = append(details, c)
		}
		summary, _, _ := strings.Cut(c.detail, "\n")
		fmt.Fprintf(b, "| %s | %s | %s |\n", mark, c.name, strings.ReplaceAll(summary, "|", "\\|"))
	}
	b.WriteString("\n")
	for _, c := range details {
		fmt.Fprintf(b, "### ❌ %s\n\n```\n%s\n```\n\n", c.name, c.detail)
	}
	fmt.Fprintf(b, "`ledger verify`:\n\n```\n%s\n```\n\n", tailLines(r.books.verifyOutput, 8))
}

func (r *run) budgetSection(b *strings.Builder) {
	if r.books == nil {
		return
	}
	var boundedSpent, boundedLimit money.Nanos
	var atLimit, bounded int
	var mixed []string
	for _, k := range r.keys.all() {
		spent := r.books.keySpend[k.id]
		if k.mixed {
			mixed = append(mixed, fmt.Sprintf("%s %s of %s", k.alias, spent, k.limit))
			continue
		}
		bounded++
		boundedSpent += spent
		boundedLimit += k.limit
		// Close enough that admission was refusing requests with large max_tokens.
		if k.limit-spent < k.limit/10 {
			atLimit++
		}
	}
	fmt.Fprintf(b, "## Budgets\n\n%d bounded keys (every request with `max_tokens`, limit $%s each): $%s spent of $%s in total; %d ran to within 10%% of their limit. ",
		bounded, boundedLimitUSD, boundedSpent, boundedLimit, atLimit)
	fmt.Fprintf(b, "Mixed keys (some requests without `max_tokens`, not a hard bound, reported only; USD): %s.\n", strings.Join(mixed, "; "))
}

func sortedByCount(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
