-- Onboarding links made at or before `revoked_at` are refused: a partner withdrew them (a link that leaked).
CREATE TABLE onboarding_link_revocations (
    tenant_id  text PRIMARY KEY,
    revoked_at double precision NOT NULL
);
