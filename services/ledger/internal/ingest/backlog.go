package ingest

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/redisstore"
)

// catchupBatch is how many pending entries Catchup claims and projects per
// transaction (one ProjectBatch each).
const catchupBatch = 500

// Backlog is the ledger's side of the pending-projection table
// (pgstore.MarkPending, ADR 2 "Redis down"): entries committed whose
// projection has not happened yet. The table, not this process, holds them,
// so a backlog survives a SIGKILL or restart during a Redis outage and is
// drained by whichever ledger instance sees Redis healthy first.
//
// Backlog also keeps what the live path needs to decide per batch:
//   - whether Redis is known down, in which case a batch is inserted
//     together with its pending marks (pgstore.InsertPending) instead of
//     waiting for the projection to time out batch after batch;
//   - the marker prune floor: at or below the ack floor of the COSTS
//     consumer and below the smallest pending sequence of any instance,
//     since a failed attempt may have written markers (a lost reply) that
//     must survive until the entry is re-projected.
type Backlog struct {
	DB  pgstore.DB
	Log *slog.Logger

	floor     atomic.Uint64 // marker prune floor; 0 (prune nothing) until the first refresh
	pending   atomic.Int64  // rows in the table at the last refresh
	redisDown atomic.Bool
}

// PruneFloor is the stream sequence at or below which markers may be pruned.
func (b *Backlog) PruneFloor() uint64 { return b.floor.Load() }

// RedisDown reports whether the last projection or health check found Redis
// unreachable.
func (b *Backlog) RedisDown() bool { return b.redisDown.Load() }

// Pending is the number of entries waiting for projection, all instances, as
// of the last refresh.
func (b *Backlog) Pending() int64 { return b.pending.Load() }

// marked notes that entries from minSeq on were marked pending by this
// instance: the prune floor drops below them at once rather than at the
// next refresh, and Redis counts as down when unreachable says so.
func (b *Backlog) marked(minSeq uint64, n int, unreachable bool) {
	if unreachable {
		b.redisDown.Store(true)
	}
	b.pending.Add(int64(n))
	for {
		f := b.floor.Load()
		if f < minSeq || b.floor.CompareAndSwap(f, minSeq-1) {
			return
		}
	}
}

// Track refreshes the prune floor and the pending count every interval
// until ctx ends. The ack floor is read before the pending table: an entry
// is acked only after its pending mark commits, so an ack the first read
// saw has its mark visible to the second (or already drained) — the floor
// computed is never above a pending entry's sequence.
func (b *Backlog) Track(ctx context.Context, c jetstream.Consumer, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := b.refresh(ctx, c); err != nil && ctx.Err() == nil {
			b.Log.Debug("prune floor not refreshed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Backlog) refresh(ctx context.Context, c jetstream.Consumer) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	count, minSeq, err := pgstore.PendingStats(ctx, b.DB)
	if err != nil {
		return err
	}
	floor := info.AckFloor.Stream
	if count > 0 {
		floor = min(floor, minSeq-1)
	}
	b.floor.Store(floor)
	b.pending.Store(count)
	return nil
}

// Catchup drains the pending table every interval until ctx ends, once ping
// says Redis answers (until then Redis counts as down). Entries are
// projected with the same markers as any earlier attempt, so one that did
// land (a lost reply), or that another instance projected meanwhile, is not
// counted again.
func (b *Backlog) Catchup(ctx context.Context, p *Projector, ping func(context.Context) error, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := ping(ctx); err != nil {
			b.redisDown.Store(true)
			continue
		}
		if b.redisDown.Swap(false) {
			b.Log.Info("redis answers again; projecting live and catching up the pending entries")
		}
		b.drain(ctx, p)
	}
}

// drain projects pending entries a batch at a time, in stream order, until
// none is left or a batch makes no progress (Redis failing again, or only
// entries no script can apply are left; they stay pending and are retried).
func (b *Backlog) drain(ctx context.Context, p *Projector) {
	total := 0
	for ctx.Err() == nil {
		var failed error
		claimed, done, err := pgstore.DrainPending(ctx, b.DB, catchupBatch, func(ps []pgstore.Pending) []bool {
			as := make([]redisstore.Application, len(ps))
			for i, e := range ps {
				as[i] = redisstore.Application{
					EventID: e.EventID, StreamSeq: e.StreamSeq, TxID: e.TxID, Cost: e.TotalNanos,
					ReservationID: e.ReservationID, Keys: e.CounterKeys,
					// PruneFloor 0: never prune on a retry; the live path prunes.
				}
			}
			ok := make([]bool, len(ps))
			for i, err := range p.ProjectBatch(ctx, as) {
				ok[i] = err == nil
				if err != nil && failed == nil {
					failed = err
					if unreachable(err) {
						b.redisDown.Store(true)
					}
				}
			}
			return ok
		})
		if err != nil {
			b.Log.Warn("catch-up paused: cannot drain pending projections", "err", err)
			break
		}
		total += done
		b.pending.Add(-int64(done))
		if failed != nil {
			b.Log.Warn("catch-up: some pending projections still fail; they stay pending", "failed", claimed-done, "err", failed)
		}
		if done == 0 || claimed < catchupBatch {
			break
		}
	}
	if total > 0 {
		b.Log.Info("caught up projections from the ledger", "applied", total)
	}
}
