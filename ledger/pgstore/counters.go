package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// CounterKeys calls fn once with every distinct counter key any entry lands
// on (ledger_entries.counter_keys), in no particular order: the set of
// counters `ledger replay projections` rebuilds. Rows stream from one
// statement, so the set never has to fit in memory twice; an error from fn
// stops the scan and is returned.
//
// It reads the whole table (there is no index on counter_keys: a GIN index
// would tax every insert for a query that runs only on replay).
func CounterKeys(ctx context.Context, db DB, fn func(key string) error) error {
	rows, err := db.Query(ctx, `SELECT DISTINCT k FROM ledger_entries, unnest(counter_keys) AS k`)
	if err != nil {
		return fmt.Errorf("pgstore: counter keys: %w", err)
	}
	var key string
	if _, err := pgx.ForEachRow(rows, []any{&key}, func() error { return fn(key) }); err != nil {
		return fmt.Errorf("pgstore: counter keys: %w", err)
	}
	return nil
}

// CurrentTotals returns, for each given event id whose original entry is in
// the ledger, what the ledger holds for it now: the original entry's total
// plus every correction of it (nano-USD). Ids without an original entry are
// absent from the map. Keys are canonical lowercase UUIDs; the given ids may
// be in either case. A re-price compares a new cost with this figure, so a
// second correction of an event adjusts the first instead of repeating it.
func CurrentTotals(ctx context.Context, db DB, eventIDs []string) (map[string]int64, error) {
	ids, err := parseIDs(eventIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// Both halves use an index: the primary key, and the partial index on
	// corrects_event_id. HAVING drops corrections whose original is absent
	// (a correction is only ever written for a stored original, but the
	// answer must not invent an original).
	rows, err := db.Query(ctx, `
SELECT coalesce(corrects_event_id, event_id) AS target, sum(total_nanos)::bigint
FROM ledger_entries
WHERE event_id = ANY($1::uuid[]) OR corrects_event_id = ANY($1::uuid[])
GROUP BY 1
HAVING bool_or(corrects_event_id IS NULL)`, ids)
	if err != nil {
		return nil, fmt.Errorf("pgstore: current totals: %w", err)
	}
	var (
		id    pgtype.UUID
		total int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &total}, func() error {
		out[formatUUID(id.Bytes)] = total
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: current totals: %w", err)
	}
	return out, nil
}

// CurrentComponents is CurrentTotals per cost component: for each given
// event id whose original entry is in the ledger, the sum of cost_nanos by
// component name over the original and its corrections. Since every entry's
// components sum to its total, each event's figures sum to its
// CurrentTotals figure. A re-price writes its correction component by
// component from this, so the breakdown of the corrected cost stays an audit
// trail of where the difference came from.
func CurrentComponents(ctx context.Context, db DB, eventIDs []string) (map[string]map[string]int64, error) {
	ids, err := parseIDs(eventIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// The LEFT JOIN keeps an entry without components (a zero-token event),
	// so its event still appears, with no component rows. The ::json cast
	// makes the query indifferent to the column being json or jsonb (a
	// no-op on json, a cheap conversion of a few rows on jsonb).
	rows, err := db.Query(ctx, `
SELECT coalesce(e.corrects_event_id, e.event_id) AS target, c.name, coalesce(sum(c.cost_nanos), 0)::bigint,
       bool_or(e.corrects_event_id IS NULL)
FROM ledger_entries e
LEFT JOIN LATERAL json_to_recordset(e.components::json) AS c(name text, cost_nanos bigint) ON true
WHERE e.event_id = ANY($1::uuid[]) OR e.corrects_event_id = ANY($1::uuid[])
GROUP BY 1, 2`, ids)
	if err != nil {
		return nil, fmt.Errorf("pgstore: current components: %w", err)
	}
	var (
		id       pgtype.UUID
		name     pgtype.Text
		nanos    int64
		original bool
	)
	hasOriginal := map[string]bool{}
	_, err = pgx.ForEachRow(rows, []any{&id, &name, &nanos, &original}, func() error {
		key := formatUUID(id.Bytes)
		if original {
			hasOriginal[key] = true
		}
		m := out[key]
		if m == nil {
			m = map[string]int64{}
			out[key] = m
		}
		if name.Valid {
			m[name.String] += nanos
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: current components: %w", err)
	}
	// Grouped by component, one group may hold only corrections; the event
	// has an original if any of its groups does.
	for key := range out {
		if !hasOriginal[key] {
			delete(out, key)
		}
	}
	return out, nil
}

// parseIDs turns event ids into the UUIDs a uuid[] parameter takes.
func parseIDs(eventIDs []string) ([]pgtype.UUID, error) {
	ids := make([]pgtype.UUID, 0, len(eventIDs))
	for _, s := range eventIDs {
		u, err := parseUUID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
		}
		ids = append(ids, pgtype.UUID{Bytes: u, Valid: true})
	}
	return ids, nil
}
