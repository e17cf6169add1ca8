-- A tenant's queued webhooks (issue 23): a status check asked for one webhook finishes the others of the same tenant
-- that it answers as well (`queuedWebhooks`). Without this index, finding them scanned every job, once per webhook
-- processed, and a burst of webhooks is exactly when the jobs table is long. Only webhook jobs are in it.
CREATE INDEX jobs_webhooks_by_tenant ON jobs (tenant_id, id) WHERE kind = 'webhook';
