package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgUniqueViolation is SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// DB is what the store needs from Postgres; *pgxpool.Pool and *pgx.Conn
// satisfy it.
type DB interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Inserted is Insert's answer for one given entry.
type Inserted struct {
	EventID string
	// TxID is the xid8 of the transaction that inserted the stored row: this
	// call's transaction when New, an earlier one for a duplicate. The
	// projection compares it with a reseeded counter's snapshot (TxVisible).
	TxID uint64
	// New is true for the one given entry whose row this call inserted; false
	// when the event id was already in the table or earlier in the batch.
	New bool
	// TotalNanos is the stored row's total. For a duplicate it can differ from
	// the given entry's (the event was re-priced before redelivery); project
	// this figure, so counters stay equal to the ledger.
	TotalNanos int64
	// StreamSeq is the stored row's COSTS stream sequence.
	StreamSeq uint64
}

// insertSQL appends rows passed as one array per column, unnested in order:
// the path for a batch that holds an event already stored (see copySQL for
// the usual one). Array-valued columns (tags, unknown_components) travel as
// array literals in a text[] because unnest would flatten a 2-D array;
// components travel as JSON text.
//
// Why ON CONFLICT DO NOTHING: a redelivered event is normal. It also skips a
// row whose id is held by a concurrent, uncommitted insert once that insert
// commits (it waits for it), so two instances never both insert an event.
const insertSQL = `
INSERT INTO ledger_entries (
    event_id, corrects_event_id, occurred_at,
    key_id, team_id, user_id, org_id, end_user_id, tags,
    model_group, deployment_id, provider, backend_model,
    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cache_creation_1h_tokens, reasoning_tokens,
    total_nanos, components, priced, unknown_components, catalog_version, reservation_id, stream_seq, counter_keys, request_id)
SELECT
    u.event_id, u.corrects_event_id, u.occurred_at,
    u.key_id, u.team_id, u.user_id, u.org_id, u.end_user_id, u.tags::text[],
    u.model_group, u.deployment_id, u.provider, u.backend_model,
    u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_creation_tokens, u.cache_creation_1h_tokens, u.reasoning_tokens,
    u.total_nanos, u.components::json, u.priced, u.unknown_components::text[], u.catalog_version, u.reservation_id, u.stream_seq, u.counter_keys::text[], u.request_id
FROM unnest(
    $1::uuid[], $2::uuid[], $3::timestamptz[],
    $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
    $10::text[], $11::text[], $12::text[], $13::text[],
    $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[],
    $20::bigint[], $21::text[], $22::boolean[], $23::text[], $24::text[], $25::text[], $26::bigint[], $27::text[], $28::text[]
) AS u(
    event_id, corrects_event_id, occurred_at,
    key_id, team_id, user_id, org_id, end_user_id, tags,
    model_group, deployment_id, provider, backend_model,
    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cache_creation_1h_tokens, reasoning_tokens,
    total_nanos, components, priced, unknown_components, catalog_version, reservation_id, stream_seq, counter_keys, request_id)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id, tx_id, total_nanos, stream_seq`

// copySQL is Insert's usual path: the batch streamed with binary COPY
// straight into ledger_entries (copyenc.go writes the rows). Postgres then
// inserts the rows in groups (a WAL record per heap page, not per row), with
// no executor per row, no array literals to parse and no ON CONFLICT
// speculative insertion: measured 19.1 → 11.5 µs of Postgres CPU per row
// (2,000-row batches shaped like the ingest benchmark's, interleaved with
// insertSQL in one Postgres), and the Go side writes the rows without pgx's
// per-value encoding plans.
//
// COPY cannot skip a conflict: a batch holding an event that is already
// stored fails whole with a unique violation (after waiting, like ON
// CONFLICT, for a concurrent transaction holding the id), nothing of it is
// written, and Insert runs it again with insertSQL in a new transaction. A
// conflict means a redelivery, which is rare next to new events; the failed
// COPY stops at the first stored event in id order, so what it wastes is
// bounded by that batch. (Remembering recent conflicts to skip COPY for a
// while was considered: it would make which path a batch takes depend on
// other batches, for a saving only on redelivery bursts.)
const copySQL = `COPY ledger_entries (` + copyColumns + `) FROM STDIN (FORMAT binary)`

// currentTxSQL reads the xid8 that tx_id's default gave the copied rows.
const currentTxSQL = `SELECT pg_current_xact_id()`

// errCopyConflict is the COPY path failing on an event already stored.
var errCopyConflict = errors.New("copy: an event is already stored")

// storedSQL reads the rows Insert skipped. It runs as its own statement in
// READ COMMITTED, so it sees a row that a concurrent transaction committed
// while the insert waited on it, which the insert's own snapshot does not.
const storedSQL = `SELECT event_id, tx_id, total_nanos, stream_seq FROM ledger_entries WHERE event_id = ANY($1::uuid[])`

