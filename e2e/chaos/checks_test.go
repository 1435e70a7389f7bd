package chaos_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spendledger/spendledger/e2e/harness"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/money"
)

// quiescenceTimeout bounds the wait for the pipeline to drain after the load
// stopped: the gateways' spools, the USAGE and COSTS consumers, the ledger's
// projection backlog.
const quiescenceTimeout = 3 * time.Minute

// listed is how many examples a failed check names.
const listed = 10

// check is one invariant's verdict.
type check struct {
	name   string
	ok     bool
	detail string
}

// entry is one ledger row of the run.
type entry struct {
	eventID, requestID, keyID string
	nanos                     money.Nanos
}

// books is what the checks found, for the report.
type books struct {
	checks       []check
	ledgerSum    money.Nanos
	expectedSum  money.Nanos
	entries      int
	keySpend     map[string]money.Nanos // by key id
	quiescentIn  time.Duration
	verifyOutput string
}

// checkBooks waits for quiescence, then checks every invariant against the
// requests as the clients saw them.
func checkBooks(t *testing.T, st *harness.Stack, keys *keyring, reqs []*request, steps []step) *books {
	t.Helper()
	b := &books{}
	start := time.Now()
	quiet, why := waitQuiescent(t, st)
	b.quiescentIn = time.Since(start)
	b.checks = append(b.checks, check{"quiescence", quiet, why})

	entries := readLedger(t, st)
	b.entries = len(entries)
	b.keySpend = map[string]money.Nanos{}
	for _, e := range entries {
		b.ledgerSum += e.nanos
		b.keySpend[e.keyID] += e.nanos
	}

	b.checks = append(b.checks, eachSuccessOnce(reqs, byRequest(entries), steps))
	b.checks = append(b.checks, noEntryWithoutSuccess(reqs, entries, steps))
	for _, r := range reqs {
		if r.outcome == ok {
			b.expectedSum += r.cost
		}
	}
	b.checks = append(b.checks, check{
		name:   "ledger sum equals the costs the clients were told, to the nano-dollar",
		ok:     b.ledgerSum == b.expectedSum,
		detail: fmt.Sprintf("ledger %d nano-USD over %d entries; responses %d nano-USD; difference %d", b.ledgerSum, len(entries), b.expectedSum, b.ledgerSum-b.expectedSum),
	})

	code, out := st.Run("ledger", "verify")
	b.verifyOutput = strings.TrimSpace(out)
	b.checks = append(b.checks, check{
		name:   "ledger verify: every counter equals the ledger",
		ok:     code == 0 && strings.Contains(out, " 0 differ"),
		detail: fmt.Sprintf("exit %d: %s", code, lastLine(out)),
	})
	b.checks = append(b.checks, boundedKeysWithinLimits(keys.all(), b.keySpend, reqs, steps))
	return b
}

// byRequest groups entries by request id: the gateway's call id.
func byRequest(entries []entry) map[string][]entry {
	out := map[string][]entry{}
	for _, e := range entries {
		out[e.requestID] = append(out[e.requestID], e)
	}
	return out
}

// eachSuccessOnce: every 200 has exactly one ledger entry, carrying its call
// id as the request id and costing what the response said.
func eachSuccessOnce(reqs []*request, byCall map[string][]entry, steps []step) check {
	var missing, twice, wrong []string
	n := 0
	for _, r := range reqs {
		if r.outcome != ok {
			continue
		}
		n++
		es := byCall[r.callID]
		switch {
		case len(es) == 0:
			missing = append(missing, describe(r, steps))
		case len(es) > 1:
			twice = append(twice, fmt.Sprintf("%s: %d entries", describe(r, steps), len(es)))
		case es[0].nanos != r.cost:
			wrong = append(wrong, fmt.Sprintf("%s: ledger %d, response %d", describe(r, steps), es[0].nanos, r.cost))
		}
	}
	c := check{name: "every successful request is in the ledger exactly once, at the cost it was told"}
	c.ok = len(missing)+len(twice)+len(wrong) == 0
	c.detail = fmt.Sprintf("%d successful requests: %d missing, %d more than once, %d at another cost", n, len(missing), len(twice), len(wrong))
	c.detail += examples("missing", missing) + examples("more than once", twice) + examples("other cost", wrong)
	return c
}

