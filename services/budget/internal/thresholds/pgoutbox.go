package thresholds

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

// PGOutbox is the Outbox on the threshold_crossings table
// (migrations/budget/0002_threshold_crossings.sql).
//
// Each owed step (publish, webhook) has a due time. Taking a step is one
// UPDATE that moves its due time a lease ahead, on a row chosen with FOR
// UPDATE SKIP LOCKED among those due: of several instances racing for a
// row one wins, and the others see it not due. The step then runs with no
// transaction open (a slow receiver holds no Postgres connection), and a
// second UPDATE records its outcome. An instance that dies mid-step leaves
// the row due again when the lease ends; the step is then retried, which
// for the event JetStream deduplicates (same message id) and for the
// webhook the Idempotency-Key lets the receiver drop.
type PGOutbox struct {
	pool *pgxpool.Pool
	// lease must exceed the longest step (a publish or a webhook call,
	// timeouts included), or a slow step is taken twice.
	lease time.Duration
}

// NewPGOutbox returns the outbox on pool's database; lease is how long a
// taken step is left to its taker (at least a minute).
func NewPGOutbox(pool *pgxpool.Pool, lease time.Duration) *PGOutbox {
	return &PGOutbox{pool: pool, lease: max(lease, time.Minute)}
}

// crossingFields are a crossing's columns after its event id, which is
// written as a uuid and read back as text.
const crossingFields = `budget_id, scope_kind, scope_id, model_group, threshold,
	window_key, duration, window_index, window_start, window_end, limit_nanos, spent_nanos, detected_at`

const crossingColumns = `event_id::text, ` + crossingFields

// Record implements Outbox: one INSERT .. ON CONFLICT DO NOTHING per
// crossing, sent as one batch. The primary key decides who records it.
func (o *PGOutbox) Record(ctx context.Context, cs []Crossing, webhook bool) ([]Crossing, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	for _, c := range cs {
		b.Queue(`INSERT INTO threshold_crossings (event_id, `+crossingFields+`, webhook_due_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, CASE WHEN $15::boolean THEN now() END)
			ON CONFLICT DO NOTHING RETURNING true`,
			c.EventID, c.BudgetID, c.Scope.Kind.String(), c.Scope.ID, c.Scope.ModelGroup, c.Threshold,
			c.WindowKey, c.Duration.String(), c.WindowIndex, c.WindowStart, c.WindowEnd,
			int64(c.Limit), int64(c.Spent), c.DetectedAt, webhook)
	}
	br := o.pool.SendBatch(ctx, b)
	defer br.Close()
	var recorded []Crossing
	for _, c := range cs {
		var inserted bool
		switch err := br.QueryRow().Scan(&inserted); {
		case errors.Is(err, pgx.ErrNoRows): // recorded before, here or elsewhere
		case err != nil:
			return recorded, fmt.Errorf("record crossing %s of budget %s: %w", c.Threshold, c.BudgetID, err)
		default:
			recorded = append(recorded, c)
		}
	}
	if err := br.Close(); err != nil {
		return recorded, fmt.Errorf("record crossings: %w", err)
	}
	return recorded, nil
}

// PublishNext implements Outbox.
func (o *PGOutbox) PublishNext(ctx context.Context, publish func(context.Context, Crossing) error) (bool, error) {
	c, _, err := o.take(ctx, "publish_due_at")
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take an unpublished crossing: %w", err)
	}
	if pubErr := publish(ctx, c); pubErr != nil {
		// Due again at once, for the next pass (the lease would do it too).
		_, err := o.pool.Exec(context.WithoutCancel(ctx), `UPDATE threshold_crossings SET publish_due_at = now() WHERE event_id = $1`, c.EventID)
		return true, errors.Join(pubErr, err)
	}
	if _, err := o.pool.Exec(ctx, `UPDATE threshold_crossings SET publish_due_at = NULL, published_at = now()
		WHERE event_id = $1`, c.EventID); err != nil {
		return true, fmt.Errorf("mark crossing %s published: %w", c.EventID, err)
	}
	return true, nil
}

// DeliverNext implements Outbox.
func (o *PGOutbox) DeliverNext(ctx context.Context, deliver func(context.Context, Crossing, int) WebhookOutcome) (bool, error) {
	c, attempts, err := o.take(ctx, "webhook_due_at")
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take a due webhook call: %w", err)
	}
	out := deliver(ctx, c, attempts)
	if out.Delivered {
		_, err = o.pool.Exec(ctx, `UPDATE threshold_crossings SET webhook_due_at = NULL, webhook_delivered_at = now(),
			webhook_attempts = webhook_attempts + 1, webhook_error = '' WHERE event_id = $1`, c.EventID)
	} else {
		// Postgres's clock schedules the retry: it is the clock that
		// decides when a step is due.
		_, err = o.pool.Exec(ctx, `UPDATE threshold_crossings
			SET webhook_due_at = CASE WHEN $2::boolean THEN NULL ELSE now() + $3::interval END,
			webhook_attempts = webhook_attempts + 1, webhook_error = $4 WHERE event_id = $1`,
			c.EventID, out.Abandon, out.RetryIn, out.Err)
	}
	if err != nil {
		return true, fmt.Errorf("store webhook outcome of %s: %w", c.EventID, err)
	}
	return true, nil
}

// take leases the row whose step (its due column) has been due longest,
// and returns it with its webhook attempts so far.
func (o *PGOutbox) take(ctx context.Context, due string) (Crossing, int, error) {
	return scanCrossing(o.pool.QueryRow(ctx, `UPDATE threshold_crossings SET `+due+` = now() + $1::interval
		WHERE event_id = (SELECT event_id FROM threshold_crossings WHERE `+due+` <= now()
			ORDER BY `+due+` LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+crossingColumns+`, webhook_attempts`, o.lease))
}

// Pending implements Outbox.
func (o *PGOutbox) Pending(ctx context.Context) (unpublished, webhookOwed int64, err error) {
	err = o.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE publish_due_at IS NOT NULL),
		count(*) FILTER (WHERE webhook_due_at IS NOT NULL)
		FROM threshold_crossings WHERE publish_due_at IS NOT NULL OR webhook_due_at IS NOT NULL`).Scan(&unpublished, &webhookOwed)
	if err != nil {
		return 0, 0, fmt.Errorf("count pending crossings: %w", err)
	}
	return unpublished, webhookOwed, nil
}

// scanCrossing reads crossingColumns and one integer (the webhook attempts).
func scanCrossing(row pgx.Row) (Crossing, int, error) {
	var c Crossing
	var kind, dur string
	var limit, spent int64
	var attempts int
	if err := row.Scan(&c.EventID, &c.BudgetID, &kind, &c.Scope.ID, &c.Scope.ModelGroup, &c.Threshold,
		&c.WindowKey, &dur, &c.WindowIndex, &c.WindowStart, &c.WindowEnd, &limit, &spent, &c.DetectedAt, &attempts); err != nil {
		return Crossing{}, 0, err
	}
	var err error
	if c.Scope.Kind, err = scope.ParseKind(kind); err != nil {
		return Crossing{}, 0, fmt.Errorf("crossing %s: %w", c.EventID, err)
	}
	if c.Duration, err = window.Parse(dur); err != nil {
		return Crossing{}, 0, fmt.Errorf("crossing %s: %w", c.EventID, err)
	}
	c.Limit, c.Spent = money.Nanos(limit), money.Nanos(spent)
	c.WindowStart, c.WindowEnd, c.DetectedAt = c.WindowStart.UTC(), c.WindowEnd.UTC(), c.DetectedAt.UTC()
	return c, attempts, nil
}