type stored struct {
	txID      uint64
	total     int64
	streamSeq uint64
	isNew     bool
}

// Insert appends entries in one transaction and returns, in the order given,
// an Inserted for every entry. An entry whose event id is already stored, or
// appears earlier in the batch, is skipped: the first occurrence wins and
// only it can be New. Every entry is validated first; if one is invalid
// nothing is written and the error (wrapping ErrInvalidEntry) names it.
//
// When Insert returns without error the rows are committed: the caller may
// ack the events. Rows go in sorted by event id, so two batches that share
// events lock them in the same order and cannot deadlock.
func Insert(ctx context.Context, db DB, entries []Entry) ([]Inserted, error) {
	return insert(ctx, db, entries, nil)
}

// batch is a validated batch: every entry's parsed event id, the index of
// each id's first occurrence, and those first occurrences sorted by id.
type batch struct {
	entries []Entry
	ids     [][16]byte
	firstAt map[[16]byte]int
	uniq    []int
}

func newBatch(entries []Entry) (batch, error) {
	b := batch{
		entries: entries,
		ids:     make([][16]byte, len(entries)),
		firstAt: make(map[[16]byte]int, len(entries)),
		uniq:    make([]int, 0, len(entries)),
	}
	for i := range entries {
		id, err := entries[i].validate()
		if err != nil {
			return batch{}, fmt.Errorf("pgstore: insert: entry %d: %w", i, err)
		}
		b.ids[i] = id
		if _, dup := b.firstAt[id]; !dup {
			b.firstAt[id] = i
			b.uniq = append(b.uniq, i)
		}
	}
	slices.SortFunc(b.uniq, func(x, y int) int { return bytes.Compare(b.ids[x][:], b.ids[y][:]) })
	return b, nil
}

// insert is Insert that also runs also, when not nil, in the transaction
// after the rows are written.
func insert(ctx context.Context, db DB, entries []Entry, also func(pgx.Tx) error) ([]Inserted, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	b, err := newBatch(entries)
	if err != nil {
		return nil, err
	}
	out, err := insertByCopy(ctx, db, b, also)
	if errors.Is(err, errCopyConflict) {
		return insertOnConflict(ctx, db, b, also)
	}
	return out, err
}

// insertByCopy writes the batch with copySQL. Every unique entry is new and
// stored as given, so the answers need no read back but the transaction id.
func insertByCopy(ctx context.Context, db DB, b batch, also func(pgx.Tx) error) ([]Inserted, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	*buf = appendCopyRows((*buf)[:0], b.entries, b.ids, b.uniq)

	var txID uint64
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(*buf), copySQL); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == pgUniqueViolation {
				return errCopyConflict
			}
			return fmt.Errorf("copy: %w", err)
		}
		if err := tx.QueryRow(ctx, currentTxSQL).Scan(&txID); err != nil {
			return fmt.Errorf("read transaction id: %w", err)
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: insert %d entries: %w", len(b.entries), err)
	}
	out := make([]Inserted, len(b.entries))
	for i := range b.entries {
		first := &b.entries[b.firstAt[b.ids[i]]]
		out[i] = Inserted{
			EventID:    b.entries[i].EventID,
			TxID:       txID,
			New:        first == &b.entries[i],
			TotalNanos: first.TotalNanos,
			StreamSeq:  first.StreamSeq,
		}
	}
	return out, nil
}

// insertOnConflict writes the batch with insertSQL, skipping the events
// already stored, and reads those back with storedSQL.
func insertOnConflict(ctx context.Context, db DB, b batch, also func(pgx.Tx) error) ([]Inserted, error) {
	entries, ids, uniq := b.entries, b.ids, b.uniq
	args := insertArgs(entries, ids, uniq)
	got := make(map[[16]byte]stored, len(uniq))
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if err := collectStored(ctx, tx, got, true, insertSQL, args...); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		if len(got) < len(uniq) {
			missing := make([][16]byte, 0, len(uniq)-len(got))
			for _, i := range uniq {
				if _, ok := got[ids[i]]; !ok {
					missing = append(missing, ids[i])
				}
			}
			if err := collectStored(ctx, tx, got, false, storedSQL, missing); err != nil {
				return fmt.Errorf("read duplicates: %w", err)
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: insert %d entries: %w", len(entries), err)
	}

	out := make([]Inserted, len(entries))
	for i := range entries {
		s, ok := got[ids[i]]
		if !ok {
			// Cannot happen: a conflicting row is committed before ON CONFLICT
			// skips it, and rows are never deleted.
			return nil, fmt.Errorf("pgstore: insert: event %s neither inserted nor found", entries[i].EventID)
		}
		out[i] = Inserted{
			EventID:    entries[i].EventID,
			TxID:       s.txID,
			New:        s.isNew && b.firstAt[ids[i]] == i,
			TotalNanos: s.total,
			StreamSeq:  s.streamSeq,
		}
	}
	return out, nil
}

func collectStored(ctx context.Context, tx pgx.Tx, into map[[16]byte]stored, isNew bool, sql string, args ...any) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	var (
		id    pgtype.UUID
		s     stored
		seq   int64
		scans = []any{&id, &s.txID, &s.total, &seq}
	)
	_, err = pgx.ForEachRow(rows, scans, func() error {
		s.streamSeq, s.isNew = uint64(seq), isNew
		into[id.Bytes] = s
		return nil
	})
	return err
}

