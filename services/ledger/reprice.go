package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/services/internal/catalogfile"
	"github.com/spendledger/spendledger/services/internal/pricer"
	"github.com/spendledger/spendledger/services/internal/serve"
	"github.com/spendledger/spendledger/services/internal/stores"
)

const repriceHelp = `usage: ledger reprice -since <RFC3339> [-catalog-file <path>] [flags]

Re-prices usage through a new catalog and corrects the ledger where the cost
changed. Reads every UsageRecorded published on USAGE since -since (JetStream
time, which is at or after the request's admission), prices it with the
built-in catalog merged with -catalog-file (the same pricing code and the
same merge as the pricing service), and compares the new cost with what the
ledger holds for the event now: its original entry plus earlier corrections.

For every event whose cost changed it publishes a correction on COSTS: a
CostComputed with its own event id and corrects_event_id = the original's,
the original's usage (same identity, occurred_at and counter keys, so it
lands in the same windows and counters; no reservation), components and total
equal to new minus current cost, per component. The ledger service inserts
and projects it like any event, so spend, counters and verify stay in step.
This command waits until every correction is in the ledger (-wait).

Idempotent: a correction's id is derived from the original event id, the new
catalog version and the current cost, so running the same reprice twice
writes nothing the second time, and an interrupted run can be run again.
Run one reprice at a time, with the ledger service running.

Not corrected, and counted in the report: events the new catalog cannot fully
price (an unknown price is never read as zero, so it never lowers a cost),
events not in the ledger (not priced or ingested yet, or dead-lettered), and
invalid events.

Prints a report: events read, unchanged, corrected, and the total difference,
overall and per model group, in exact dollars. With -dry-run it prints the
same report and writes nothing.
`

// correctionNamespace is the fixed UUID namespace of correction event ids
// (uuid.NewSHA1). It must never change: a re-run while the first run's
// corrections are still in flight (on COSTS, not yet in the ledger) is
// deduplicated only because it mints the same ids.
var correctionNamespace = uuid.MustParse("6f7c1d0e-3b8a-4c61-9a52-2e0f5d7b8c94")

func runReprice(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ledger reprice", repriceHelp, stdout, stderr)
	natsURL := stores.NATSURLFlag(fs.Set)
	dbURL := stores.DatabaseURLFlag(fs.Set)
	catalogFile := catalogfile.Flag(fs.Set)
	since := fs.String("since", "REPRICE_SINCE", "", "re-price usage published at or after this time (RFC3339, e.g. 2026-11-01T00:00:00Z); required")
	batch := fs.Int("batch-size", "REPRICE_BATCH_SIZE", 500, "usage events priced and compared with the ledger per round trip")
	dryRun := fs.Bool("dry-run", "REPRICE_DRY_RUN", false, "print the report, publish nothing")
	wait := fs.Duration("wait", "REPRICE_WAIT", 2*time.Minute, "how long to wait for the corrections to be in the ledger; 0: do not wait")
	if helped, err := fs.parse(args, getenv); helped || err != nil {
		return err
	}
	if *since == "" {
		return errors.New("reprice: -since is required (RFC3339, e.g. 2026-11-01T00:00:00Z)")
	}
	from, err := time.Parse(time.RFC3339Nano, *since)
	if err != nil {
		return fmt.Errorf("reprice: -since: %w", err)
	}
	if *batch < 1 {
		return fmt.Errorf("reprice: -batch-size must be at least 1, got %d", *batch)
	}
	catalog, err := catalogfile.Load(*catalogFile)
	if err != nil {
		return fmt.Errorf("reprice: %w", err)
	}
	log, err := serve.NewLogger(stderr, "ledger", "error")
	if err != nil {
		return err
	}
	nc, stream, err := stores.NATS(*natsURL, "ledger reprice", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	pool, err := postgresPool(ctx, *dbURL, 4)
	if err != nil {
		return err
	}
	defer pool.Close()

	rp := &repricer{
		db: pool, js: stream, pricer: pricer.New(catalog), version: catalog.Version(),
		now: time.Now().UTC(), dryRun: *dryRun, stderr: stderr,
		expected: map[string]int64{},
		report:   repriceReport{Since: from, CatalogVersion: catalog.Version(), CatalogFile: *catalogFile, DryRun: *dryRun},
	}
	if err := rp.run(ctx, from, *batch); err != nil {
		// What was published before the error stays published (and will be
		// applied); say how far it got. Running it again is safe.
		fmt.Fprintln(stdout, "interrupted: the figures cover the events handled before the error")
		writeRepriceReport(stdout, &rp.report)
		return err
	}
	writeRepriceReport(stdout, &rp.report)
	if *dryRun || *wait <= 0 || len(rp.expected) == 0 {
		return nil
	}
	missing, err := rp.waitForLedger(ctx, *wait)
	if err != nil {
		return err
	}
	if missing > 0 {
		return fmt.Errorf("reprice: %d of %d corrections are published on COSTS but not in the ledger after %v: is the ledger service running? They will be applied when it consumes them; re-running this reprice is safe",
			missing, len(rp.expected), *wait)
	}
	fmt.Fprintf(stdout, "all %d corrections are in the ledger\n", len(rp.expected))
	return nil
}

// repricer holds one run's state.
type repricer struct {
	db      pgstore.DB
	js      jetstream.JetStream
	pricer  *pricer.Pricer
	version string
	now     time.Time
	dryRun  bool
	stderr  io.Writer
	bar     *progress // nil until the stream is opened

	// expected is the new total of every event corrected in this run, by
	// lowercase event id: to skip an event the stream holds twice, and to
	// wait until the ledger holds these totals.
	expected map[string]int64
	report   repriceReport
}

func (rp *repricer) run(ctx context.Context, from time.Time, batchSize int) error {
	var cur []*eventsv1.UsageRecorded
	err := readStream(ctx, rp.js, js.UsageStream,
		jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from},
		func(total int64) { rp.bar = newProgress(rp.stderr, "reprice", total) },
		func(m jetstream.Msg, seq uint64) error {
			rp.report.Read++
			rp.bar.add(1)
			var u eventsv1.UsageRecorded
			if err := proto.Unmarshal(m.Data(), &u); err != nil {
				rp.invalid(seq, "undecodable UsageRecorded: "+err.Error())
				return nil
			}
			cur = append(cur, &u)
			if len(cur) < batchSize {
				return nil
			}
			err := rp.batch(ctx, cur)
			cur = cur[:0]
			return err
		})
	if err == nil && len(cur) > 0 {
		err = rp.batch(ctx, cur)
	}
	if rp.bar != nil {
		rp.bar.done()
	}
	if err != nil {
		return fmt.Errorf("reprice: %w", err)
	}
	return nil
}

