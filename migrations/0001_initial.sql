-- The gateway's first schema. Migrations are append-only: never edit a shipped file, add a new one.
-- Times are unix seconds (REAL). Secrets are never stored in plaintext: tokens as SHA-256 hashes, credentials
-- and webhook payloads sealed with AES-256-GCM (text "v1.<key id>.<base64>").

CREATE TABLE tenants (
    id                    TEXT PRIMARY KEY,
    provider              TEXT NOT NULL CHECK (provider IN ('wrapp', 'magnifinance')),
    external_id           TEXT NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('pending', 'action_required', 'active', 'suspended', 'failed', 'offboarded')),
    next_action           TEXT,              -- JSON
    provider_status       TEXT,
    profile               TEXT NOT NULL,     -- JSON
    metadata              TEXT NOT NULL,     -- JSON
    credentials_available INTEGER NOT NULL DEFAULT 0,
    last_error            TEXT,              -- JSON
    created_at            REAL NOT NULL,
    updated_at            REAL NOT NULL,
    state_changed_at      REAL NOT NULL,
    evidence_at           REAL,
    webhook_token_hash    BLOB UNIQUE,
    webhook_token_sealed  TEXT,
    UNIQUE (provider, external_id)
);
-- Lists are newest first (ids are ULIDs) and filtered by state and/or provider.
CREATE INDEX tenants_by_state ON tenants (state, id);
CREATE INDEX tenants_by_provider_state ON tenants (provider, state, id);
-- The partner looks its customers up by its own id, with or without the provider.
CREATE INDEX tenants_by_external_id ON tenants (external_id);

CREATE TABLE tenant_credentials (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    sealed     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    updated_at REAL NOT NULL
);

-- The history of every tenant; `seq` orders the global feed.
CREATE TABLE tenant_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type           TEXT NOT NULL,
    source         TEXT NOT NULL,
    previous_state TEXT,
    created_at     REAL NOT NULL,
    tenant         TEXT NOT NULL             -- JSON snapshot of the tenant after the change; never credentials
);
CREATE INDEX tenant_events_by_tenant ON tenant_events (tenant_id, seq);

-- Webhooks exactly as received (sealed), before anything is done with them.
CREATE TABLE webhook_inbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    payload_hash   BLOB NOT NULL,
    payload_sealed TEXT NOT NULL,
    received_at    REAL NOT NULL,
    processed_at   REAL,
    outcome        TEXT,
    UNIQUE (tenant_id, payload_hash)
);

-- Durable work. A tenant has at most one `submit`/`check` queued; `webhook` work points at an inbox entry.
-- Claiming moves run_at to the end of the lease, so work whose worker died simply becomes due again.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('submit', 'check', 'webhook')),
    inbox_id    INTEGER REFERENCES webhook_inbox (id) ON DELETE CASCADE,
    run_at      REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    last_error  TEXT,
    created_at  REAL NOT NULL
);
CREATE UNIQUE INDEX jobs_one_per_tenant ON jobs (tenant_id) WHERE kind IN ('submit', 'check');
CREATE INDEX jobs_due ON jobs (run_at);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        REAL NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    tenant_id TEXT,
    details   TEXT NOT NULL DEFAULT '{}'     -- JSON; never secrets
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
