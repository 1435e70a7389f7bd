// Package ingest is the ledger service's consumer of COSTS: it appends each
// CostComputed to Postgres and projects it onto the Redis counters, and acks
// a message only after its row is committed.
//
// Order of effects for a batch, and why:
//
//  1. decode and validate; a message that can never be a ledger row goes to
//     the dead-letter stream with the reason (and is not lost);
//  2. insert the batch in one transaction, duplicates ignored by event id; if
//     Postgres is down nothing is acked and JetStream keeps the events;
//  3. project every entry onto its counters (exactly once per counter, see
//     ADR 2); if Redis is down the entries stay committed and acked, and the
//     Catchup re-projects them from Postgres when Redis answers again;
//  4. ack.
package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/redisstore"
)

// projectConcurrency bounds the Redis calls in flight for one batch: entries
// are independent (markers are per event), so they can be applied at once.
const projectConcurrency = 32

// Ingester handles batches from the COSTS consumer.
type Ingester struct {
	DB        pgstore.DB
	JS        jetstream.JetStream
	Projector *Projector
	Gaps      *Gaps
	Consumer  string
	Log       *slog.Logger
	Metrics   *Metrics
}

// item is one message of a batch on its way through.
type item struct {
	msg   jetstream.Msg
	seq   uint64
	entry pgstore.Entry
}

// Handle processes one batch; it is a js.BatchHandler.
func (in *Ingester) Handle(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	defer func() { in.Metrics.batch.Observe(time.Since(start).Seconds()) }()

	items := make([]item, 0, len(msgs))
	for _, m := range msgs {
		it, reason := decode(m)
		if reason != "" {
			in.deadLetter(ctx, m, reason)
			continue
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return
	}

	entries := make([]pgstore.Entry, len(items))
	for i := range items {
		entries[i] = items[i].entry
	}
	inserted, err := pgstore.Insert(ctx, in.DB, entries)
	if err != nil {
		// Postgres is down or failing: ack nothing, JetStream redelivers.
		in.Log.Error("ledger insert failed; batch will be redelivered", "entries", len(items), "err", err)
		in.Metrics.insertFailures.Inc()
		for _, it := range items {
			nak(in.Log, it.msg)
		}
		return
	}
	for _, r := range inserted {
		if r.New {
			in.Metrics.entries.WithLabelValues("new").Inc()
		} else {
			in.Metrics.entries.WithLabelValues("duplicate").Inc()
		}
	}

	in.project(ctx, items, inserted)

	for _, it := range items {
		if err := it.msg.Ack(); err != nil {
			// The row is committed; a lost ack only brings a duplicate.
			in.Log.Warn("ack failed", "err", err)
		}
	}
}

// project applies every committed entry concurrently. A failure is recorded
// as a gap for Catchup; the entry stays committed and is acked.
func (in *Ingester) project(ctx context.Context, items []item, inserted []pgstore.Inserted) {
	floor := in.Gaps.PruneFloor()
	sem := make(chan struct{}, projectConcurrency)
	var wg sync.WaitGroup
	for i := range items {
		it, r := &items[i], inserted[i]
		if len(it.entry.CounterKeys) == 0 {
			continue
		}
		a := redisstore.Application{
			EventID:       r.EventID,
			StreamSeq:     it.seq,
			TxID:          r.TxID,
			Cost:          r.TotalNanos, // the stored cost: a re-priced redelivery does not change it
			ReservationID: it.entry.ReservationID,
			Keys:          it.entry.CounterKeys,
			PruneFloor:    min(floor, it.seq-1),
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := in.Projector.Project(ctx, a); err != nil {
				in.Gaps.Add(a)
				in.Metrics.projectFailures.Inc()
				in.Log.Warn("projection failed; will catch up from the ledger", "event_id", a.EventID, "seq", it.seq, "err", err)
				return
			}
			if meta, err := it.msg.Metadata(); err == nil {
				in.Metrics.lag.Observe(time.Since(meta.Timestamp).Seconds())
			}
		})
	}
	wg.Wait()
}

// decode turns a message into an entry, or says why it never can be one.
func decode(m jetstream.Msg) (item, string) {
	meta, err := m.Metadata()
	if err != nil {
		return item{}, "no JetStream metadata: " + err.Error()
	}
	var c eventsv1.CostComputed
	if err := proto.Unmarshal(m.Data(), &c); err != nil {
		return item{}, "undecodable CostComputed: " + err.Error()
	}
	e, err := pgstore.EntryFromCost(&c, meta.Sequence.Stream)
	if err != nil {
		return item{}, err.Error()
	}
	return item{msg: m, seq: meta.Sequence.Stream, entry: e}, ""
}

func (in *Ingester) deadLetter(ctx context.Context, m jetstream.Msg, reason string) {
	if err := js.DeadLetter(ctx, in.JS, m, in.Consumer, reason); err != nil {
		in.Log.Error("dead-letter failed; will be redelivered", "reason", reason, "err", err)
		nak(in.Log, m)
		return
	}
	in.Metrics.deadLetters.Inc()
	in.Log.Warn("event dead-lettered", "reason", reason, "subject", m.Subject())
}

func nak(log *slog.Logger, m jetstream.Msg) {
	// A delay keeps a failing store from turning redelivery into a spin.
	if err := m.NakWithDelay(time.Second); err != nil {
		log.Warn("nak failed; redelivery after ack wait", "err", err)
	}
}
