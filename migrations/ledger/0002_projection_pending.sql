-- Entries committed to the ledger whose Redis projection has not happened yet
-- (Redis down or failing): a work queue, unlike ledger_entries. A row is
-- written when an entry's projection cannot happen — in the entries' own
-- transaction while the ledger knows Redis is down, or right after a failed
-- projection and before the event is acked — and deleted by whichever ledger
-- instance re-projects it once Redis answers (ADR 2, "Redis down"). Being in
-- Postgres, the backlog survives a ledger crash or restart and is seen by
-- every instance; claims use FOR UPDATE SKIP LOCKED so two instances drain
-- different rows (a row projected twice anyway would only be skipped by its
-- event markers, never counted twice).
CREATE TABLE ledger_projection_pending (
    -- No foreign key to ledger_entries: the row is always written with or
    -- after its entry, and a reference would make TRUNCATE ledger_entries
    -- fail on the reference instead of on the append-only trigger.
    event_id    uuid        PRIMARY KEY,
    -- The COSTS stream sequence of the delivery whose projection failed: a
    -- failed attempt may still have written markers with it as their score
    -- (a lost reply), so the marker prune floor stays below the smallest
    -- pending sequence until the row is drained.
    stream_seq  bigint      NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Drained in stream order, and its minimum is the prune floor's bound.
CREATE INDEX ledger_projection_pending_seq ON ledger_projection_pending (stream_seq);

-- Re-projection after a Redis outage reads the table above, not the ledger
-- by stream sequence, so nothing queries ledger_entries by stream_seq any
-- more: its btree was pure insert cost (measured ~1.5–2 µs a row, some 8% of
-- Postgres's time per ingested entry). The column stays: it records where
-- each entry sat in the COSTS stream.
DROP INDEX ledger_entries_stream_seq;