// insertArgs lays the unique entries out column by column, in uniq's order.
func insertArgs(entries []Entry, ids [][16]byte, uniq []int) []any {
	n := len(uniq)
	var (
		eventID     = make(inPlace[pgtype.UUID], n)
		correctsID  = make(inPlace[pgtype.UUID], n)
		occurredAt  = make(inPlace[timeElem], n)
		keyID       = make(inPlace[textElem], n)
		teamID      = make(inPlace[textElem], n)
		userID      = make(inPlace[textElem], n)
		orgID       = make(inPlace[textElem], n)
		endUserID   = make(inPlace[textElem], n)
		tags        = newTextColumn(n, 2)
		modelGroup  = make(inPlace[textElem], n)
		deployment  = make(inPlace[textElem], n)
		provider    = make(inPlace[textElem], n)
		backend     = make(inPlace[textElem], n)
		input       = make(inPlace[int8Elem], n)
		output      = make(inPlace[int8Elem], n)
		cacheRead   = make(inPlace[int8Elem], n)
		cacheCreate = make(inPlace[int8Elem], n)
		cache1h     = make(inPlace[int8Elem], n)
		reasoning   = make(inPlace[int8Elem], n)
		total       = make(inPlace[int8Elem], n)
		components  = newTextColumn(n, 128)
		priced      = make([]bool, n) // a boxed bool does not allocate
		unknown     = newTextColumn(n, 2)
		catalog     = make(inPlace[textElem], n)
		reservation = make(inPlace[textElem], n)
		requestID   = make(inPlace[textElem], n)
		streamSeq   = make(inPlace[int8Elem], n)
		counterKeys = newTextColumn(n, 64)
	)
	for j, i := range uniq {
		e := &entries[i]
		eventID[j] = pgtype.UUID{Bytes: ids[i], Valid: true}
		if e.CorrectsEventID != "" {
			cid, _ := parseUUID(e.CorrectsEventID) // validated
			correctsID[j] = pgtype.UUID{Bytes: cid, Valid: true}
		}
		occurredAt[j] = timeElem(e.OccurredAt)
		keyID[j], teamID[j], userID[j] = textElem(e.KeyID), textElem(e.TeamID), textElem(e.UserID)
		orgID[j], endUserID[j] = textElem(e.OrgID), textElem(e.EndUserID)
		tags.buf = appendArrayLiteral(tags.buf, e.Tags)
		tags.end()
		modelGroup[j], deployment[j] = textElem(e.ModelGroup), textElem(e.DeploymentID)
		provider[j], backend[j] = textElem(e.Provider), textElem(e.BackendModel)
		input[j], output[j], cacheRead[j] = int8Elem(e.InputTokens), int8Elem(e.OutputTokens), int8Elem(e.CacheReadTokens)
		cacheCreate[j], cache1h[j] = int8Elem(e.CacheCreationTokens), int8Elem(e.CacheCreation1hTokens)
		reasoning[j], total[j] = int8Elem(e.ReasoningTokens), int8Elem(e.TotalNanos)
		components.buf = appendComponentsJSON(components.buf, e.Components)
		components.end()
		priced[j] = e.Priced
		unknown.buf = appendArrayLiteral(unknown.buf, e.UnknownComponents)
		unknown.end()
		catalog[j], reservation[j] = textElem(e.CatalogVersion), textElem(e.ReservationID)
		requestID[j] = textElem(e.RequestID)
		streamSeq[j] = int8Elem(e.StreamSeq) // validated to fit
		counterKeys.buf = appendArrayLiteral(counterKeys.buf, e.CounterKeys)
		counterKeys.end()
	}
	return []any{
		eventID, correctsID, occurredAt,
		keyID, teamID, userID, orgID, endUserID, tags.values(),
		modelGroup, deployment, provider, backend,
		input, output, cacheRead, cacheCreate, cache1h, reasoning,
		total, components.values(), priced, unknown.values(), catalog, reservation, streamSeq, counterKeys.values(), requestID,
	}
}
