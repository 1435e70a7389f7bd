package pgstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/spendledger/spendledger/ledger/scope"
)

// scopePredicate is the one mapping from a scope to the rows charged to it,
// used by every spend query, so a reseeded counter, verify and the spend
// endpoints cannot disagree about what a scope's spend is. It must select
// exactly the entries whose Identity().Scopes() contains s. Parameters are
// numbered from $first.
//
// The indexes on team, user, org and end user are partial (they skip the
// empty id of an absent value), and a generic plan for "team_id = $1" cannot
// prove the index predicate, so it is repeated literally; that changes no
// result because scope ids are never empty (Validate). The same goes for the
// tags index, which skips untagged rows.
func scopePredicate(s scope.Scope, first int) (string, []any, error) {
	if err := s.Validate(); err != nil {
		return "", nil, fmt.Errorf("pgstore: %w", err)
	}
	p := "$" + strconv.Itoa(first)
	q := "$" + strconv.Itoa(first+1)
	switch s.Kind {
	case scope.KindKey:
		return "key_id = " + p, []any{s.ID}, nil
	case scope.KindTeam:
		return "team_id = " + p + " AND team_id <> ''", []any{s.ID}, nil
	case scope.KindUser:
		return "user_id = " + p + " AND user_id <> ''", []any{s.ID}, nil
	case scope.KindOrg:
		return "org_id = " + p + " AND org_id <> ''", []any{s.ID}, nil
	case scope.KindEndUser:
		return "end_user_id = " + p + " AND end_user_id <> ''", []any{s.ID}, nil
	case scope.KindTag:
		// @> is what the GIN index on tags answers; the index is partial
		// (untagged rows are left out), and "tags <> '{}'" is repeated so
		// a plan can prove its predicate. A row holding the tag is never
		// untagged, so no result changes.
		return "tags @> ARRAY[" + p + "::text] AND tags <> '{}'", []any{s.ID}, nil
	case scope.KindProvider:
		return "provider = " + p, []any{s.ID}, nil
	case scope.KindDeployment:
		return "deployment_id = " + p, []any{s.ID}, nil
	case scope.KindKeyModel:
		return "key_id = " + p + " AND model_group = " + q, []any{s.ID, s.ModelGroup}, nil
	case scope.KindEndUserModel:
		return "end_user_id = " + p + " AND end_user_id <> '' AND model_group = " + q, []any{s.ID, s.ModelGroup}, nil
	}
	// Unreachable after Validate; kept so a new Kind cannot silently sum
	// nothing.
	return "", nil, fmt.Errorf("pgstore: no predicate for scope kind %v", s.Kind)
}

// rangeQuery returns "WHERE <scope> AND occurred_at in [$1, $2)" and its
// arguments.
func rangeQuery(s scope.Scope, start, end time.Time) (string, []any, error) {
	if end.Before(start) {
		return "", nil, fmt.Errorf("pgstore: range end %v is before start %v", end, start)
	}
	pred, args, err := scopePredicate(s, 3)
	if err != nil {
		return "", nil, err
	}
	return "WHERE occurred_at >= $1 AND occurred_at < $2 AND " + pred, append([]any{start, end}, args...), nil
}

// SumResult is the ledger's spend for one scope and range, and the snapshot
// it was read in.
type SumResult struct {
	// Nanos is the sum of total_nanos, corrections included.
	Nanos int64
	// Entries is the number of entries summed, corrections included.
	Entries int64
	// Unpriced counts summed entries with an unknown price: Nanos holds only
	// their known components, so the spend is a lower bound when it is > 0.
	Unpriced int64
	// Snapshot is pg_current_snapshot() as text ("xmin:xmax:xip,..."): the
	// sum contains exactly the entries whose TxID is visible in it
	// (TxVisible).
	Snapshot string
}

