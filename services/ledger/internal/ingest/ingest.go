// Package ingest is the ledger service's consumer of COSTS: it appends each
// CostComputed to Postgres and projects it onto the Redis counters, and acks
// a message only after its row is committed.
//
// Order of effects for a batch, and why:
//
//  1. decode and validate (the entries' own rules are checked by Insert, in
//     step 2, so once per entry); a message that can never be a ledger row
//     goes to the dead-letter stream with the reason (and is not lost);
//  2. insert the batch in one transaction, duplicates ignored by event id; if
//     Postgres is down nothing is acked and JetStream keeps the events;
//  3. project every entry onto its counters (exactly once per counter, see
//     ADR 2); an entry whose projection fails is marked pending in Postgres
//     (the ledger_projection_pending table) before it is acked, and while
//     Redis is known down step 2 writes the marks in the entries' own
//     transaction and this step is skipped. Backlog.Catchup, in whichever
//     instance sees Redis healthy, re-projects the pending entries; if the
//     mark cannot be written either, the message is not acked and JetStream
//     redelivers it;
//  4. ack.
//
// Steps 3 and 4 of a batch run in the background while the next batch goes
// through steps 1 and 2 (Handle returns after its commit): the two halves
// load different stores and took 3.6 s and 2.7 s of a 100k-entry backlog
// one after the other, so overlapped a batch takes about the longer half.
// (Overlapping decode with insert as well, three stages, measured no gain
// on the 2-core benchmark machine.) At most one batch is projecting at a
// time, so batches still project and ack in order, and each message is still
// acked only after its row is committed and projected. Drain waits for the
// last one; the service calls it before closing the stores, or a projection
// cut off by closed clients would be acked as a gap that dies with the
// process.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/redisstore"
)

// projectConcurrency bounds the Redis calls in flight when a batch is
// projected event by event (the fallback when the batch scripts fail):
// entries are independent (markers are per event), so they can be applied
// at once.
const projectConcurrency = 32

// Ingester handles batches from the COSTS consumer.
type Ingester struct {
	DB        pgstore.DB
	JS        jetstream.JetStream
	Projector *Projector
	Backlog   *Backlog
	Consumer  string
	Log       *slog.Logger
	Metrics   *Metrics

	// projecting is closed when the batch projecting in the background is
	// done (projected and acked); nil before the first batch. Only Handle
	// and Drain use it, and ConsumeBatches calls Handle from one goroutine.
	projecting chan struct{}
}

// item is one message of a batch on its way through.
type item struct {
	msg   jetstream.Msg
	seq   uint64
	stamp time.Time // when JetStream stored the message (projection lag)
	entry pgstore.Entry
}

// Handle processes one batch; it is a js.BatchHandler. It returns once the
// batch is committed (or nak'ed, or dead-lettered), leaving its projection
// and acks to a background step that runs while the next batch is decoded
// and inserted; see the package comment, and Drain.
func (in *Ingester) Handle(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()

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
	t := in.Metrics.since("decode", start)

	// Redis known down: mark the entries pending in their own transaction
	// rather than have every batch wait for the projection to fail.
	deferred := in.Backlog.RedisDown()
	insert := pgstore.Insert
	if deferred {
		insert = pgstore.InsertPending
	}
	inserted, err := insert(ctx, in.DB, entriesOf(items))
	if errors.Is(err, pgstore.ErrInvalidEntry) {
		// Insert validates every entry (decode leaves that to it, so it
		// happens once) and refuses the batch whole: dead-letter the invalid
		// ones and insert the rest.
		if items = in.dropInvalid(ctx, items); len(items) == 0 {
			return
		}
		inserted, err = insert(ctx, in.DB, entriesOf(items))
	}
	if err != nil {
		// Postgres is down or failing: ack nothing, JetStream redelivers.
		in.Log.Error("ledger insert failed; batch will be redelivered", "entries", len(items), "err", err)
		in.Metrics.insertFailures.Inc()
		for _, it := range items {
			nak(in.Log, it.msg)
		}
		return
	}
	if deferred {
		in.deferred(items)
	}
	fresh := 0
	for _, r := range inserted {
		if r.New {
			fresh++
		}
	}
	in.Metrics.entries.WithLabelValues("new").Add(float64(fresh))
	in.Metrics.entries.WithLabelValues("duplicate").Add(float64(len(inserted) - fresh))
	in.Metrics.since("insert", t)

	// One batch projects at a time: wait for the previous one (it has had
	// this batch's decode and insert to finish), then hand this one over.
	in.Drain()
	done := make(chan struct{})
	in.projecting = done
	go func() {
		defer close(done)
		t := time.Now()
		var unacked map[int]bool
		if !deferred {
			unacked = in.project(ctx, items, inserted)
		}
		t = in.Metrics.since("project", t)
		for i, it := range items {
			if unacked[i] {
				nak(in.Log, it.msg)
				continue
			}
			if err := it.msg.Ack(); err != nil {
				// The row is committed; a lost ack only brings a duplicate.
				in.Log.Warn("ack failed", "err", err)
			}
		}
		in.Metrics.since("ack", t)
		in.Metrics.batch.Observe(time.Since(start).Seconds())
	}()
}

