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
    webhook_token_sealed  TEXT
);
-- The natural key. An offboarded tenant is a tombstone: the same customer may be onboarded again.
CREATE UNIQUE INDEX tenants_natural_key ON tenants (provider, external_id) WHERE state <> 'offboarded';
-- Lists are newest first (ids are ULIDs) and filtered by state and/or provider.
CREATE INDEX tenants_by_state ON tenants (state, id);
CREATE INDEX tenants_by_provider_state ON tenants (provider, state, id);
-- The partner looks its customers up by its own id, with or without the provider.
CREATE INDEX tenants_by_external_id ON tenants (external_id);
-- Operators search by email and tax id (GET /admin/tenants?q=).
CREATE INDEX tenants_by_email ON tenants (lower(json_extract(profile, '$.email')));
CREATE INDEX tenants_by_tax_id ON tenants (json_extract(profile, '$.company.tax_id'));
-- Stuck tenants: waiting in one state for too long.
CREATE INDEX tenants_by_state_age ON tenants (state, state_changed_at);

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

-- Partner API keys made through the admin API. Only a hash of the secret part is kept; `prefix` is the visible
-- part (gwk_xxxxxxxx) that names the key in lists and audit entries.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    secret_hash  BLOB NOT NULL,
    scopes       TEXT NOT NULL,              -- space-separated
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL
);

-- Idempotency-Key records: the first response to a key, replayed for 24 h. `status` is NULL while the first
-- request still runs. `tenant_id` lets offboarding erase the personal data kept in bodies.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,              -- the API key that sent it
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    tenant_id    TEXT,
    status       INTEGER,
    headers      TEXT,
    body         BLOB,
    created_at   REAL NOT NULL,
    completed_at REAL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_by_tenant ON idempotency_keys (tenant_id);

-- Gateway-wide secrets made at first start (the onboarding-link key), sealed like credentials.
CREATE TABLE gateway_secrets (
    name   TEXT PRIMARY KEY,
    sealed TEXT NOT NULL
);

-- Outbound events: one delivery per event, written in the same transaction as the event itself (the outbox).
-- Claiming moves next_attempt_at to the end of the lease, like jobs.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    event_seq        INTEGER NOT NULL REFERENCES tenant_events (seq) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    finished_at      REAL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, event_seq);
CREATE INDEX deliveries_by_status ON deliveries (status, finished_at);

-- Every attempt, with a short excerpt of the answer (never a whole body).
CREATE TABLE delivery_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at           REAL NOT NULL,
    status_code  INTEGER,
    duration_ms  REAL NOT NULL,
    error        TEXT,
    excerpt      TEXT
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);

-- The events endpoint's state: disabled after it answered 410 Gone, until an operator enables it again.
CREATE TABLE events_endpoint (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    disabled_at   REAL,
    disabled_why  TEXT
);
