-- Reads served from bytes (issue 23).
-- Each tenant's API rendering, made by the server when the tenant is written, in the same transaction, and the
-- version of the shape that made it. A read serves the bytes when their version is the server's; a row written before
-- this migration (NULL) or by another shape is rendered again from its columns when read, and the new rendering kept.
ALTER TABLE tenants ADD COLUMN api_json BLOB;
ALTER TABLE tenants ADD COLUMN api_version INTEGER;
-- Counts the gateway's writes of the rendering: every statement of the gateway that writes api_json adds one, so the
-- trigger below can tell a statement that wrote the rendering from one that did not, even when the bytes came out the
-- same (the rendering shows times to the second; the row keeps fractions).
ALTER TABLE tenants ADD COLUMN api_rev INTEGER NOT NULL DEFAULT 0;
-- A statement that changes what the API shows of a tenant without writing its rendering (the previous release, still
-- running beside this one on the same database during an upgrade, or SQL run by hand) drops the rendering, so the
-- next read renders the row again instead of serving what it was: an offboarding must never go on showing the
-- erased profile. The gateway's own writes set api_json and add one to api_rev in the same statement, and a statement
-- that leaves every shown column as it was keeps it.
CREATE TRIGGER tenants_rendering_outdated AFTER UPDATE ON tenants
WHEN NEW.api_rev IS OLD.api_rev AND NEW.api_json IS NOT NULL AND (
    NEW.state IS NOT OLD.state OR NEW.next_action IS NOT OLD.next_action OR NEW.provider_status IS NOT OLD.provider_status
    OR NEW.profile IS NOT OLD.profile OR NEW.metadata IS NOT OLD.metadata OR NEW.credentials_available IS NOT OLD.credentials_available
    OR NEW.last_error IS NOT OLD.last_error OR NEW.created_at IS NOT OLD.created_at OR NEW.updated_at IS NOT OLD.updated_at
    OR NEW.state_changed_at IS NOT OLD.state_changed_at OR NEW.provider_details IS NOT OLD.provider_details
    OR NEW.external_id IS NOT OLD.external_id OR NEW.provider IS NOT OLD.provider OR NEW.id IS NOT OLD.id)
BEGIN
    UPDATE tenants SET api_json = NULL, api_version = NULL WHERE id = NEW.id;
END;
