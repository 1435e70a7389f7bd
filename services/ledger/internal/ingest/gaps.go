package ingest

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spendledger/spendledger/ledger/redisstore"
)

// MaxGap bounds the entries held for re-projection while Redis is away.
// Past it, new failures are counted and logged but not held; the operator
// then runs `ledger replay projections` once Redis is back (the log says so).
const MaxGap = 1_000_000

// catchupBatch is how many pending entries Catchup projects per ProjectBatch.
const catchupBatch = 500

// Gaps holds the entries committed to the ledger whose projection failed
// (Redis down, or erroring), until Catchup has applied them. It also holds
// marker pruning below the oldest of them: a marker an unprojected entry may
// already have written (a lost reply) must survive until it is retried.
//
// Gaps live in this process. With several ledger instances, another
// instance prunes by the consumer's ack floor alone, so exactly-once across a
// Redis outage holds per instance for the lost-reply case; a failed script
// that wrote nothing is always retried exactly.
type Gaps struct {
	mu       sync.Mutex
	pending  map[string]redisstore.Application // by event id
	overflow int64

	ackFloor atomic.Uint64
}

// NewGaps returns an empty Gaps.
func NewGaps() *Gaps { return &Gaps{pending: map[string]redisstore.Application{}} }

// Add records an entry whose projection failed.
func (g *Gaps) Add(a redisstore.Application) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) >= MaxGap {
		g.overflow++
		return
	}
	g.pending[a.EventID] = a
}

// Len is the number of entries waiting for re-projection.
func (g *Gaps) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// PruneFloor is the stream sequence at or below which markers may be pruned:
// the consumer's ack floor, held below every pending entry.
func (g *Gaps) PruneFloor() uint64 {
	floor := g.ackFloor.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, a := range g.pending {
		floor = min(floor, a.StreamSeq-1)
	}
	return floor
}

func (g *Gaps) snapshot() []redisstore.Application {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]redisstore.Application, 0, len(g.pending))
	for _, a := range g.pending {
		out = append(out, a)
	}
	return out
}

func (g *Gaps) done(eventID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pending, eventID)
}

// TrackAckFloor refreshes the consumer's ack floor every interval until ctx
// ends. Until the first refresh the floor is 0: nothing is pruned.
func (g *Gaps) TrackAckFloor(ctx context.Context, c jetstream.Consumer, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		info, err := c.Info(ctx)
		if err == nil {
			g.ackFloor.Store(info.AckFloor.Stream)
		} else if ctx.Err() == nil {
			log.Debug("consumer info", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Catchup re-projects pending entries every interval until ctx ends. Each is
// applied with the same marker as the failed attempt, so an attempt that did
// land (a lost reply) is not counted again.
func (g *Gaps) Catchup(ctx context.Context, p *Projector, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		lost := g.overflow
		g.overflow = 0
		g.mu.Unlock()
		if lost > 0 {
			log.Error("projection gap overflowed; these entries are in the ledger but not in Redis counters: run `ledger replay projections` once Redis is healthy", "entries", lost)
		}
		pending := g.snapshot()
		if len(pending) == 0 {
			continue
		}
		// In stream order, a batch at a time (ProjectBatch: a few Redis
		// calls per batch, so a long outage's backlog catches up at ingest
		// speed), pausing at the first batch that still fails.
		slices.SortFunc(pending, func(a, b redisstore.Application) int { return cmp.Compare(a.StreamSeq, b.StreamSeq) })
		applied := 0
		for len(pending) > 0 {
			chunk := pending[:min(len(pending), catchupBatch)]
			pending = pending[len(chunk):]
			for i := range chunk {
				chunk[i].PruneFloor = 0 // never prune on a retry; the live path prunes
			}
			var failed error
			for i, err := range p.ProjectBatch(ctx, chunk) {
				if err != nil {
					failed = err
					continue
				}
				g.done(chunk[i].EventID)
				applied++
			}
			if failed != nil {
				log.Warn("catch-up paused: projection still failing", "pending", g.Len(), "err", failed)
				break
			}
		}
		if applied > 0 {
			log.Info("caught up projections from the ledger", "applied", applied, "pending", g.Len())
		}
	}
}
