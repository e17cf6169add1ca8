-- A tenant's queued webhooks (issue 23): a status check asked for one webhook finishes the others of the same tenant
-- that it answers as well (`queuedWebhooks`). Without this index, finding them scanned every job, once per webhook
-- processed, and a burst of webhooks is exactly when the jobs table is long. Only webhook jobs are in it.
-- Whether a payload brings credentials is decided at intake, where it is read anyway: such a webhook is always
-- processed on its own (its key is verified), and the others are found without opening a payload. Rows stored by an
-- earlier release have NULL here and are never finished with another's check.
ALTER TABLE webhook_inbox ADD COLUMN bears_credentials INTEGER;
CREATE INDEX jobs_webhooks_by_tenant ON jobs (tenant_id, id) WHERE kind = 'webhook';
