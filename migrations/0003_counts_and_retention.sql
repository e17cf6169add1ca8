-- Counters for /metrics, and indexes for pruning (issue 8).
--
-- A scrape must cost the same at a thousand tenants as at a million: it reads these summary rows, kept exact by
-- triggers in the same transaction as the change they count, instead of a COUNT ... GROUP BY over growing tables.
-- Triggers use INSERT OR IGNORE (make the row) then UPDATE (count), not an UPSERT. Each table is seeded from the
-- rows that exist when this migration runs, in the same transaction, so no change falls between seed and trigger.

CREATE TABLE tenant_counts (
    provider TEXT NOT NULL,
    state    TEXT NOT NULL,
    n        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, state)
) WITHOUT ROWID;
INSERT INTO tenant_counts (provider, state, n) SELECT provider, state, COUNT(*) FROM tenants GROUP BY provider, state;

CREATE TRIGGER tenant_counts_after_insert AFTER INSERT ON tenants
BEGIN
    INSERT OR IGNORE INTO tenant_counts (provider, state, n) VALUES (NEW.provider, NEW.state, 0);
    UPDATE tenant_counts SET n = n + 1 WHERE provider = NEW.provider AND state = NEW.state;
END;

-- Only writes that name state (or provider) fire this; lease renewals and other column updates do not.
CREATE TRIGGER tenant_counts_after_update AFTER UPDATE OF provider, state ON tenants
WHEN OLD.state IS NOT NEW.state OR OLD.provider IS NOT NEW.provider
BEGIN
    UPDATE tenant_counts SET n = n - 1 WHERE provider = OLD.provider AND state = OLD.state;
    INSERT OR IGNORE INTO tenant_counts (provider, state, n) VALUES (NEW.provider, NEW.state, 0);
    UPDATE tenant_counts SET n = n + 1 WHERE provider = NEW.provider AND state = NEW.state;
END;

CREATE TRIGGER tenant_counts_after_delete AFTER DELETE ON tenants
BEGIN
    UPDATE tenant_counts SET n = n - 1 WHERE provider = OLD.provider AND state = OLD.state;
END;

CREATE TABLE job_counts (
    kind TEXT PRIMARY KEY,
    n    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO job_counts (kind, n) SELECT kind, COUNT(*) FROM jobs GROUP BY kind;

CREATE TRIGGER job_counts_after_insert AFTER INSERT ON jobs
BEGIN
    INSERT OR IGNORE INTO job_counts (kind, n) VALUES (NEW.kind, 0);
    UPDATE job_counts SET n = n + 1 WHERE kind = NEW.kind;
END;

-- Work is rescheduled by delete and insert today; should a job ever change kind in place, it still counts right.
CREATE TRIGGER job_counts_after_update AFTER UPDATE OF kind ON jobs
WHEN OLD.kind IS NOT NEW.kind
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE kind = OLD.kind;
    INSERT OR IGNORE INTO job_counts (kind, n) VALUES (NEW.kind, 0);
    UPDATE job_counts SET n = n + 1 WHERE kind = NEW.kind;
END;

-- Also fires for jobs removed by ON DELETE CASCADE (a deleted tenant or inbox entry).
CREATE TRIGGER job_counts_after_delete AFTER DELETE ON jobs
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE kind = OLD.kind;
END;

CREATE TABLE delivery_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO delivery_counts (status, n) SELECT status, COUNT(*) FROM deliveries GROUP BY status;

CREATE TRIGGER delivery_counts_after_insert AFTER INSERT ON deliveries
BEGIN
    INSERT OR IGNORE INTO delivery_counts (status, n) VALUES (NEW.status, 0);
    UPDATE delivery_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER delivery_counts_after_update AFTER UPDATE OF status ON deliveries
WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE status = OLD.status;
    INSERT OR IGNORE INTO delivery_counts (status, n) VALUES (NEW.status, 0);
    UPDATE delivery_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER delivery_counts_after_delete AFTER DELETE ON deliveries
BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE status = OLD.status;
END;

-- The age of the oldest pending delivery, read at each scrape: one step down this index.
CREATE INDEX deliveries_by_status_age ON deliveries (status, created_at);

-- Pruning (GATEWAY_RETENTION_DAYS) deletes in small batches by age; these let each batch find its rows, and the
-- last, empty batch find none, without scanning the table. Finished deliveries use deliveries_by_status.
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE INDEX webhook_inbox_processed ON webhook_inbox (processed_at) WHERE processed_at IS NOT NULL;
-- Deleting an inbox entry looks for the jobs that point at it (ON DELETE CASCADE): without this, a scan of all jobs
-- for every entry deleted.
CREATE INDEX jobs_by_inbox ON jobs (inbox_id) WHERE inbox_id IS NOT NULL;
