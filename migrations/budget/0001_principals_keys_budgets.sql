-- Budget configuration: who may spend, and how much. Unlike the ledger this is
-- configuration and may change; spend never lives here.

-- Teams, users, organizations, end users (LiteLLM "customers") and tags.
CREATE TABLE principals (
    kind        text        NOT NULL CHECK (kind IN ('team', 'user', 'org', 'end_user', 'tag')),
    id          text        NOT NULL CHECK (id <> ''),
    alias       text        NOT NULL DEFAULT '',
    org_id      text        NOT NULL DEFAULT '',
    metadata    jsonb       NOT NULL DEFAULT '{}',
    blocked     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);

-- Virtual keys are stored only as a SHA-256 hash; the clear key is shown once.
CREATE TABLE virtual_keys (
    key_id          text        PRIMARY KEY,
    key_hash        text        NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    key_alias_hint  text        NOT NULL DEFAULT '',
    key_alias       text        NOT NULL DEFAULT '',
    team_id         text        NOT NULL DEFAULT '',
    user_id         text        NOT NULL DEFAULT '',
    org_id          text        NOT NULL DEFAULT '',
    models          text[]      NOT NULL DEFAULT '{}',
    tags            text[]      NOT NULL DEFAULT '{}',
    metadata        jsonb       NOT NULL DEFAULT '{}',
    blocked         boolean     NOT NULL DEFAULT false,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX virtual_keys_team ON virtual_keys (team_id) WHERE team_id <> '';
CREATE INDEX virtual_keys_user ON virtual_keys (user_id) WHERE user_id <> '';

-- A budget on one scope. Limits are nano-USD; windows are [anchor + k*d, anchor + (k+1)*d).
CREATE TABLE budgets (
    budget_id        text        PRIMARY KEY,
    scope_kind       text        NOT NULL CHECK (scope_kind IN (
                                    'key', 'team', 'user', 'org', 'end_user', 'tag',
                                    'provider', 'deployment', 'key_model', 'end_user_model')),
    scope_id         text        NOT NULL CHECK (scope_id <> ''),
    model_group      text        NOT NULL DEFAULT '',
    limit_nanos      bigint      NOT NULL CHECK (limit_nanos >= 0),
    duration         text        NOT NULL DEFAULT '',
    calendar_aligned boolean     NOT NULL DEFAULT false,
    anchor           timestamptz NOT NULL,
    soft_thresholds  text[]      NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- One budget per scope and window length: a second one would be ambiguous.
    UNIQUE (scope_kind, scope_id, model_group, duration),
    CHECK ((scope_kind IN ('key_model', 'end_user_model')) = (model_group <> ''))
);
