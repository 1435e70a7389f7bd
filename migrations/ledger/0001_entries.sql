-- The ledger: one row per priced event, appended and never changed.
--
-- Spend is a projection of these rows. A correction (a re-price) is a new row
-- whose corrects_event_id names the row it adjusts and whose amounts are the
-- difference, so the sum over a scope is always the corrected spend.
--
-- Growth: not partitioned yet. The unique event_id is enforced by the primary
-- key, and a partitioned table can only enforce uniqueness on keys that contain
-- the partition column. When the table nears ~100M rows the plan is monthly
-- range partitions on occurred_at with primary key (event_id, occurred_at):
-- event ids are UUIDv7, so the ledger derives occurred_at's month from the id
-- itself and a duplicate always lands in the same partition. Until then one
-- table keeps inserts and the idempotency check simple.
CREATE TABLE ledger_entries (
    event_id              uuid        PRIMARY KEY,
    corrects_event_id     uuid,
    occurred_at           timestamptz NOT NULL,
    recorded_at           timestamptz NOT NULL DEFAULT now(),

    key_id                text        NOT NULL,
    team_id               text        NOT NULL DEFAULT '',
    user_id               text        NOT NULL DEFAULT '',
    org_id                text        NOT NULL DEFAULT '',
    end_user_id           text        NOT NULL DEFAULT '',
    tags                  text[]      NOT NULL DEFAULT '{}',

    model_group           text        NOT NULL,
    deployment_id         text        NOT NULL,
    provider              text        NOT NULL,
    backend_model         text        NOT NULL,

    input_tokens          bigint      NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens         bigint      NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_read_tokens     bigint      NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cache_creation_tokens bigint      NOT NULL DEFAULT 0 CHECK (cache_creation_tokens >= 0),
    cache_creation_1h_tokens bigint   NOT NULL DEFAULT 0 CHECK (cache_creation_1h_tokens >= 0),
    reasoning_tokens      bigint      NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),

    -- Amounts in nano-USD. Corrections may be negative; original entries never are.
    total_nanos           bigint      NOT NULL,
    -- Per-component breakdown: name, tokens, unit price, rule, exact cost, nanos.
    -- json, not jsonb: it is written on every row and read inside only by
    -- re-pricing (json_to_recordset, on a few rows at a time), and json
    -- stores the text as is where jsonb parses it into its binary form on
    -- every insert (measured ~1.5 µs a row, some 7% of the INSERT).
    components            json        NOT NULL DEFAULT '[]',
    priced                boolean     NOT NULL,
    unknown_components    text[]      NOT NULL DEFAULT '{}',
    catalog_version       text        NOT NULL,
    reservation_id        text        NOT NULL DEFAULT '',

    -- Where the event sat in the COSTS stream, and the transaction that
    -- inserted the row: together they let the Redis projection apply each
    -- entry exactly once and skip rows a reseed already counted (ADR 2).
    stream_seq            bigint      NOT NULL DEFAULT 0,
    tx_id                 xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- The budget counters the cost lands on, as admission computed them
    -- (scope.CounterKey form); re-projection applies the entry to these.
    counter_keys          text[]      NOT NULL DEFAULT '{}',

    CHECK (corrects_event_id IS NOT NULL OR total_nanos >= 0),
    CHECK (corrects_event_id IS DISTINCT FROM event_id),
    -- Unpriced means some component has no price, named here; priced means none.
    CHECK (priced = (cardinality(unknown_components) = 0))
);

-- Indexes are the insert path's main cost (each secondary btree adds about half
-- of what the heap row and primary key cost together), and the ledger is
-- written far more often than it is summed (a sum is a counter reseed, verify,
-- or a spend report), so only what a query cannot do without is indexed.
--
-- Scopes with many distinct ids get a (scope, occurred_at) index, so a sum over
-- one window reads only that scope's rows. The partial ones skip the '' of an
-- absent id; queries must repeat that predicate (pgstore does) or a generic
-- plan for "team_id = $1" cannot use them.
CREATE INDEX ledger_entries_key_time      ON ledger_entries (key_id, occurred_at);
CREATE INDEX ledger_entries_team_time     ON ledger_entries (team_id, occurred_at) WHERE team_id <> '';
CREATE INDEX ledger_entries_user_time     ON ledger_entries (user_id, occurred_at) WHERE user_id <> '';
CREATE INDEX ledger_entries_org_time      ON ledger_entries (org_id, occurred_at) WHERE org_id <> '';
CREATE INDEX ledger_entries_end_user_time ON ledger_entries (end_user_id, occurred_at) WHERE end_user_id <> '';
-- Tags: GIN answers "tags @> ARRAY[id]". Partial, because GIN indexes an
-- empty array too (as an "empty item" entry, so that tags = '{}' could use
-- it), which would tax every untagged insert for rows no tag query can
-- match; the tag predicate repeats "tags <> '{}'" so plans can use it.
CREATE INDEX ledger_entries_tags          ON ledger_entries USING gin (tags) WHERE tags <> '{}';
-- Providers and deployments are few, so each holds a large share of a window's
-- rows and a per-scope btree would save little over reading the window. A BRIN
-- index finds a window's rows for a fraction of a btree's insert cost, because
-- rows are appended roughly in occurred_at order (events arrive seconds after
-- admission; corrections and replays are the rare exceptions, which only widen
-- a few block ranges).
CREATE INDEX ledger_entries_time_brin     ON ledger_entries USING brin (occurred_at);
-- Finds an entry's corrections (re-pricing sums an event with them). Partial:
-- original entries, nearly all rows, never enter it, so it costs them nothing.
CREATE INDEX ledger_entries_corrects      ON ledger_entries (corrects_event_id) WHERE corrects_event_id IS NOT NULL;
-- Re-projection after a Redis outage reads entries past a COSTS stream
-- sequence, in stream order.
CREATE INDEX ledger_entries_stream_seq    ON ledger_entries (stream_seq);

-- Append-only is enforced by the database, not by convention.
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only: % is not allowed; write a correction entry instead', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ledger_entries_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

CREATE TRIGGER ledger_entries_no_truncate
    BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();