func (rp *repricer) invalid(seq uint64, reason string) {
	rp.report.Invalid++
	rp.bar.logf(rp.stderr, "USAGE sequence %d: skipped: %s", seq, reason)
}

// batch prices a batch of usage, reads what the ledger holds for those
// events, and publishes a correction for each whose cost changed; it returns
// once JetStream has acknowledged every publish.
func (rp *repricer) batch(ctx context.Context, us []*eventsv1.UsageRecorded) error {
	type item struct {
		u      *eventsv1.UsageRecorded
		id     string
		priced *eventsv1.CostComputed
	}
	items := make([]item, 0, len(us))
	ids := make([]string, 0, len(us))
	inBatch := map[string]bool{}
	for _, u := range us {
		c, err := rp.pricer.Price(u, rp.now)
		if err != nil {
			rp.report.Invalid++
			rp.bar.logf(rp.stderr, "event %q: skipped: %v", u.GetEventId(), err)
			continue
		}
		id := strings.ToLower(u.GetEventId())
		if _, done := rp.expected[id]; done || inBatch[id] {
			// The stream holds the event twice (a gateway re-sent it after
			// the duplicate window): it was dealt with already.
			rp.report.Duplicates++
			continue
		}
		inBatch[id] = true
		items = append(items, item{u: u, id: id, priced: c})
		ids = append(ids, id)
	}
	if len(items) == 0 {
		return nil
	}
	totals, err := pgstore.CurrentTotals(ctx, rp.db, ids)
	if err != nil {
		return err
	}
	comps, err := pgstore.CurrentComponents(ctx, rp.db, ids)
	if err != nil {
		return err
	}

	var acks []jetstream.PubAckFuture
	for _, it := range items {
		current, ok := totals[it.id]
		if !ok {
			rp.report.NotInLedger++
			continue
		}
		if it.priced.GetStatus() != eventsv1.PricingStatus_PRICING_STATUS_PRICED {
			rp.report.Unpriced++
			continue
		}
		corr, delta, err := buildCorrection(it.u, it.priced, current, comps[it.id], rp.version, rp.now)
		if err != nil {
			return err
		}
		group := it.u.GetRoute().GetModelGroup()
		if corr == nil {
			rp.report.Unchanged++
			rp.report.group(group).Read++
			continue
		}
		if err := rp.report.addCorrection(group, delta); err != nil {
			return err
		}
		rp.expected[it.id] = it.priced.GetTotalNanos()
		if rp.dryRun {
			continue
		}
		data, err := proto.Marshal(corr)
		if err != nil {
			return fmt.Errorf("encode correction of %s: %w", it.id, err)
		}
		msg := &nats.Msg{Subject: js.CostSubject(it.u.GetIdentity().GetKeyId()), Data: data}
		fut, err := rp.js.PublishMsgAsync(msg, jetstream.WithMsgID(js.CostMsgID(corr.GetEventId())))
		if err != nil {
			return fmt.Errorf("publish correction of %s: %w", it.id, err)
		}
		acks = append(acks, fut)
	}
	// Every correction is durable on COSTS before the next batch reads the
	// ledger; a failure stops the run (re-running it is safe).
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish correction: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitForLedger polls until the ledger holds the new total of every
// corrected event, or timeout; it returns how many do not yet.
func (rp *repricer) waitForLedger(ctx context.Context, timeout time.Duration) (int, error) {
	ids := make([]string, 0, len(rp.expected))
	for id := range rp.expected {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	bar := newProgress(rp.stderr, "waiting for the ledger to hold the corrections", int64(len(ids)))
	defer bar.done()
	deadline := time.Now().Add(timeout)
	for {
		var pending []string
		for chunk := range slices.Chunk(ids, 1000) {
			totals, err := pgstore.CurrentTotals(ctx, rp.db, chunk)
			if err != nil {
				return 0, fmt.Errorf("reprice: %w", err)
			}
			for _, id := range chunk {
				if t, ok := totals[id]; !ok || t != rp.expected[id] {
					pending = append(pending, id)
				}
			}
		}
		bar.set(len(rp.expected) - len(pending))
		if len(pending) == 0 || time.Now().After(deadline) {
			return len(pending), nil
		}
		ids = pending
		select {
		case <-ctx.Done():
			return len(pending), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// correctionID is the event id of the correction that moves original's cost
// from current to what catalog version says. It is a name-based UUID, so
// the same reprice run twice (or resumed) mints the same id and JetStream and
// the ledger drop the repeat. The current cost is part of the name so that
// re-pricing with catalog A, then B, then A again writes a third correction
// instead of colliding with the first.
func correctionID(original, version string, current int64) string {
	return uuid.NewSHA1(correctionNamespace, []byte(strings.ToLower(original)+"|"+version+"|"+strconv.FormatInt(current, 10))).String()
}

// buildCorrection returns the correction that takes an event from current
// (the ledger's total for it now, and per component currentComponents) to
// the cost in priced, and the difference; nil when the total is unchanged.
// The correction carries the original usage, so it lands in the original's
// windows and counters, but no reservation: the request it settled is over.
// Its components are differences per component, so they sum exactly to its
// total as every entry's must, and say where the difference came from.
func buildCorrection(u *eventsv1.UsageRecorded, priced *eventsv1.CostComputed, current int64,
	currentComponents map[string]int64, version string, now time.Time) (*eventsv1.CostComputed, int64, error) {
	delta, ok := sub(priced.GetTotalNanos(), current)
	if !ok {
		return nil, 0, fmt.Errorf("event %s: new cost %d minus current %d overflows int64", u.GetEventId(), priced.GetTotalNanos(), current)
	}
	if delta == 0 {
		return nil, 0, nil
	}
	var fromParts int64
	for _, v := range currentComponents {
		fromParts += v
	}
	if fromParts != current {
		// Each entry's components sum to its total, so this is a ledger that
		// was edited outside this code: refuse to build on it.
		return nil, 0, fmt.Errorf("event %s: ledger components sum to %d but its total is %d", u.GetEventId(), fromParts, current)
	}
	comps := make([]*eventsv1.CostComponent, 0, len(priced.GetComponents())+len(currentComponents))
	seen := map[string]bool{}
	for _, c := range priced.GetComponents() {
		seen[c.GetName()] = true
		d, ok := sub(c.GetCostNanos(), currentComponents[c.GetName()])
		if !ok {
			return nil, 0, fmt.Errorf("event %s: component %s difference overflows int64", u.GetEventId(), c.GetName())
		}
		if d == 0 {
			continue
		}
		// The new price and rule, and the difference in nanos; no exact
		// cost, because the difference of two rounded costs is not one.
		comps = append(comps, &eventsv1.CostComponent{
			Name: c.GetName(), Tokens: c.GetTokens(), UnitPrice: c.GetUnitPrice(),
			Source: c.GetSource(), SourceDetail: c.GetSourceDetail(), CostNanos: d,
		})
	}
	// Components the ledger charged that the new pricing does not list
	// (none when tokens are unchanged, but the sum must hold regardless).
	var rest []string
	for name, v := range currentComponents {
		if !seen[name] && v != 0 {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		if currentComponents[name] == math.MinInt64 {
			return nil, 0, fmt.Errorf("event %s: component %s difference overflows int64", u.GetEventId(), name)
		}
		comps = append(comps, &eventsv1.CostComponent{Name: name, CostNanos: -currentComponents[name]})
	}

	usage := proto.Clone(u).(*eventsv1.UsageRecorded)
	usage.ReservationId, usage.ReservedNanos = "", 0
	return &eventsv1.CostComputed{
		EventId:         correctionID(u.GetEventId(), version, current),
		CorrectsEventId: u.GetEventId(),
		Usage:           usage,
		Components:      comps,
		TotalNanos:      delta,
		Status:          priced.GetStatus(),
		CatalogVersion:  version,
		ResolvedEntry:   priced.GetResolvedEntry(),
		PricedAt:        timestamppb.New(now),
	}, delta, nil
}

// sub is a - b, or false when it overflows int64.
func sub(a, b int64) (int64, bool) {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		return 0, false
	}
	return d, true
}

// repriceReport is what one reprice found and did.
type repriceReport struct {
	Since          time.Time
	CatalogVersion string
	CatalogFile    string
	DryRun         bool

	Read        int64 // USAGE messages read
	Unchanged   int64
	Corrected   int64
	NotInLedger int64 // no original entry (yet)
	Unpriced    int64 // the new catalog cannot price every component: left as is
	Invalid     int64
	Duplicates  int64 // the same event again in the stream
	Difference  int64 // nano-USD, sum of the corrections
	Groups      map[string]*groupReport
}

// groupReport is one model group's share of the report.
type groupReport struct {
	Read       int64 // events compared with the ledger
	Corrected  int64
	Difference int64
}

func (r *repriceReport) group(name string) *groupReport {
	if r.Groups == nil {
		r.Groups = map[string]*groupReport{}
	}
	g := r.Groups[name]
	if g == nil {
		g = &groupReport{}
		r.Groups[name] = g
	}
	return g
}

// addCorrection counts one correction of delta nano-USD; sums are checked,
// because a wrapped total would be a wrong report, silently.
func (r *repriceReport) addCorrection(group string, delta int64) error {
	g := r.group(group)
	total, ok1 := add(r.Difference, delta)
	gtotal, ok2 := add(g.Difference, delta)
	if !ok1 || !ok2 {
		return errors.New("reprice: the total difference overflows int64 nano-USD")
	}
	r.Corrected++
	r.Difference = total
	g.Read++
	g.Corrected++
	g.Difference = gtotal
	return nil
}

func add(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// writeRepriceReport prints the report; the figures are exact (nano-USD
// shown as dollars with nine decimals).
func writeRepriceReport(w io.Writer, r *repriceReport) {
	file := r.CatalogFile
	if file == "" {
		file = "built-in only"
	}
	fmt.Fprintf(w, "reprice of USAGE since %s with catalog %s (%s)", r.Since.UTC().Format(time.RFC3339Nano), r.CatalogVersion, file)
	if r.DryRun {
		fmt.Fprint(w, ", dry run: nothing written")
	}
	fmt.Fprintln(w)
	rows := []struct {
		label string
		n     int64
		note  string
	}{
		{"events read", r.Read, ""},
		{"  unchanged", r.Unchanged, ""},
		{"  corrected", r.Corrected, ""},
		{"  not in the ledger", r.NotInLedger, "not priced or ingested yet, or dead-lettered: run again later"},
		{"  left as is, unpriced", r.Unpriced, "the new catalog has no price for a component"},
		{"  invalid", r.Invalid, "see stderr"},
		{"  repeated in USAGE", r.Duplicates, "counted once"},
	}
	for _, row := range rows {
		if row.n == 0 && row.note != "" {
			continue
		}
		line := fmt.Sprintf("%-24s %12d", row.label, row.n)
		if row.note != "" {
			line += "   (" + row.note + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "%-24s %25s   (%d nano-USD)\n", "total difference", formatUSD(r.Difference), r.Difference)
	if len(r.Groups) == 0 {
		return
	}
	names := make([]string, 0, len(r.Groups))
	width := len("model group")
	for name := range r.Groups {
		names = append(names, name)
		width = max(width, len(name))
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\n%-*s %12s %12s %25s\n", width, "model group", "compared", "corrected", "difference")
	for _, name := range names {
		g := r.Groups[name]
		fmt.Fprintf(w, "%-*s %12d %12d %25s\n", width, name, g.Read, g.Corrected, formatUSD(g.Difference))
	}
}

// formatUSD writes nano-USD as exact dollars with all nine decimals and an
// explicit sign for a difference: -$1.250000000, +$0.000000001, $0.000000000.
// Integer arithmetic only, exact over the whole int64 range.
func formatUSD(n int64) string {
	sign := ""
	var u uint64
	switch {
	case n < 0:
		sign = "-"
		u = uint64(-(n + 1)) + 1 // no overflow at MinInt64
	case n > 0:
		sign = "+"
		u = uint64(n)
	}
	return fmt.Sprintf("%s$%d.%09d", sign, u/1e9, u%1e9)
}
