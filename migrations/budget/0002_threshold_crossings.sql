-- Soft thresholds crossed: one row per budget, window and threshold, and the
-- outbox of the BudgetThresholdCrossed event and webhook call it causes
-- (services/budget/internal/thresholds).
--
-- The primary key is the "once": every budget-service instance that sees a
-- threshold crossed inserts with ON CONFLICT DO NOTHING, and only the one
-- whose insert lands announces it. The window is named by its counter key
-- (ledger/scope.CounterKey: scope, duration, anchor and index), not by the
-- index alone, because an index only means something under one duration and
-- anchor: a budget changed from 1d to 7d starts counting windows from 0 again.
--
-- No foreign key to budgets: a crossing is history. Deleting a budget keeps
-- its record, and an event already detected is still published.
CREATE TABLE threshold_crossings (
    budget_id            text        NOT NULL CHECK (budget_id <> ''),
    window_key           text        NOT NULL CHECK (window_key <> ''),
    threshold            text        NOT NULL CHECK (threshold <> ''),
    -- Derived from the three above (a name-based UUID): the event's id, the
    -- JetStream message id and the webhook's Idempotency-Key.
    event_id             uuid        NOT NULL UNIQUE,
    scope_kind           text        NOT NULL,
    scope_id             text        NOT NULL,
    model_group          text        NOT NULL DEFAULT '',
    duration             text        NOT NULL, -- window.Duration text: '1d', '1mo', 'lifetime'
    window_index         bigint      NOT NULL,
    window_start         timestamptz NOT NULL,
    window_end           timestamptz NOT NULL,
    -- The figures when the crossing was first seen, in nano-USD.
    limit_nanos          bigint      NOT NULL,
    spent_nanos          bigint      NOT NULL,
    detected_at          timestamptz NOT NULL,
    -- Outbox. Each owed step has a due time: the earliest moment any
    -- instance may take it. Taking a step pushes it a lease ahead (so no
    -- other instance takes it meanwhile, and a crash leaves it due again
    -- when the lease ends); finishing it sets it NULL.
    publish_due_at       timestamptz DEFAULT now(), -- NULL once JetStream stored the event
    published_at         timestamptz,
    -- NULL when delivered, abandoned, or when no webhook was configured.
    webhook_due_at       timestamptz,
    webhook_delivered_at timestamptz,
    webhook_attempts     integer     NOT NULL DEFAULT 0,
    webhook_error        text        NOT NULL DEFAULT '',
    PRIMARY KEY (budget_id, window_key, threshold)
);

-- What is still to do, small however long the history grows.
CREATE INDEX threshold_crossings_publish_due ON threshold_crossings (publish_due_at) WHERE publish_due_at IS NOT NULL;
CREATE INDEX threshold_crossings_webhook_due ON threshold_crossings (webhook_due_at) WHERE webhook_due_at IS NOT NULL;

-- The watcher reads every budget with soft thresholds on each pass.
CREATE INDEX budgets_with_thresholds ON budgets (budget_id) WHERE cardinality(soft_thresholds) > 0;
