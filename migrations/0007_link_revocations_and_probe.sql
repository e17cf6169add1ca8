-- Onboarding links made at or before `revoked_at` are refused: a partner withdrew them (a link that leaked).
CREATE TABLE onboarding_link_revocations (
    tenant_id  TEXT PRIMARY KEY,
    revoked_at REAL NOT NULL
);
-- One row that /readyz rewrites after a write failed for want of disk: readiness returns when a write goes through.
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at REAL NOT NULL
);