// noEntryWithoutSuccess: the ledger bills nothing the client did not see
// succeed (a request that failed must not be charged).
func noEntryWithoutSuccess(reqs []*request, entries []entry, steps []step) check {
	okCalls := map[string]bool{}
	seen := map[string]*request{}
	for _, r := range reqs {
		if r.callID != "" {
			seen[r.callID] = r
		}
		if r.outcome == ok {
			okCalls[r.callID] = true
		}
	}
	var extra []string
	for _, e := range entries {
		if okCalls[e.requestID] {
			continue
		}
		what := "no request of the run had this call id"
		if r := seen[e.requestID]; r != nil {
			what = "the client saw " + describe(r, steps)
		}
		extra = append(extra, fmt.Sprintf("entry %s (request %q, %d nano-USD): %s", e.eventID, e.requestID, e.nanos, what))
	}
	return check{
		name:   "no ledger entry without a successful request",
		ok:     len(extra) == 0,
		detail: fmt.Sprintf("%d entries not matching a successful request", len(extra)) + examples("unmatched", extra),
	}
}

// boundedKeysWithinLimits: a key whose requests all set max_tokens never
// spends past its limit, whatever the faults did.
func boundedKeysWithinLimits(keys []*key, spend map[string]money.Nanos, reqs []*request, steps []step) check {
	var over []string
	bounded := 0
	for _, k := range keys {
		if k.mixed {
			continue
		}
		bounded++
		if s := spend[k.id]; s > k.limit {
			over = append(over, fmt.Sprintf("%s (%s): spent %d nano-USD of a %d limit, %d over; %s",
				k.alias, k.id, s, k.limit, s-k.limit, keyStory(k, reqs, steps)))
		}
	}
	return check{
		name:   "no budget exceeded by requests that set max_tokens",
		ok:     len(over) == 0,
		detail: fmt.Sprintf("%d bounded keys, %d over their limit", bounded, len(over)) + examples("over", over),
	}
}

// keyStory tells how a key's successful requests went and which faults
// happened while it was in use, to tie an overspent budget to its cause.
func keyStory(k *key, reqs []*request, steps []step) string {
	var mine []*request
	for _, r := range reqs {
		if r.key == k && r.outcome == ok {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		return "no successful request"
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].end < mine[j].end })
	first, last := mine[0].at, mine[len(mine)-1].end
	story := fmt.Sprintf("%d successful requests answered between %v and %v", len(mine), first.Round(time.Millisecond), last.Round(time.Millisecond))
	var told money.Nanos
	for _, r := range mine {
		if told += r.cost; told > k.limit {
			story += fmt.Sprintf("; the answered costs passed the limit with %s", describe(r, steps))
			break
		}
	}
	var during []string
	for _, st := range steps {
		if st.at+st.took >= first && st.at <= last {
			during = append(during, fmt.Sprintf("step %d %s at %v", st.n, st.fault, st.at.Round(time.Millisecond)))
		}
	}
	if len(during) > 0 {
		story += "; faults while it was in use: " + strings.Join(during, ", ")
	}
	return story
}

// describe names a request and the faults around it, to tie a finding to
// the step that caused it.
func describe(r *request, steps []step) string {
	s := fmt.Sprintf("call %s (key %s, %s, max_tokens %d, stream %t, sent at %v: %s", r.callID, r.key.alias, r.model, r.maxTokens, r.stream, r.at.Round(time.Millisecond), r.outcome)
	if r.why != "" {
		s += " " + r.why
	}
	s += ")"
	var near []string
	for _, st := range steps {
		if r.at >= st.at-2*time.Second && r.at <= st.at+st.took+2*time.Second {
			near = append(near, fmt.Sprintf("step %d %s at %v", st.n, st.fault, st.at.Round(time.Millisecond)))
		}
	}
	if len(near) > 0 {
		s += " near " + strings.Join(near, ", ")
	}
	return s
}

