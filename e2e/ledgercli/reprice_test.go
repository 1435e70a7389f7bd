package ledgercli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
)

// gpt-4o with a cheaper cache read than the built-in 1.25e-06 USD per token;
// input and output as built in (a file's entry replaces the built-in one
// whole, so it restates them).
const cheaperCache = `{"gpt-4o": {"litellm_provider": "openai", "mode": "chat",
  "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
  "cache_read_input_token_cost": 2.5e-07}}`

// Usage priced by the pricing service with the built-in catalog, re-priced
// with a cheaper gpt-4o cache read: the corrections sum to exactly the
// difference computed from the token counts, land on the same counters
// (verify passes), and a second identical reprice adds nothing.
func TestRepriceCorrectsChangedCosts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	since := time.Now().Add(-time.Second).UTC()

	var want int64 // nano-USD, the correction total
	gptChanged, events := 0, 0
	for i := range 24 {
		cached := int64(1000 * (i % 4)) // a quarter of the calls read no cache
		u := usage("key-a", "team-a", "gpt-4o", "openai", "gpt-4o",
			&eventsv1.TokenCounts{Input: int64(100 + i), CacheRead: cached, Output: 50})
		u.ReservationId, u.ReservedNanos = fmt.Sprintf("res-%d", i), 1_000_000
		e.publish(js.UsageSubject("key-a"), u.GetEventId(), u)
		// 1.25e-06 → 2.5e-07 USD per cached token: 1250 → 250 nano-USD.
		want += cached * (250 - 1250)
		if cached > 0 {
			gptChanged++
		}
		events++
	}
	for i := range 6 {
		u := usage("key-b", "team-a", "claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5",
			&eventsv1.TokenCounts{Input: int64(10 + i), CacheRead: 700, Output: 20})
		e.publish(js.UsageSubject("key-b"), u.GetEventId(), u)
		events++
	}
	// Priced by the pricing service and ingested by the ledger.
	var rows, original int64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := e.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(total_nanos), 0)::bigint FROM ledger_entries`).Scan(&rows, &original); err != nil {
			t.Fatal(err)
		}
		if rows == int64(events) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rows != int64(events) {
		t.Fatalf("ledger holds %d entries, want %d", rows, events)
	}
	e.verify()

	file := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(file, []byte(cheaperCache), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"reprice", "--since", since.Format(time.RFC3339Nano), "--catalog-file", file}
	wantUSD := fmt.Sprintf("-$%d.%09d", -want/1e9, -want%1e9)

	// A dry run reports the same and writes nothing.
	out := e.run(append(args, "--dry-run")...)
	if number(t, out, "corrected") != int64(gptChanged) || !strings.Contains(out, wantUSD) || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run report (want %d corrected, %s):\n%s", gptChanged, wantUSD, out)
	}
	if n := corrections(t, e); n != 0 {
		t.Fatalf("a dry run wrote %d corrections", n)
	}

	out = e.run(args...)
	t.Logf("ledger reprice:\n%s", out)
	if number(t, out, "events read") != int64(events) || number(t, out, "unchanged") != int64(events-gptChanged) ||
		number(t, out, "corrected") != int64(gptChanged) {
		t.Fatalf("report counts:\n%s", out)
	}
	if !regexp.MustCompile(`total difference\s+`+regexp.QuoteMeta(wantUSD)+`\s+\(`+fmt.Sprint(want)+` nano-USD\)`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^gpt-4o\s+24\s+`+fmt.Sprint(gptChanged)+`\s+`+regexp.QuoteMeta(wantUSD)+`$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^claude-sonnet-4-5\s+6\s+0\s+\$0\.000000000$`).MatchString(out) ||
		!strings.Contains(out, fmt.Sprintf("all %d corrections are in the ledger", gptChanged)) {
		t.Fatalf("report (want total %s):\n%s", wantUSD, out)
	}

	// The corrections: one per changed event, summing to the difference,
	// each on its original's counters and window, with no reservation.
	var n, sum, mismatched int64
	err := e.pool.QueryRow(ctx, `
SELECT count(*), coalesce(sum(c.total_nanos), 0)::bigint,
       count(*) FILTER (WHERE c.counter_keys <> o.counter_keys OR c.occurred_at <> o.occurred_at
                        OR c.key_id <> o.key_id OR c.model_group <> o.model_group OR c.reservation_id <> ''
                        OR c.stream_seq = 0)
FROM ledger_entries c JOIN ledger_entries o ON o.event_id = c.corrects_event_id`).Scan(&n, &sum, &mismatched)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(gptChanged) || sum != want || mismatched != 0 {
		t.Fatalf("corrections: %d summing to %d (%d unlike their original); want %d summing to %d", n, sum, mismatched, gptChanged, want)
	}
	e.verify()

	// The same reprice again: nothing changed, nothing written.
	out = e.run(args...)
	if number(t, out, "corrected") != 0 || number(t, out, "unchanged") != int64(events) ||
		!regexp.MustCompile(`total difference\s+\$0\.000000000`).MatchString(out) {
		t.Fatalf("second reprice:\n%s", out)
	}
	if got := corrections(t, e); got != int64(gptChanged) {
		t.Fatalf("%d corrections after the second reprice, want %d", got, gptChanged)
	}
	// And back to the built-in prices: the corrections are reversed exactly.
	out = e.run("reprice", "--since", since.Format(time.RFC3339Nano))
	if number(t, out, "corrected") != int64(gptChanged) {
		t.Fatalf("reprice back to the built-in catalog:\n%s", out)
	}
	var total int64
	if err := e.pool.QueryRow(ctx, `SELECT sum(total_nanos)::bigint FROM ledger_entries`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != original {
		t.Fatalf("ledger total %d after re-pricing back, want the original %d", total, original)
	}
	e.verify()
}

func corrections(t *testing.T, e *env) int64 {
	t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger_entries WHERE corrects_event_id IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
