package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

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

// insertSQL appends rows passed as one array per column, unnested in order.
//
// Why unnest and not COPY: both need one statement per batch, but COPY
// needs a staging table (COPY cannot skip conflicts) plus an INSERT ...
// SELECT from it, so one more round trip and a temp table per session; at
// 500-row batches unnest measured faster (README). Array-valued columns
// (tags, unknown_components) travel as array literals in a text[] because
// unnest would flatten a 2-D array; components travel as JSON text.
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
    total_nanos, components, priced, unknown_components, catalog_version, reservation_id, stream_seq, counter_keys)
SELECT
    u.event_id, u.corrects_event_id, u.occurred_at,
    u.key_id, u.team_id, u.user_id, u.org_id, u.end_user_id, u.tags::text[],
    u.model_group, u.deployment_id, u.provider, u.backend_model,
    u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_creation_tokens, u.cache_creation_1h_tokens, u.reasoning_tokens,
    u.total_nanos, u.components::json, u.priced, u.unknown_components::text[], u.catalog_version, u.reservation_id, u.stream_seq, u.counter_keys::text[]
FROM unnest(
    $1::uuid[], $2::uuid[], $3::timestamptz[],
    $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
    $10::text[], $11::text[], $12::text[], $13::text[],
    $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[],
    $20::bigint[], $21::text[], $22::boolean[], $23::text[], $24::text[], $25::text[], $26::bigint[], $27::text[]
) AS u(
    event_id, corrects_event_id, occurred_at,
    key_id, team_id, user_id, org_id, end_user_id, tags,
    model_group, deployment_id, provider, backend_model,
    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cache_creation_1h_tokens, reasoning_tokens,
    total_nanos, components, priced, unknown_components, catalog_version, reservation_id, stream_seq, counter_keys)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id, tx_id, total_nanos, stream_seq`

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

// insert is Insert that also runs also, when not nil, in the transaction
// after the rows are written.
func insert(ctx context.Context, db DB, entries []Entry, also func(pgx.Tx) error) ([]Inserted, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	ids := make([][16]byte, len(entries))
	firstAt := make(map[[16]byte]int, len(entries))
	uniq := make([]int, 0, len(entries))
	for i := range entries {
		id, err := entries[i].validate()
		if err != nil {
			return nil, fmt.Errorf("pgstore: insert: entry %d: %w", i, err)
		}
		ids[i] = id
		if _, dup := firstAt[id]; !dup {
			firstAt[id] = i
			uniq = append(uniq, i)
		}
	}
	slices.SortFunc(uniq, func(a, b int) int { return bytes.Compare(ids[a][:], ids[b][:]) })

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
			New:        s.isNew && firstAt[ids[i]] == i,
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
		streamSeq[j] = int8Elem(e.StreamSeq) // validated to fit
		counterKeys.buf = appendArrayLiteral(counterKeys.buf, e.CounterKeys)
		counterKeys.end()
	}
	return []any{
		eventID, correctsID, occurredAt,
		keyID, teamID, userID, orgID, endUserID, tags.values(),
		modelGroup, deployment, provider, backend,
		input, output, cacheRead, cacheCreate, cache1h, reasoning,
		total, components.values(), priced, unknown.values(), catalog, reservation, streamSeq, counterKeys.values(),
	}
}