func examples(what string, list []string) string {
	if len(list) == 0 {
		return ""
	}
	more := ""
	if len(list) > listed {
		more = fmt.Sprintf("\n    ... and %d more", len(list)-listed)
		list = list[:listed]
	}
	return "\n  " + what + ":\n    " + strings.Join(list, "\n    ") + more
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// waitQuiescent waits until nothing is in flight anywhere: the gateway's
// spool is empty, the USAGE and COSTS consumers have nothing pending or
// unacknowledged, the ledger has no projection backlog, and the ledger's row
// count held still for two polls in a row.
func waitQuiescent(t *testing.T, st *harness.Stack) (bool, string) {
	t.Helper()
	jsc := connectJetStream(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), quiescenceTimeout)
	defer cancel()
	conn := connectPostgres(t, st)
	lastRows, still := int64(-1), 0
	var why string
	for {
		why = busy(ctx, st, jsc)
		var rows int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM ledger_entries`).Scan(&rows); err != nil {
			why = "count ledger rows: " + err.Error()
		}
		if why == "" && rows == lastRows {
			still++
		} else {
			still = 0
		}
		lastRows = rows
		if still >= 2 {
			return true, fmt.Sprintf("%d ledger entries; spool, consumers and projection backlog empty", rows)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Sprintf("not quiescent after %v: %s", quiescenceTimeout, why)
		case <-time.After(time.Second):
		}
	}
}

// busy says what is still in flight ("" when nothing is).
func busy(ctx context.Context, st *harness.Stack, jsc jetstream.JetStream) string {
	if v, err := metric(ctx, st.GatewayURL, "gateway_spool_depth"); err != nil || v != 0 {
		return fmt.Sprintf("gateway spool depth %v (%v)", v, err)
	}
	// Entries committed but not yet projected into Redis. The gauge's name
	// depends on the ledger's version: the in-memory gap list of old, the
	// pending table now.
	if v, err := metric(ctx, st.LedgerURL, "ledger_projection_pending_entries", "ledger_projection_gap_entries"); err != nil || v != 0 {
		return fmt.Sprintf("ledger projection backlog %v (%v)", v, err)
	}
	for _, c := range []struct{ stream, name string }{{js.UsageStream, "pricing"}, {js.CostsStream, "ledger"}} {
		cons, err := jsc.Consumer(ctx, c.stream, c.name)
		if err != nil {
			return fmt.Sprintf("consumer %s: %v", c.name, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Sprintf("consumer %s info: %v", c.name, err)
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Sprintf("consumer %s: %d pending, %d awaiting ack", c.name, info.NumPending, info.NumAckPending)
		}
	}
	return ""
}

// metric reads an unlabelled gauge or counter from a service's /metrics: the
// first of names it finds.
func metric(ctx context.Context, baseURL string, names ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	found := map[string]string{}
	for sc.Scan() {
		if name, v, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(name, "#") {
			found[name] = v
		}
	}
	for _, name := range names {
		if v, ok := found[name]; ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("none of %v in %s/metrics", names, baseURL)
}

// readLedger returns every ledger entry (the run's keys are the only traffic).
func readLedger(t *testing.T, st *harness.Stack) []entry {
	t.Helper()
	conn := connectPostgres(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := conn.Query(ctx, `SELECT event_id::text, request_id, key_id, total_nanos FROM ledger_entries`)
	if err != nil {
		t.Fatalf("chaos: read ledger: %v", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (entry, error) {
		var e entry
		var nanos int64
		err := row.Scan(&e.eventID, &e.requestID, &e.keyID, &nanos)
		e.nanos = money.Nanos(nanos)
		return e, err
	})
	if err != nil {
		t.Fatalf("chaos: read ledger: %v", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].eventID < out[j].eventID })
	return out
}

func connectPostgres(t *testing.T, st *harness.Stack) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, st.PostgresURL)
	if err != nil {
		t.Fatalf("chaos: connect to Postgres: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