// Drain waits until the batch projecting in the background (if any) is
// projected and acked. Call it after the consumer stopped handing batches
// over and before the stores close.
func (in *Ingester) Drain() {
	if in.projecting != nil {
		<-in.projecting
	}
}

// project applies every committed entry, the batch in as few Redis calls as
// it can (Projector.ProjectBatch). An entry whose projection fails is marked
// pending in Postgres, for Catchup, and then acked like the rest; project
// returns the items whose mark could not be written either: those must not
// be acked (JetStream redelivers them, and the redelivery projects or marks
// them again, exactly once by the event markers).
func (in *Ingester) project(ctx context.Context, items []item, inserted []pgstore.Inserted) map[int]bool {
	floor := in.Backlog.PruneFloor()
	as := make([]redisstore.Application, 0, len(items))
	idx := make([]int, 0, len(items)) // item of each application
	for i := range items {
		it, r := &items[i], inserted[i]
		if len(it.entry.CounterKeys) == 0 {
			continue
		}
		as = append(as, redisstore.Application{
			EventID:       r.EventID,
			StreamSeq:     it.seq,
			TxID:          r.TxID,
			Cost:          r.TotalNanos, // the stored cost: a re-priced redelivery does not change it
			ReservationID: it.entry.ReservationID,
			Keys:          it.entry.CounterKeys,
			PruneFloor:    min(floor, it.seq-1),
		})
		idx = append(idx, i)
	}
	if len(as) == 0 {
		return nil
	}
	errs := in.Projector.ProjectBatch(ctx, as)
	now := time.Now()
	var (
		marks  []pgstore.PendingMark
		failed []int // items
		down   bool
		cause  error
	)
	for j, err := range errs {
		it := &items[idx[j]]
		if err != nil {
			marks = append(marks, pgstore.PendingMark{EventID: as[j].EventID, StreamSeq: it.seq})
			failed = append(failed, idx[j])
			down = down || unreachable(err)
			cause = err
			continue
		}
		in.Metrics.lag.Observe(now.Sub(it.stamp).Seconds())
	}
	if len(marks) == 0 {
		return nil
	}
	in.Metrics.projectFailures.Add(float64(len(marks)))
	if err := pgstore.MarkPending(ctx, in.DB, marks); err != nil {
		in.Log.Error("projection failed and cannot be marked pending; not acking, the events will be redelivered",
			"entries", len(marks), "projection_err", cause, "err", err)
		unacked := make(map[int]bool, len(failed))
		for _, i := range failed {
			unacked[i] = true
		}
		return unacked
	}
	in.Backlog.marked(minSeq(marks), len(marks), down)
	in.Log.Warn("projection failed; entries marked pending, will catch up from the ledger",
		"entries", len(marks), "first_seq", minSeq(marks), "redis_unreachable", down, "err", cause)
	return nil
}

// deferred accounts for a batch inserted with its pending marks (Redis known
// down): nothing is projected now.
func (in *Ingester) deferred(items []item) {
	var marks []pgstore.PendingMark
	for _, it := range items {
		if len(it.entry.CounterKeys) > 0 {
			marks = append(marks, pgstore.PendingMark{EventID: it.entry.EventID, StreamSeq: it.seq})
		}
	}
	if len(marks) > 0 {
		in.Metrics.projectFailures.Add(float64(len(marks)))
		in.Backlog.marked(minSeq(marks), len(marks), false)
	}
}

// minSeq is the smallest stream sequence of marks (a batch can hold a
// redelivery among later messages).
func minSeq(marks []pgstore.PendingMark) uint64 {
	m := marks[0].StreamSeq
	for _, mk := range marks[1:] {
		m = min(m, mk.StreamSeq)
	}
	return m
}

func entriesOf(items []item) []pgstore.Entry {
	entries := make([]pgstore.Entry, len(items))
	for i := range items {
		entries[i] = items[i].entry
	}
	return entries
}

// dropInvalid dead-letters the items whose entry fails Validate and returns
// the others.
func (in *Ingester) dropInvalid(ctx context.Context, items []item) []item {
	valid := items[:0:0]
	for _, it := range items {
		if err := it.entry.Validate(); err != nil {
			in.deadLetter(ctx, it.msg, err.Error())
			continue
		}
		valid = append(valid, it)
	}
	return valid
}

// decode turns a message into an entry, or says why it never can be one.
// The entry is not validated yet: Insert does that (see Handle).
func decode(m jetstream.Msg) (item, string) {
	meta, err := m.Metadata()
	if err != nil {
		return item{}, "no JetStream metadata: " + err.Error()
	}
	var c eventsv1.CostComputed
	if err := proto.Unmarshal(m.Data(), &c); err != nil {
		return item{}, "undecodable CostComputed: " + err.Error()
	}
	e, err := pgstore.ConvertCost(&c, meta.Sequence.Stream)
	if err != nil {
		return item{}, err.Error()
	}
	return item{msg: m, seq: meta.Sequence.Stream, stamp: meta.Timestamp, entry: e}, ""
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
