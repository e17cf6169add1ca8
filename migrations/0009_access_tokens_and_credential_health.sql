-- Credentials ready to use (issue 22).
-- What the provider reports about a ready customer (provider_details, JSON) and the last credential health check
-- (JSON: result, at, reason) of each tenant.
ALTER TABLE tenants ADD COLUMN provider_details TEXT;
ALTER TABLE tenants ADD COLUMN credential_check TEXT;
-- The access token the gateway holds for the tenant's credentials (a Wrapp JWT), sealed like the credentials beside
-- it, and when it expires. Cleared whenever the credentials are replaced; erased with them.
ALTER TABLE tenant_credentials ADD COLUMN token_sealed TEXT;
ALTER TABLE tenant_credentials ADD COLUMN token_expires_at REAL;
-- Active tenants that had no queued work (their provider's readiness could not lapse) now get their credentials
-- re-checked: a first check spread at random over the next day, never all at once.
INSERT INTO jobs (tenant_id, kind, run_at, attempts, created_at)
SELECT t.id, 'check', (julianday('now') - 2440587.5) * 86400.0 + abs(random() % 86400), 0, (julianday('now') - 2440587.5) * 86400.0
FROM tenants t
WHERE t.state = 'active' AND t.credentials_available = 1
  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = t.id AND j.kind IN ('submit', 'check'));
