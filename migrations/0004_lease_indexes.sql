-- Leases held at start (issue 9). A restart clears the leases a dead process left (`recoverFromEarlierRun`): without
-- these, that is a scan of every tenant and every job, 16.8 s before /readyz at a million tenants. Few rows hold a
-- lease at any time, so the partial indexes stay tiny.
CREATE INDEX tenants_leased ON tenants (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE lease_until IS NOT NULL;
