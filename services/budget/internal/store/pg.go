package store

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PG is the Postgres Store.
type PG struct {
	pool     *pgxpool.Pool
	onChange atomic.Pointer[func([]Change)]
}

var _ Store = (*PG)(nil)

// NewPG returns a Store on pool. The schema is migrations.Budget.
func NewPG(pool *pgxpool.Pool) *PG { return &PG{pool: pool} }

// OnChange registers f to be called, after each write commits, with the changes
// the write announced. The cache uses it to drop this instance's own stale
// entries at once, without waiting for its NOTIFY to come back round.
func (s *PG) OnChange(f func([]Change)) { s.onChange.Store(&f) }

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// writeTx is a write transaction that collects the changes it must announce.
type writeTx struct {
	pgx.Tx
	changes []Change
}

func (w *writeTx) changed(cs ...Change) { w.changes = append(w.changes, cs...) }

// notify sends one NOTIFY per distinct change. It runs last in the
// transaction: Postgres delivers it at commit, or never if the commit fails.
func (w *writeTx) notify(ctx context.Context) error {
	payloads := make([]string, 0, len(w.changes))
	for _, c := range w.changes {
		payloads = append(payloads, c.Payload())
	}
	slices.Sort(payloads)
	payloads = slices.Compact(payloads)
	if len(payloads) == 0 {
		return nil
	}
	_, err := w.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", Channel, payloads)
	return err
}

// write runs fn in a transaction that announces fn's changes, then tells the
// OnChange hook. what names the operation for errors.
func (s *PG) write(ctx context.Context, what string, fn func(w *writeTx) error) error {
	var w *writeTx
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		w = &writeTx{Tx: tx}
		if err := fn(w); err != nil {
			return err
		}
		return w.notify(ctx)
	})
	if err != nil {
		return classify(what, err)
	}
	if f := s.onChange.Load(); f != nil {
		(*f)(w.changes)
	}
	return nil
}

// read classifies a read's error.
func read[T any](what string, v T, err error) (T, error) {
	if err != nil {
		return v, classify(what, err)
	}
	return v, nil
}

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// utc normalises a time read from Postgres (pgx returns local time).
func utc(t time.Time) time.Time { return t.UTC() }

// isSentinel reports errors already classified by this package.
func isSentinel(err error) bool {
	for _, s := range []error{ErrNotFound, ErrAlreadyExists, ErrFailedPrecondition, ErrInvalid, ErrUnavailable} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
