-- Credentials ready to use (issue 22); see the SQLite migration 0009 for what each column holds.
ALTER TABLE tenants ADD COLUMN provider_details text;
ALTER TABLE tenants ADD COLUMN credential_check text;
ALTER TABLE tenant_credentials ADD COLUMN token_sealed text;
ALTER TABLE tenant_credentials ADD COLUMN token_expires_at double precision;
-- Active tenants with no queued work get a first credential check spread over the next day.
INSERT INTO jobs (tenant_id, kind, run_at, attempts, created_at)
SELECT t.id, 'check', extract(epoch FROM now()) + random() * 86400, 0, extract(epoch FROM now())
FROM tenants t
WHERE t.state = 'active' AND t.credentials_available
  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = t.id AND j.kind IN ('submit', 'check'));
