-- The gateway's schema on PostgreSQL, for several replicas sharing one database (GATEWAY_DATABASE_URL). The same
-- tables as SQLite's migrations 0001 to 0004, in one file. Append-only like them: never edit a shipped file.
-- Times are unix seconds (double precision). Secrets are never stored in plaintext: tokens as SHA-256 hashes,
-- credentials and webhook payloads sealed with AES-256-GCM (text "v1.<key id>.<base64>").
-- JSON columns are text holding exactly what the gateway wrote.

CREATE TABLE tenants (
    id                    text PRIMARY KEY,
    provider              text NOT NULL CHECK (provider IN ('wrapp', 'magnifinance')),
    external_id           text NOT NULL,
    state                 text NOT NULL CHECK (state IN ('pending', 'action_required', 'active', 'suspended', 'failed', 'offboarded')),
    next_action           text,
    provider_status       text,
    profile               text NOT NULL,
    metadata              text NOT NULL,
    credentials_available boolean NOT NULL DEFAULT false,
    last_error            text,
    created_at            double precision NOT NULL,
    updated_at            double precision NOT NULL,
    state_changed_at      double precision NOT NULL,
    evidence_at           double precision,
    webhook_token_hash    bytea UNIQUE,
    webhook_token_sealed  text,
    -- One provider conversation per tenant at a time, across every replica: see SQLite's migration 0002.
    lease_owner           text,
    lease_until           double precision,
    lease_token           bigint NOT NULL DEFAULT 0,
    generation            bigint NOT NULL DEFAULT 0,
    submitted_at          double precision
);
-- The natural key: two replicas creating the same customer at once make one tenant (INSERT … ON CONFLICT).
CREATE UNIQUE INDEX tenants_natural_key ON tenants (provider, external_id) WHERE state <> 'offboarded';
CREATE INDEX tenants_by_state ON tenants (state, id);
CREATE INDEX tenants_by_provider_state ON tenants (provider, state, id);
CREATE INDEX tenants_by_external_id ON tenants (external_id);
CREATE INDEX tenants_by_email ON tenants (lower((profile::jsonb) ->> 'email'));
CREATE INDEX tenants_by_tax_id ON tenants (((profile::jsonb) -> 'company' ->> 'tax_id'));
CREATE INDEX tenants_by_state_age ON tenants (state, state_changed_at);
CREATE INDEX tenants_leased ON tenants (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE tenant_credentials (
    tenant_id  text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    sealed     text NOT NULL,
    key_id     text NOT NULL,
    updated_at double precision NOT NULL
);

-- `seq` orders the global feed. Writers take a transaction-level advisory lock before inserting events, so seq
-- order is commit order and a feed reader resuming after a seq never skips an event committed late.
CREATE TABLE tenant_events (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             text NOT NULL UNIQUE,
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type           text NOT NULL,
    source         text NOT NULL,
    previous_state text,
    created_at     double precision NOT NULL,
    tenant         text NOT NULL
);
CREATE INDEX tenant_events_by_tenant ON tenant_events (tenant_id, seq);

-- Webhook dedupe across replicas: the same payload for the same tenant is stored once.
CREATE TABLE webhook_inbox (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    payload_hash   bytea NOT NULL,
    payload_sealed text NOT NULL,
    received_at    double precision NOT NULL,
    processed_at   double precision,
    outcome        text,
    UNIQUE (tenant_id, payload_hash)
);
CREATE INDEX webhook_inbox_processed ON webhook_inbox (processed_at) WHERE processed_at IS NOT NULL;

CREATE TABLE jobs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('submit', 'check', 'webhook')),
    inbox_id    bigint REFERENCES webhook_inbox (id) ON DELETE CASCADE,
    run_at      double precision NOT NULL,
    attempts    bigint NOT NULL DEFAULT 0,
    lease_until double precision,
    last_error  text,
    created_at  double precision NOT NULL
);
CREATE UNIQUE INDEX jobs_one_per_tenant ON jobs (tenant_id) WHERE kind IN ('submit', 'check');
CREATE INDEX jobs_due ON jobs (run_at);
CREATE INDEX jobs_by_inbox ON jobs (inbox_id) WHERE inbox_id IS NOT NULL;
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        double precision NOT NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    tenant_id text,
    details   text NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_by_time ON audit_log (at);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    secret_hash  bytea NOT NULL,
    scopes       text NOT NULL,
    created_at   double precision NOT NULL,
    last_used_at double precision,
    revoked_at   double precision
);

