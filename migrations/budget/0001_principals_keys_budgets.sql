-- Budget configuration: who may spend, and how much. Unlike the ledger this is
-- configuration and may change; spend never lives here.
--
-- References between rows are real foreign keys, so the invariants hold whatever
-- code writes the tables:
--   * a key's team and org, and a principal's org, must exist (deleting one that
--     is still referenced fails: nothing is left pointing at a missing team);
--   * a budget's owner (its key, or its team/user/org/end user/tag principal)
--     must exist, and deleting the owner deletes its budgets.
-- Optional references are '' in the *_id columns (what the API speaks); the
-- generated *_ref columns turn '' into NULL, which a foreign key skips, and the
-- generated *_ref_kind columns hold the constant kind the composite key to
-- principals (kind, id) needs.

-- Teams, users, organizations, end users (LiteLLM "customers") and tags.
CREATE TABLE principals (
    kind         text        NOT NULL CHECK (kind IN ('team', 'user', 'org', 'end_user', 'tag')),
    id           text        NOT NULL CHECK (id <> ''),
    alias        text        NOT NULL DEFAULT '',
    org_id       text        NOT NULL DEFAULT '',
    metadata     jsonb       NOT NULL DEFAULT '{}',
    blocked      boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    org_ref_kind text GENERATED ALWAYS AS (CASE WHEN org_id <> '' THEN 'org' END) STORED,
    org_ref      text GENERATED ALWAYS AS (NULLIF(org_id, '')) STORED,
    PRIMARY KEY (kind, id),
    -- Only teams and users belong to an organization.
    CHECK (org_id = '' OR kind IN ('team', 'user')),
    CONSTRAINT principals_org_fkey FOREIGN KEY (org_ref_kind, org_ref) REFERENCES principals (kind, id)
);

CREATE INDEX principals_org ON principals (org_ref) WHERE org_ref IS NOT NULL;

-- Virtual keys are stored only as a SHA-256 hash; the clear key is shown once.
CREATE TABLE virtual_keys (
    key_id          text        PRIMARY KEY CHECK (key_id <> ''),
    key_hash        text        NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
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
    updated_at      timestamptz NOT NULL DEFAULT now(),
    team_ref_kind   text GENERATED ALWAYS AS (CASE WHEN team_id <> '' THEN 'team' END) STORED,
    team_ref        text GENERATED ALWAYS AS (NULLIF(team_id, '')) STORED,
    user_ref_kind   text GENERATED ALWAYS AS (CASE WHEN user_id <> '' THEN 'user' END) STORED,
    user_ref        text GENERATED ALWAYS AS (NULLIF(user_id, '')) STORED,
    org_ref_kind    text GENERATED ALWAYS AS (CASE WHEN org_id <> '' THEN 'org' END) STORED,
    org_ref         text GENERATED ALWAYS AS (NULLIF(org_id, '')) STORED,
    CONSTRAINT virtual_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT virtual_keys_team_fkey FOREIGN KEY (team_ref_kind, team_ref) REFERENCES principals (kind, id),
    CONSTRAINT virtual_keys_user_fkey FOREIGN KEY (user_ref_kind, user_ref) REFERENCES principals (kind, id),
    CONSTRAINT virtual_keys_org_fkey FOREIGN KEY (org_ref_kind, org_ref) REFERENCES principals (kind, id)
);

-- LiteLLM enforces unique key aliases; so do we (an alias is how operators find a key).
CREATE UNIQUE INDEX virtual_keys_alias_key ON virtual_keys (key_alias) WHERE key_alias <> '';
-- (ref, key_id): ListKeys by team or user pages in key_id order, and the
-- foreign-key check on deleting a principal finds referencing keys.
CREATE INDEX virtual_keys_team ON virtual_keys (team_ref, key_id) WHERE team_ref IS NOT NULL;
CREATE INDEX virtual_keys_user ON virtual_keys (user_ref, key_id) WHERE user_ref IS NOT NULL;
CREATE INDEX virtual_keys_org ON virtual_keys (org_ref) WHERE org_ref IS NOT NULL;

-- A budget on one scope. Limits are nano-USD; windows are [anchor + k*d, anchor + (k+1)*d).
-- duration is the canonical window.Duration text ('1d', never '24h'), '' for a
-- lifetime budget; the anchor is the creation second for rolling windows and
-- the Unix epoch for calendar-aligned and lifetime ones (their windows ignore it).
CREATE TABLE budgets (
    budget_id        text        PRIMARY KEY CHECK (budget_id <> ''),
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
    -- The owner whose deletion deletes this budget: a key (key, key_model) or a
    -- principal (end_user_model budgets belong to the end user). Provider and
    -- deployment budgets have no owner row: those come from the gateway config.
    owner_key        text GENERATED ALWAYS AS (
                         CASE WHEN scope_kind IN ('key', 'key_model') THEN scope_id END) STORED,
    owner_kind       text GENERATED ALWAYS AS (
                         CASE scope_kind
                             WHEN 'team' THEN 'team' WHEN 'user' THEN 'user' WHEN 'org' THEN 'org'
                             WHEN 'end_user' THEN 'end_user' WHEN 'tag' THEN 'tag'
                             WHEN 'end_user_model' THEN 'end_user' END) STORED,
    owner_id         text GENERATED ALWAYS AS (
                         CASE WHEN scope_kind IN ('team', 'user', 'org', 'end_user', 'tag', 'end_user_model')
                              THEN scope_id END) STORED,
    -- One budget per scope and window length: a second one would be ambiguous.
    CONSTRAINT budgets_scope_duration_key UNIQUE (scope_kind, scope_id, model_group, duration),
    CHECK ((scope_kind IN ('key_model', 'end_user_model')) = (model_group <> '')),
    -- A lifetime budget has one spelling: not calendar aligned.
    CHECK (duration <> '' OR NOT calendar_aligned),
    CONSTRAINT budgets_owner_key_fkey FOREIGN KEY (owner_key)
        REFERENCES virtual_keys (key_id) ON DELETE CASCADE,
    CONSTRAINT budgets_owner_principal_fkey FOREIGN KEY (owner_kind, owner_id)
        REFERENCES principals (kind, id) ON DELETE CASCADE
);

CREATE INDEX budgets_owner_key ON budgets (owner_key) WHERE owner_key IS NOT NULL;
CREATE INDEX budgets_owner_principal ON budgets (owner_kind, owner_id) WHERE owner_id IS NOT NULL;
