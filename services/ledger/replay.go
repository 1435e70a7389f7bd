package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/reseed"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/migrations"
	"github.com/spendledger/spendledger/services/internal/serve"
	"github.com/spendledger/spendledger/services/internal/stores"
)

const replayHelp = `usage: ledger replay projections [flags]   rebuild every Redis counter from the ledger
       ledger replay ledger [flags]        rebuild the ledger from the COSTS stream

See ledger replay <projections|ledger> -help.
`

// runReplay dispatches "replay projections" and "replay ledger".
func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "projections":
			return runReplayProjections(ctx, args[1:], getenv, stdout, stderr)
		case "ledger":
			return runReplayLedger(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	if wantsHelp(args) {
		fmt.Fprint(stdout, replayHelp)
		return nil
	}
	fmt.Fprint(stderr, replayHelp)
	if len(args) == 0 {
		return errors.New("replay: say what to rebuild: projections or ledger")
	}
	return fmt.Errorf("replay: unknown target %q (want projections or ledger)", args[0])
}

const replayProjectionsHelp = `usage: ledger replay projections [flags]

Rebuilds every Redis counter from the ledger. The counters are every key that
any ledger entry lands on (ledger_entries.counter_keys) and every counter live
in Redis. Each is dropped (with its reservations and applied-event markers)
and reseeded from the ledger's sum for its scope and window, exactly as a
missing counter is reseeded on first use (ADR 2). Counters whose window ended
more than a day ago are not recreated (counted as "expired"); a late event
reseeds them if it ever needs them.

When: Redis lost its data or was restored from an old snapshot, a counter is
wrong (ledger verify says which), or after ledger replay ledger inserted rows.

Live traffic: live reservations on the rebuilt counters are dropped.
Admission stops counting them, so requests admitted before the rebuild are
briefly not held against the budget, and when their events arrive they settle
by direct increment (exactly once, nothing is lost or counted twice). Run it
with traffic stopped, or accept that short window of under-reservation.
Events the ledger service projects meanwhile are counted exactly once whether
they land before or after a counter is reseeded.

Prints the number of counters rebuilt, expired and failed; exits 1 if any
failed. Follow with ledger verify at quiescence.
`

// maxFailuresShown bounds the failures printed one by one.
const maxFailuresShown = 20

// replayProjections is the outcome of one rebuild.
type replayProjections struct {
	Counters int           // distinct counters found
	Found    time.Duration // time taken to find them
	Rebuilt  int           // dropped and reseeded
	Expired  int           // window over: dropped, not recreated
	Failed   []string
}

