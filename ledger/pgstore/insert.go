package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

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

	args, err := insertArgs(entries, ids, uniq)
	if err != nil {
		return nil, err
	}
	got := make(map[[16]byte]stored, len(uniq))
	err = pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if err := collectStored(ctx, tx, got, true, insertSQL, args...); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		if len(got) == len(uniq) {
			return nil
		}
		missing := make([][16]byte, 0, len(uniq)-len(got))
		for _, i := range uniq {
			if _, ok := got[ids[i]]; !ok {
				missing = append(missing, ids[i])
			}
		}
		if err := collectStored(ctx, tx, got, false, storedSQL, missing); err != nil {
			return fmt.Errorf("read duplicates: %w", err)
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
func insertArgs(entries []Entry, ids [][16]byte, uniq []int) ([]any, error) {
	n := len(uniq)
	var (
		eventID     = make([]pgtype.UUID, n)
		correctsID  = make([]pgtype.UUID, n)
		occurredAt  = make([]time.Time, n)
		keyID       = make([]string, n)
		teamID      = make([]string, n)
		userID      = make([]string, n)
		orgID       = make([]string, n)
		endUserID   = make([]string, n)
		tags        = make([]string, n)
		modelGroup  = make([]string, n)
		deployment  = make([]string, n)
		provider    = make([]string, n)
		backend     = make([]string, n)
		input       = make([]int64, n)
		output      = make([]int64, n)
		cacheRead   = make([]int64, n)
		cacheCreate = make([]int64, n)
		cache1h     = make([]int64, n)
		reasoning   = make([]int64, n)
		total       = make([]int64, n)
		components  = make([]string, n)
		priced      = make([]bool, n)
		unknown     = make([]string, n)
		catalog     = make([]string, n)
		reservation = make([]string, n)
		streamSeq   = make([]int64, n)
		counterKeys = make([]string, n)
	)
	for j, i := range uniq {
		e := &entries[i]
		eventID[j] = pgtype.UUID{Bytes: ids[i], Valid: true}
		if e.CorrectsEventID != "" {
			cid, _ := parseUUID(e.CorrectsEventID) // validated
			correctsID[j] = pgtype.UUID{Bytes: cid, Valid: true}
		}
		occurredAt[j] = e.OccurredAt
		keyID[j], teamID[j], userID[j], orgID[j], endUserID[j] = e.KeyID, e.TeamID, e.UserID, e.OrgID, e.EndUserID
		tags[j] = arrayLiteral(e.Tags)
		modelGroup[j], deployment[j], provider[j], backend[j] = e.ModelGroup, e.DeploymentID, e.Provider, e.BackendModel
		input[j], output[j], cacheRead[j] = e.InputTokens, e.OutputTokens, e.CacheReadTokens
		cacheCreate[j], cache1h[j], reasoning[j] = e.CacheCreationTokens, e.CacheCreation1hTokens, e.ReasoningTokens
		total[j] = e.TotalNanos
		if len(e.Components) == 0 {
			components[j] = "[]"
		} else {
			b, err := json.Marshal(e.Components)
			if err != nil {
				return nil, fmt.Errorf("pgstore: insert: event %s: encode components: %w", e.EventID, err)
			}
			components[j] = string(b)
		}
		priced[j] = e.Priced
		unknown[j] = arrayLiteral(e.UnknownComponents)
		catalog[j], reservation[j] = e.CatalogVersion, e.ReservationID
		streamSeq[j] = int64(e.StreamSeq) // validated to fit
		counterKeys[j] = arrayLiteral(e.CounterKeys)
	}
	return []any{
		eventID, correctsID, occurredAt,
		keyID, teamID, userID, orgID, endUserID, tags,
		modelGroup, deployment, provider, backend,
		input, output, cacheRead, cacheCreate, cache1h, reasoning,
		total, components, priced, unknown, catalog, reservation, streamSeq, counterKeys,
	}, nil
}

// arrayLiteral writes a Postgres text[] literal with every element quoted,
// so no element can be read as NULL or split on a comma or brace.
func arrayLiteral(vs []string) string {
	if len(vs) == 0 {
		return "{}"
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(v); j++ {
			if v[j] == '"' || v[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
