// Package fence holds admission back after Redis loses its data, until the
// spend that was in flight at the loss has reached the ledger (ADR 2,
// "Redis data loss").
//
// Why: counters are rebuilt from the ledger, but a loss also takes the
// reservations of requests still running, and costs still in the pipeline
// (usage not yet priced, costs not yet appended) are in no sum yet. Admitting
// against the rebuilt counters could pass a hard limit by all of that.
//
// How: admission reserves only while Redis holds an epoch and no fence
// (redisstore checks both in the reservation's atomic step). When the epoch
// is gone, Recover records the loss in Postgres (one row, locked, so one
// loss is recorded once across instances), sets the fence, then a new epoch.
// Lifter lifts the fence when both hold: the reservation TTL has passed
// since the loss (every reservation lost would have expired by then), and
// the pipeline is drained (no USAGE or COSTS message pending for pricing or
// the ledger, no entry waiting to be projected).
//
// An empty Redis on the very first start (no row yet) is not a loss.
// What this cannot see: events a gateway holds in its local spool while NATS
// is down; docs/operations.md states that bound.
package fence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/ledger/redisstore"
)

// Drained reports whether the pipeline has delivered every cost published so
// far to the ledger.
type Drained func(ctx context.Context) (bool, error)

// Guard records Redis data losses and lifts the fences they cause.
type Guard struct {
	DB    *pgxpool.Pool
	Redis *redisstore.Store
	// Hold is the least time a fence lasts: the reservation TTL.
	Hold    time.Duration
	Drained Drained
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
}

// Recover makes sure Redis has an epoch: when it has none and one was ever
// recorded, the data was lost, and admission is fenced before the new epoch
// is set. Any number of instances may call it at once.
func (g *Guard) Recover(ctx context.Context) error {
	// Every request of a batch that met the loss calls this: only the first
	// needs the lock; the rest find the new epoch without queueing for it.
	if cur, err := g.Redis.Epoch(ctx); err == nil && cur != "" {
		return nil
	}
	tx, err := g.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("fence: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	// Serialize on the row; on the first start, on a lock of the table.
	if _, err := tx.Exec(ctx, `LOCK TABLE redis_epoch IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("fence: lock: %w", err)
	}
	var known bool
	err = tx.QueryRow(ctx, `SELECT true FROM redis_epoch`).Scan(&known)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("fence: read epoch: %w", err)
	}
	cur, err := g.Redis.Epoch(ctx)
	if err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	if cur != "" {
		return nil // another instance recorded it first, or nothing was lost
	}
	now := g.Now()
	epoch := uuid.NewString()
	if !known {
		if err := g.Redis.StartEpoch(ctx, epoch, nil); err != nil {
			return fmt.Errorf("fence: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO redis_epoch (epoch, started_at) VALUES ($1, $2)`, epoch, now); err != nil {
			return fmt.Errorf("fence: record first epoch: %w", err)
		}
		g.Log.Info("redis epoch started (first start: nothing was lost)", "epoch", epoch)
		return tx.Commit(ctx)
	}
	until := now.Add(g.Hold)
	if err := g.Redis.StartEpoch(ctx, epoch, &redisstore.Fence{Since: now, Reason: "redis lost its data"}); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE redis_epoch SET epoch = $1, started_at = $2, lost_at = $2, fenced_until = $3`, epoch, now, until); err != nil {
		return fmt.Errorf("fence: record loss: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("fence: commit: %w", err)
	}
	g.Metrics.losses.Inc()
	g.Metrics.fenced.Set(1)
	g.Log.Error("redis lost its data: admission against budgets is fenced until in-flight spend reaches the ledger",
		"epoch", epoch, "fenced_at_least_until", until)
	return nil
}

// Lift lifts the fence when it may: its hold is over and the pipeline is
// drained. It reports whether admission is (still) fenced.
func (g *Guard) Lift(ctx context.Context) (fenced bool, err error) {
	f, err := g.Redis.CurrentFence(ctx)
	if err != nil {
		return false, err
	}
	if f == nil {
		g.Metrics.fenced.Set(0)
		return false, nil
	}
	g.Metrics.fenced.Set(1)
	var until *time.Time
	if err := g.DB.QueryRow(ctx, `SELECT fenced_until FROM redis_epoch`).Scan(&until); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return true, fmt.Errorf("fence: read hold: %w", err)
	}
	if until == nil {
		t := f.Since.Add(g.Hold)
		until = &t
	}
	if g.Now().Before(*until) {
		return true, nil
	}
	drained, err := g.Drained(ctx)
	if err != nil || !drained {
		return true, err
	}
	if err := g.Redis.LiftFence(ctx); err != nil {
		return true, err
	}
	g.Metrics.fenced.Set(0)
	g.Log.Warn("admission fence lifted: lost reservations expired and the pipeline is drained", "fenced_since", f.Since)
	return false, nil
}

// Run checks for a loss and tries to lift a fence every interval until ctx
// ends. Errors are logged: a fence that cannot be checked stays up.
func (g *Guard) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := g.Recover(ctx); err != nil && ctx.Err() == nil {
			g.Log.Warn("recording a redis data loss failed; will retry", "err", err)
		}
		if _, err := g.Lift(ctx); err != nil && ctx.Err() == nil {
			g.Log.Warn("admission fence check failed; the fence stays", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