-- Idempotency keys across replicas: the primary key lets one request per key run.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    tenant_id    text,
    status       bigint,
    headers      text,
    body         bytea,
    created_at   double precision NOT NULL,
    completed_at double precision,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_by_tenant ON idempotency_keys (tenant_id);

CREATE TABLE gateway_secrets (
    name   text PRIMARY KEY,
    sealed text NOT NULL
);

CREATE TABLE deliveries (
    id               text PRIMARY KEY,
    event_seq        bigint NOT NULL REFERENCES tenant_events (seq) ON DELETE CASCADE,
    tenant_id        text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         bigint NOT NULL DEFAULT 0,
    next_attempt_at  double precision,
    last_status_code bigint,
    last_error       text,
    created_at       double precision NOT NULL,
    finished_at      double precision
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, event_seq);
CREATE INDEX deliveries_by_status ON deliveries (status, finished_at);
CREATE INDEX deliveries_by_status_age ON deliveries (status, created_at);
CREATE INDEX deliveries_by_event ON deliveries (event_seq);

CREATE TABLE delivery_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  text NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at           double precision NOT NULL,
    status_code  bigint,
    duration_ms  double precision NOT NULL,
    error        text,
    excerpt      text
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);

-- Shared by every replica: one that sees 410 Gone disables the endpoint for all.
CREATE TABLE events_endpoint (
    id            bigint PRIMARY KEY CHECK (id = 1),
    disabled_at   double precision,
    disabled_why  text
);

-- Counters for /metrics, kept exact by triggers in the same transaction as the change they count (SQLite's 0003).
-- Each counter is spread over 16 rows (readers add them up): with one row, every replica's webhook intake and every
-- tenant change would wait in line for its lock until commit. A transaction always uses the slot of its own
-- connection (backend pid), never a random one per change: a transaction that took two rows of one counter in random
-- order would deadlock with another that took them the other way round.
CREATE TABLE tenant_counts (provider text NOT NULL, state text NOT NULL, slot int NOT NULL, n bigint NOT NULL DEFAULT 0, PRIMARY KEY (provider, state, slot));
CREATE TABLE job_counts (kind text NOT NULL, slot int NOT NULL, n bigint NOT NULL DEFAULT 0, PRIMARY KEY (kind, slot));
CREATE TABLE delivery_counts (status text NOT NULL, slot int NOT NULL, n bigint NOT NULL DEFAULT 0, PRIMARY KEY (status, slot));

CREATE FUNCTION count_tenants() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s int := pg_backend_pid() % 16;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO tenant_counts (provider, state, slot, n) VALUES (OLD.provider, OLD.state, s, -1)
        ON CONFLICT (provider, state, slot) DO UPDATE SET n = tenant_counts.n - 1;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO tenant_counts (provider, state, slot, n) VALUES (NEW.provider, NEW.state, s, 1)
        ON CONFLICT (provider, state, slot) DO UPDATE SET n = tenant_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tenant_counts_insert_delete AFTER INSERT OR DELETE ON tenants FOR EACH ROW EXECUTE FUNCTION count_tenants();
CREATE TRIGGER tenant_counts_update AFTER UPDATE OF provider, state ON tenants FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.provider IS DISTINCT FROM NEW.provider) EXECUTE FUNCTION count_tenants();

CREATE FUNCTION count_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s int := pg_backend_pid() % 16;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO job_counts (kind, slot, n) VALUES (OLD.kind, s, -1) ON CONFLICT (kind, slot) DO UPDATE SET n = job_counts.n - 1;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO job_counts (kind, slot, n) VALUES (NEW.kind, s, 1) ON CONFLICT (kind, slot) DO UPDATE SET n = job_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER job_counts_insert_delete AFTER INSERT OR DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION count_jobs();
CREATE TRIGGER job_counts_update AFTER UPDATE OF kind ON jobs FOR EACH ROW
    WHEN (OLD.kind IS DISTINCT FROM NEW.kind) EXECUTE FUNCTION count_jobs();

CREATE FUNCTION count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s int := pg_backend_pid() % 16;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO delivery_counts (status, slot, n) VALUES (OLD.status, s, -1)
        ON CONFLICT (status, slot) DO UPDATE SET n = delivery_counts.n - 1;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO delivery_counts (status, slot, n) VALUES (NEW.status, s, 1)
        ON CONFLICT (status, slot) DO UPDATE SET n = delivery_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER delivery_counts_insert_delete AFTER INSERT OR DELETE ON deliveries FOR EACH ROW EXECUTE FUNCTION count_deliveries();
CREATE TRIGGER delivery_counts_update AFTER UPDATE OF status ON deliveries FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION count_deliveries();
