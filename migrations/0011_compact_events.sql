-- Compact events (issue 23).
-- An event after a tenant's first may keep only the fields of its snapshot that differ from that first event's
-- (`base_seq`, a full snapshot); the event's tenant is the base with those fields put over it. Events written before
-- this migration, and every tenant's first, keep the whole snapshot (base_seq NULL).
ALTER TABLE tenant_events ADD COLUMN base_seq INTEGER;