// Sum returns the ledger's spend for s over occurred_at ∈ [start, end) and
// the snapshot it was read in, from one REPEATABLE READ, read-only
// transaction. Reseeding a counter stores both (ADR 2): projection then skips
// exactly the entries already in the sum.
func Sum(ctx context.Context, db DB, s scope.Scope, start, end time.Time) (SumResult, error) {
	where, args, err := rangeQuery(s, start, end)
	if err != nil {
		return SumResult{}, err
	}
	// One statement reads the sum and the snapshot, so they agree even if a
	// second statement is ever added; the transaction makes the isolation
	// explicit whatever the server's default.
	sql := `SELECT coalesce(sum(total_nanos), 0)::bigint, count(*), count(*) FILTER (WHERE NOT priced),
		pg_current_snapshot()::text FROM ledger_entries ` + where
	var r SumResult
	err = pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, sql, args...).Scan(&r.Nanos, &r.Entries, &r.Unpriced, &r.Snapshot)
	})
	if err != nil {
		return SumResult{}, fmt.Errorf("pgstore: sum %v [%v, %v): %w", s, start, end, err)
	}
	return r, nil
}

// GroupSpend is the spend on one model group.
type GroupSpend struct {
	ModelGroup string
	Nanos      int64
	Entries    int64
}

// SpendByModelGroup returns s's spend over [start, end) per model group,
// ordered by model group. Groups without entries are absent.
func SpendByModelGroup(ctx context.Context, db DB, s scope.Scope, start, end time.Time) ([]GroupSpend, error) {
	where, args, err := rangeQuery(s, start, end)
	if err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, `SELECT model_group, sum(total_nanos)::bigint, count(*) FROM ledger_entries `+
		where+` GROUP BY model_group ORDER BY model_group`, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: spend by model group %v: %w", s, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GroupSpend, error) {
		var g GroupSpend
		return g, r.Scan(&g.ModelGroup, &g.Nanos, &g.Entries)
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: spend by model group %v: %w", s, err)
	}
	return out, nil
}

// DaySpend is the spend of one UTC day.
type DaySpend struct {
	Day     time.Time // 00:00 UTC
	Nanos   int64
	Entries int64
}

// SpendByDay returns s's spend over [start, end) per UTC day, oldest first.
// Days without entries are absent. Days are UTC whatever the session's
// TimeZone, because budget windows are UTC.
func SpendByDay(ctx context.Context, db DB, s scope.Scope, start, end time.Time) ([]DaySpend, error) {
	where, args, err := rangeQuery(s, start, end)
	if err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, `SELECT date_trunc('day', occurred_at AT TIME ZONE 'UTC') AS day, sum(total_nanos)::bigint, count(*)
		FROM ledger_entries `+where+` GROUP BY day ORDER BY day`, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: spend by day %v: %w", s, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DaySpend, error) {
		var d DaySpend
		var day pgtype.Timestamp // without time zone: the UTC wall clock
		if err := r.Scan(&day, &d.Nanos, &d.Entries); err != nil {
			return d, err
		}
		d.Day = time.Date(day.Time.Year(), day.Time.Month(), day.Time.Day(), 0, 0, 0, 0, time.UTC)
		return d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: spend by day %v: %w", s, err)
	}
	return out, nil
}

// entryColumns is the select list scanEntry reads.
const entryColumns = `event_id, corrects_event_id, occurred_at, recorded_at,
    key_id, team_id, user_id, org_id, end_user_id, tags,
    model_group, deployment_id, provider, backend_model,
    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cache_creation_1h_tokens, reasoning_tokens,
    total_nanos, components, priced, unknown_components, catalog_version, reservation_id, stream_seq, tx_id, counter_keys, request_id`

