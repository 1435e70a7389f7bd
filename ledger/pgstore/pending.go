package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// The pending-projection backlog (table ledger_projection_pending, migration
// 0002): entries committed to the ledger whose Redis projection has not
// happened yet. It is a work queue beside the append-only ledger: rows are
// added when a projection cannot happen and deleted once it has, by any
// ledger instance. ADR 2, "Redis down".

// PendingMark names one entry whose projection is pending.
type PendingMark struct {
	EventID string
	// StreamSeq is the COSTS sequence of the delivery whose projection
	// failed or was deferred: the score any marker it wrote carries.
	StreamSeq uint64
}

// Pending is a pending entry as stored: what its projection needs.
type Pending struct {
	EventID       string
	StreamSeq     uint64 // the pending row's sequence (PendingMark.StreamSeq)
	TxID          uint64 // the entry's inserting transaction
	TotalNanos    int64  // the stored total
	ReservationID string
	CounterKeys   []string
}

// markPendingSQL adds marks; a mark already there keeps the smaller
// sequence, so the prune floor stays below every marker either delivery
// may have written.
const markPendingSQL = `
INSERT INTO ledger_projection_pending (event_id, stream_seq)
SELECT * FROM unnest($1::uuid[], $2::bigint[])
ON CONFLICT (event_id) DO UPDATE
SET stream_seq = least(ledger_projection_pending.stream_seq, EXCLUDED.stream_seq)`

// claimPendingSQL takes the oldest pending rows no other transaction holds.
// SKIP LOCKED lets several ledger instances drain at once, each its own rows.
const claimPendingSQL = `
SELECT p.event_id, p.stream_seq, e.tx_id, e.total_nanos, e.reservation_id, e.counter_keys
FROM ledger_projection_pending p JOIN ledger_entries e USING (event_id)
ORDER BY p.stream_seq
LIMIT $1
FOR UPDATE OF p SKIP LOCKED`

const deletePendingSQL = `DELETE FROM ledger_projection_pending WHERE event_id = ANY($1::uuid[])`

// MarkPending records, in its own transaction, entries whose projection
// failed after their rows were committed. Return nil before acking them.
func MarkPending(ctx context.Context, db DB, marks []PendingMark) error {
	args, err := pendingArgs(marks)
	if err != nil || args == nil {
		return err
	}
	err = pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, markPendingSQL, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: mark %d projections pending: %w", len(marks), err)
	}
	return nil
}

// InsertPending is Insert that also marks, in the same transaction, every
// entry with counter keys as pending projection: for when the caller knows
// it cannot project now (Redis down). Either both the rows and the marks
// commit or neither does.
func InsertPending(ctx context.Context, db DB, entries []Entry) ([]Inserted, error) {
	marks := make([]PendingMark, 0, len(entries))
	for i := range entries {
		if len(entries[i].CounterKeys) > 0 {
			marks = append(marks, PendingMark{EventID: entries[i].EventID, StreamSeq: entries[i].StreamSeq})
		}
	}
	// The marks are laid out only once insert has validated every entry, so
	// a malformed event id is ErrInvalidEntry (dead-lettered alone), not a
	// failed write that would send the whole batch back forever.
	return insert(ctx, db, entries, func(tx pgx.Tx) error {
		args, err := pendingArgs(marks)
		if err != nil || args == nil {
			return err
		}
		if _, err := tx.Exec(ctx, markPendingSQL, args...); err != nil {
			return fmt.Errorf("mark pending: %w", err)
		}
		return nil
	})
}

// pendingArgs lays marks out as markPendingSQL's arrays: one per event
// (the smallest sequence), sorted by event id so concurrent marks lock rows
// in one order. nil args for no marks.
func pendingArgs(marks []PendingMark) ([]any, error) {
	if len(marks) == 0 {
		return nil, nil
	}
	seqOf := make(map[[16]byte]uint64, len(marks))
	for _, m := range marks {
		id, err := parseUUID(m.EventID)
		if err != nil {
			return nil, fmt.Errorf("pgstore: pending mark: event id %q: %w", m.EventID, err)
		}
		if m.StreamSeq > math.MaxInt64 {
			return nil, fmt.Errorf("pgstore: pending mark %s: stream seq %d does not fit a bigint", m.EventID, m.StreamSeq)
		}
		if s, ok := seqOf[id]; !ok || m.StreamSeq < s {
			seqOf[id] = m.StreamSeq
		}
	}
	ids := make([]pgtype.UUID, 0, len(seqOf))
	for id := range seqOf {
		ids = append(ids, pgtype.UUID{Bytes: id, Valid: true})
	}
	slices.SortFunc(ids, func(a, b pgtype.UUID) int { return bytes.Compare(a.Bytes[:], b.Bytes[:]) })
	seqs := make([]int64, len(ids))
	for i, id := range ids {
		seqs[i] = int64(seqOf[id.Bytes])
	}
	return []any{ids, seqs}, nil
}

// DrainPending claims up to limit of the oldest pending entries (rows
// another transaction holds are skipped), calls project with them in stream
// order, deletes those whose done flag project set, and commits. It returns
// how many it claimed and deleted. The claim holds row locks only for the
// duration of project: a crash before commit leaves every row pending, and
// re-projecting an entry that did land is skipped by its event markers.
func DrainPending(ctx context.Context, db DB, limit int, project func([]Pending) []bool) (claimed, done int, err error) {
	err = pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, claimPendingSQL, limit)
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		ps, err := pgx.CollectRows(rows, scanPending)
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		claimed = len(ps)
		if claimed == 0 {
			return nil
		}
		ok := project(ps)
		var ids []pgtype.UUID
		for i, p := range ps {
			if i < len(ok) && ok[i] {
				id, _ := parseUUID(p.EventID) // formatted by scanPending
				ids = append(ids, pgtype.UUID{Bytes: id, Valid: true})
			}
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, deletePendingSQL, ids); err != nil {
			return fmt.Errorf("delete drained: %w", err)
		}
		done = len(ids)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: drain pending projections: %w", err)
	}
	return claimed, done, nil
}

func scanPending(r pgx.CollectableRow) (Pending, error) {
	var (
		p   Pending
		id  pgtype.UUID
		seq int64
	)
	if err := r.Scan(&id, &seq, &p.TxID, &p.TotalNanos, &p.ReservationID, &p.CounterKeys); err != nil {
		return p, err
	}
	p.EventID, p.StreamSeq = formatUUID(id.Bytes), uint64(seq)
	return p, nil
}

// PendingStats is the backlog's size and smallest stream sequence (0 when
// empty), in one statement.
func PendingStats(ctx context.Context, db DB) (count int64, minSeq uint64, err error) {
	rows, err := db.Query(ctx, `SELECT count(*), coalesce(min(stream_seq), 0) FROM ledger_projection_pending`)
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: pending projections: %w", err)
	}
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&count, &seq}, func() error { return nil })
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: pending projections: %w", err)
	}
	return count, uint64(seq), nil
}
