-- One provider conversation per tenant at a time (issue 8). Every provider call for a tenant runs under its lease,
-- and every write made from a provider's answer is fenced: it commits only if the lease it was made under is still
-- the current one and nothing voided the conversation meanwhile.
--
-- lease_token  the fencing token: bumped by every acquisition, so a holder whose lease ran out and was taken over
--              can no longer commit.
-- generation   bumped by writes that void conversations in flight (offboarding, a profile correction, a retry
--              forced past a busy lease): whatever a provider answered about the tenant before is not kept.
-- submitted_at the time a submission (AddPartner, external_login) was about to be made whose outcome is not known
--              yet; recorded before the call, cleared by a definite answer. Set means "ask before calling again".
ALTER TABLE tenants ADD COLUMN lease_owner TEXT;
ALTER TABLE tenants ADD COLUMN lease_until REAL;
ALTER TABLE tenants ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN submitted_at REAL;
