-- The Redis epoch: which generation of Redis data the counters live in
-- (ledger/redisstore EpochKey) and when admission was last fenced after a
-- Redis data loss (services/budget/internal/fence; ADR 2, "Redis data loss").
--
-- One row. Its absence means Redis has never been initialised, so an empty
-- Redis on the first start is not a loss; its presence makes every later
-- empty Redis one. Instances recording a loss serialize on this row
-- (SELECT .. FOR UPDATE), so one loss is recorded once.
CREATE TABLE redis_epoch (
    id           boolean     PRIMARY KEY DEFAULT true CHECK (id),
    epoch        text        NOT NULL CHECK (epoch <> ''),
    started_at   timestamptz NOT NULL,
    -- Set when this epoch began after a data loss: admission stays fenced
    -- at least until fenced_until (the reservation TTL after the loss) and
    -- until the pipeline has delivered every cost to the ledger.
    lost_at      timestamptz,
    fenced_until timestamptz
);