func runReplayProjections(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ledger replay projections", replayProjectionsHelp, stdout, stderr)
	dbURL := stores.DatabaseURLFlag(fs.Set)
	redisURL := stores.RedisURLFlag(fs.Set)
	concurrency := fs.Int("concurrency", "LEDGER_REPLAY_CONCURRENCY", 12,
		"counters rebuilt at once (each is a Postgres sum and two Redis calls)")
	if helped, err := fs.parse(args, getenv); helped || err != nil {
		return err
	}
	if *concurrency < 1 {
		return fmt.Errorf("-concurrency must be at least 1, got %d", *concurrency)
	}
	pool, err := postgresPool(ctx, *dbURL, *concurrency)
	if err != nil {
		return err
	}
	defer pool.Close()
	rdb, err := stores.Redis(*redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()

	start := time.Now()
	r, err := rebuildProjections(ctx, pool, redisstore.New(rdb), *concurrency, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d counters: %d rebuilt from the ledger, %d expired (window over, not recreated), %d failed, in %v (%v to find them)\n",
		r.Counters, r.Rebuilt, r.Expired, len(r.Failed), time.Since(start).Round(time.Millisecond), r.Found.Round(time.Millisecond))
	// The first few say why; a store that is down fails every counter, and
	// thousands of the same line would bury the summary.
	for i, f := range r.Failed {
		if i == maxFailuresShown {
			fmt.Fprintf(stdout, "... and %d more failed\n", len(r.Failed)-i)
			break
		}
		fmt.Fprintln(stdout, "failed:", f)
	}
	if len(r.Failed) > 0 {
		return fmt.Errorf("replay projections: %d counters failed; run it again (it is idempotent)", len(r.Failed))
	}
	return nil
}

// rebuildProjections collects the counters, then drops and reseeds each one
// with concurrency workers. A counter that fails is reported and the rest go
// on: one bad key must not leave every other counter unrebuilt.
func rebuildProjections(ctx context.Context, db *pgxpool.Pool, rs *redisstore.Store, concurrency int, stderr io.Writer) (replayProjections, error) {
	var r replayProjections
	t0 := time.Now()
	keys, err := collectCounters(ctx, db, rs, stderr)
	if err != nil {
		return r, err
	}
	r.Counters, r.Found = len(keys), time.Since(t0)

	bar := newProgress(stderr, "replay projections", int64(len(keys)))
	defer bar.done()
	work := make(chan string)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(work)
		for _, k := range keys {
			select {
			case work <- k:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range concurrency {
		g.Go(func() error {
			for key := range work {
				expired, err := rebuildCounter(gctx, db, rs, key, time.Now())
				mu.Lock()
				switch {
				case err != nil && gctx.Err() != nil:
					mu.Unlock()
					return gctx.Err()
				case err != nil:
					r.Failed = append(r.Failed, err.Error())
				case expired:
					r.Expired++
				default:
					r.Rebuilt++
				}
				mu.Unlock()
				bar.add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return r, fmt.Errorf("replay projections: %w", err)
	}
	sort.Strings(r.Failed)
	return r, nil
}

// collectCounters returns every counter key in the ledger or live in Redis,
// deduplicated and sorted (so runs are reproducible and the progress total
// is known before the first counter is touched).
func collectCounters(ctx context.Context, db *pgxpool.Pool, rs *redisstore.Store, stderr io.Writer) ([]string, error) {
	bar := newProgress(stderr, "collecting counters", 0)
	defer bar.done()
	set := map[string]struct{}{}
	add := func(key string) error {
		set[key] = struct{}{}
		bar.set(len(set))
		return nil
	}
	// Both sources: the ledger names every counter an entry lands on, and
	// Redis holds counters admission seeded that no entry names yet (those
	// are rebuilt too: a wrong one gets the ledger's figure). A counter both
	// scans miss was created after them, by a reseed from the ledger, which
	// is what a rebuild would do.
	if err := rs.ScanCounters(ctx, add); err != nil {
		return nil, fmt.Errorf("replay projections: %w", err)
	}
	if err := pgstore.CounterKeys(ctx, db, add); err != nil {
		return nil, fmt.Errorf("replay projections: %w", err)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// rebuildCounter drops one counter and reseeds it from the ledger. It
// reports expired when the counter's window (plus grace) is over, so it is
// not recreated: that is the state a counter past its window is in anyway.
func rebuildCounter(ctx context.Context, db pgstore.DB, rs *redisstore.Store, key string, now time.Time) (expired bool, err error) {
	if _, err := rs.Drop(ctx, key); err != nil {
		return false, err
	}
	// Seed refuses an expired window by Redis's clock, but only after the
	// ledger sum was read; an old window's sum is the costly kind (a whole
	// past day of a team), so skip it here when it is clearly over. The
	// margin leaves the borderline cases to Seed, whatever the clock skew.
	if _, spec, index, err := scope.ParseCounterKey(key); err == nil {
		if _, end := spec.Bounds(index); now.After(end.Add(reseed.Grace + expiryMargin)) {
			return true, nil
		}
	}
	if _, err := reseed.Counter(ctx, db, rs, key); err != nil {
		if errors.Is(err, redisstore.ErrExpired) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}

// expiryMargin is how far past its expiry a counter's window must be for
// rebuildCounter to skip it without asking Redis (whose clock decides).
const expiryMargin = time.Minute

const replayLedgerHelp = `usage: ledger replay ledger [flags]

Rebuilds the ledger (Postgres) from the COSTS stream: reads every
CostComputed from the start of the stream with an ordered consumer, turns each
into an entry exactly as the ledger service does (same validation, same COSTS
sequence) and inserts them in batches. Idempotent: an event already in the
ledger is skipped, so it is safe against the live ledger, with the ledger
service running, and can be re-run after an interruption. Events published
after it started are left to the ledger service.

Messages that can never be a ledger row (undecodable, or rejected by the same
checks the service dead-letters them for) are reported on stderr and skipped;
they do not stop the replay.

The schema is migrated first (as the service does at start), so -database-url
may name a fresh, empty database: restoring a lost ledger, or building a copy
to compare with the live one.

It writes rows only, never Redis counters: when it inserted rows into a
ledger whose counters are live, run ledger replay projections afterwards.
`

// replayLedger is the outcome of one replay of COSTS.
type replayLedger struct {
	Read     int64 // messages read
	Inserted int64 // entries that were not in the ledger
	Present  int64 // entries already there (or repeated in the stream)
	Invalid  int64 // messages skipped: can never be a ledger row
	FirstSeq uint64
	LastSeq  uint64
}

func runReplayLedger(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ledger replay ledger", replayLedgerHelp, stdout, stderr)
	natsURL := stores.NATSURLFlag(fs.Set)
	dbURL := stores.DatabaseURLFlag(fs.Set)
	batch := fs.Int("batch-size", "LEDGER_REPLAY_BATCH_SIZE", 1000, "entries inserted per transaction")
	if helped, err := fs.parse(args, getenv); helped || err != nil {
		return err
	}
	if *batch < 1 {
		return fmt.Errorf("-batch-size must be at least 1, got %d", *batch)
	}
	log, err := serve.NewLogger(stderr, "ledger", "error")
	if err != nil {
		return err
	}
	nc, stream, err := stores.NATS(*natsURL, "ledger replay ledger", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	pool, err := postgresPool(ctx, *dbURL, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := stores.Migrate(ctx, log, pool, migrations.Ledger); err != nil {
		return fmt.Errorf("replay ledger: migrate: %w", err)
	}

	start := time.Now()
	r, err := replayCosts(ctx, stream, pool, *batch, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "COSTS messages read: %d (stream sequences %d to %d) in %v\n",
		r.Read, r.FirstSeq, r.LastSeq, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "entries inserted: %d, already in the ledger: %d, invalid and skipped: %d\n",
		r.Inserted, r.Present, r.Invalid)
	if r.Inserted > 0 {
		fmt.Fprintln(stdout, "the inserted entries are not in any Redis counter: if this database's counters are live, run ledger replay projections")
	}
	return nil
}

// replayCosts reads COSTS from the start up to the last message at the time
// it starts, and inserts every valid event. Decoding and inserting overlap:
// one goroutine reads and decodes the next batch while the previous one is
// inserted. Inserts stay in stream order, one batch at a time, so when the
// stream holds an event twice the first occurrence wins, as it does in the
// ledger service.
func replayCosts(ctx context.Context, stream jetstream.JetStream, db pgstore.DB, batchSize int, stderr io.Writer) (replayLedger, error) {
	var r replayLedger
	batches := make(chan []pgstore.Entry, 2)
	g, gctx := errgroup.WithContext(ctx)
	var bar *progress
	g.Go(func() error {
		defer close(batches)
		var cur []pgstore.Entry
		err := readStream(gctx, stream, js.CostsStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy},
			func(total int64) { bar = newProgress(stderr, "replay ledger", total) },
			func(m jetstream.Msg, seq uint64) error {
				r.Read++
				if r.FirstSeq == 0 {
					r.FirstSeq = seq
				}
				r.LastSeq = seq
				bar.add(1)
				var c eventsv1.CostComputed
				if err := proto.Unmarshal(m.Data(), &c); err != nil {
					r.Invalid++
					bar.logf(stderr, "COSTS sequence %d: skipped: undecodable CostComputed: %v", seq, err)
					return nil
				}
				e, err := pgstore.EntryFromCost(&c, seq)
				if err != nil {
					r.Invalid++
					bar.logf(stderr, "COSTS sequence %d: skipped: %v", seq, err)
					return nil
				}
				cur = append(cur, e)
				if len(cur) < batchSize {
					return nil
				}
				select {
				case batches <- cur:
				case <-gctx.Done():
					return gctx.Err()
				}
				cur = nil
				return nil
			})
		if err != nil {
			return err
		}
		if len(cur) > 0 {
			select {
			case batches <- cur:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		for b := range batches {
			res, err := pgstore.Insert(gctx, db, b)
			if err != nil {
				return err
			}
			for _, x := range res {
				if x.New {
					r.Inserted++
				} else {
					r.Present++
				}
			}
		}
		return nil
	})
	err := g.Wait()
	if bar != nil {
		bar.done()
	}
	if err != nil {
		return r, fmt.Errorf("replay ledger: %w", err)
	}
	return r, nil
}

// readStream delivers a stream's messages to fn in order with an ordered
// consumer (ephemeral, in memory, no acks: it leaves no state behind and
// cannot disturb the services' durable consumers), from the consumer's
// start (cfg) to the stream's last message at the time it starts. start is
// called once with the number of messages to read, before the first.
func readStream(ctx context.Context, stream jetstream.JetStream, name string, cfg jetstream.OrderedConsumerConfig,
	start func(total int64), fn func(m jetstream.Msg, seq uint64) error) error {
	s, err := stream.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("stream %s: ordered consumer: %w", name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: consumer info: %w", name, err)
	}
	if info.NumPending == 0 {
		start(0)
		return nil
	}
	// The end: the stream's last message now, just after the consumer was
	// made. Messages published later are the services' business.
	sinfo, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: info: %w", name, err)
	}
	last := sinfo.State.LastSeq
	start(int64(info.NumPending))
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	defer it.Stop()
	// Next blocks without a context; stop the iterator when ctx ends.
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("stream %s: %w", name, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("stream %s: message metadata: %w", name, err)
		}
		seq := meta.Sequence.Stream
		if err := fn(m, seq); err != nil {
			return err
		}
		// NumPending 0: nothing after this message right now (covers a
		// deleted message at the end, which the sequence bound would wait
		// for forever).
		if seq >= last || meta.NumPending == 0 {
			return nil
		}
	}
}