func scanEntry(r pgx.CollectableRow) (Entry, error) {
	var (
		e             Entry
		id, corrects  pgtype.UUID
		seq           int64
		occ, recorded time.Time
	)
	err := r.Scan(&id, &corrects, &occ, &recorded,
		&e.KeyID, &e.TeamID, &e.UserID, &e.OrgID, &e.EndUserID, &e.Tags,
		&e.ModelGroup, &e.DeploymentID, &e.Provider, &e.BackendModel,
		&e.InputTokens, &e.OutputTokens, &e.CacheReadTokens, &e.CacheCreationTokens, &e.CacheCreation1hTokens, &e.ReasoningTokens,
		&e.TotalNanos, &e.Components, &e.Priced, &e.UnknownComponents, &e.CatalogVersion, &e.ReservationID, &seq, &e.TxID, &e.CounterKeys, &e.RequestID)
	if err != nil {
		return e, err
	}
	e.EventID = formatUUID(id.Bytes)
	if corrects.Valid {
		e.CorrectsEventID = formatUUID(corrects.Bytes)
	}
	e.OccurredAt, e.RecordedAt = occ.UTC(), recorded.UTC()
	e.StreamSeq = uint64(seq) // the column is never negative: it comes from a uint64 ≤ MaxInt64
	return e, nil
}

// Page is one page of ListEntries.
type Page struct {
	Entries []Entry
	// NextPageToken continues the listing; empty on the last page.
	NextPageToken string
}

// Page sizes for ListEntries.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// ListEntries lists s's entries with occurred_at in [start, end), newest
// first (ties by event id, descending). pageSize ≤ 0 means DefaultPageSize;
// it is capped at MaxPageSize. pageToken is "" for the first page, else a
// previous page's NextPageToken with the same scope and range.
//
// Pages are keyset-paginated on (occurred_at, event_id): no OFFSET, so a page
// deep into a key's history costs as much as the first, and entries appended
// meanwhile (the ledger is append-only) never shift entries between pages or
// repeat one: an appended entry older than the last page's position shows up
// in a later page, a newer one not in this listing.
func ListEntries(ctx context.Context, db DB, s scope.Scope, start, end time.Time, pageSize int, pageToken string) (Page, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	where, args, err := rangeQuery(s, start, end)
	if err != nil {
		return Page{}, err
	}
	if pageToken != "" {
		at, id, err := decodePageToken(pageToken)
		if err != nil {
			return Page{}, err
		}
		n := len(args)
		where += fmt.Sprintf(" AND (occurred_at, event_id) < ($%d, $%d)", n+1, n+2)
		args = append(args, at, pgtype.UUID{Bytes: id, Valid: true})
	}
	// One extra row says whether there is a next page, so the last page is
	// never an empty one.
	args = append(args, pageSize+1)
	sql := `SELECT ` + entryColumns + ` FROM ledger_entries ` + where +
		fmt.Sprintf(" ORDER BY occurred_at DESC, event_id DESC LIMIT $%d", len(args))
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return Page{}, fmt.Errorf("pgstore: list entries %v: %w", s, err)
	}
	entries, err := pgx.CollectRows(rows, scanEntry)
	if err != nil {
		return Page{}, fmt.Errorf("pgstore: list entries %v: %w", s, err)
	}
	p := Page{Entries: entries}
	if len(entries) > pageSize {
		p.Entries = entries[:pageSize]
		last := p.Entries[pageSize-1]
		id, _ := parseUUID(last.EventID)
		p.NextPageToken = encodePageToken(last.OccurredAt, id)
	}
	return p, nil
}

// ErrBadPageToken is returned for a page token ListEntries did not issue.
var ErrBadPageToken = errors.New("pgstore: invalid page token")

// pageTokenVersion lets the token format change without misreading old
// tokens held by clients.
const pageTokenVersion = 1

// encodePageToken packs the last entry's position: version, occurred_at in
// Unix microseconds (Postgres' precision, so it round-trips exactly), event
// id; base64url so it can sit in a query string.
func encodePageToken(at time.Time, id [16]byte) string {
	var b [25]byte
	b[0] = pageTokenVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(at.UnixMicro()))
	copy(b[9:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodePageToken(tok string) (time.Time, [16]byte, error) {
	var id [16]byte
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 25 || b[0] != pageTokenVersion {
		return time.Time{}, id, ErrBadPageToken
	}
	copy(id[:], b[9:])
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC(), id, nil
}
