// Package pgstore is the Postgres entry store: the ledger's append-only table
// of priced events (migrations/ledger/0001_entries.sql), shared by the ledger
// service (append, spend queries, replay, verify) and the budget service
// (reseeding a missing counter).
//
// The table is the truth; every Redis counter is a projection of it. This
// package keeps the SQL that reads and writes it in one place so that what
// "the ledger's sum for a scope" means is written once (see scopePredicate).
//
// # Appending
//
// EntryFromCost turns a CostComputed event into an Entry and rejects an event
// that cannot be a ledger row (the caller dead-letters it, with the error as
// the reason). Insert appends a batch in one transaction, with binary COPY
// when the batch is all new events (the usual case, and the cheapest for
// Postgres) and with INSERT ... ON CONFLICT DO NOTHING when it is not; an
// event id already in the table is skipped, not an error, because duplicate
// delivery is normal.
// For every entry it was given, new or duplicate, Insert returns the id of the
// transaction that inserted the stored row (xid8) and the stored total: the
// projection needs both to apply each entry exactly once (ADR 2). The ledger
// service's ingest uses ConvertCost instead, leaving the entry's validation to
// Insert so that it runs once per entry.
//
// # Pending projections
//
// The table ledger_projection_pending (migration 0002) is the backlog of
// entries committed but not yet projected into Redis, kept in Postgres so a
// ledger restart or another instance still finds it. MarkPending records
// entries after a failed projection; InsertPending is Insert plus the marks
// in the same transaction (Redis known down); DrainPending claims the oldest
// rows with FOR UPDATE SKIP LOCKED, hands them to the projection, and deletes
// the ones it projected; PendingStats gives the count and the smallest
// sequence (the marker prune floor's bound). Unlike ledger_entries this table
// is a work queue: its rows are deleted.
//
// # Reading
//
// Sum is the ledger's figure for one scope over [start, end), together with
// the Postgres snapshot it was read in; a reseeded counter records that
// snapshot, and TxVisible decides whether a later projection of an entry is
// already in the seed. SpendByModelGroup, SpendByDay and ListEntries serve the
// spend endpoints.
//
// # Append-only
//
// Nothing here updates or deletes a row, and triggers in the migration refuse
// UPDATE, DELETE and TRUNCATE. A correction is a new entry whose
// CorrectsEventID names the entry it adjusts and whose amounts are the
// difference; every sum includes corrections.
//
// All money is int64 nano-USD; no float64 holds an amount anywhere here.
package pgstore
