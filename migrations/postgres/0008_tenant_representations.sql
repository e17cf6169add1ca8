-- Reads served from bytes (issue 23).
-- Each tenant's API rendering, made by the server when the tenant is written, in the same transaction, and the
-- version of the shape that made it. A read serves the bytes when their version is the server's; a row written before
-- this migration (NULL) or by another shape is rendered again from its columns when read, and the new rendering kept.
ALTER TABLE tenants ADD COLUMN api_json BYTEA;
ALTER TABLE tenants ADD COLUMN api_version INTEGER;
-- Counts the gateway's writes of the rendering: every statement of the gateway that writes api_json adds one, so the
-- trigger below can tell a statement that wrote the rendering from one that did not, even when the bytes came out the
-- same (the rendering shows times to the second; the row keeps fractions).
ALTER TABLE tenants ADD COLUMN api_rev bigint NOT NULL DEFAULT 0;
-- A statement that changes what the API shows of a tenant without writing its rendering (the previous release, still
-- running beside this one during a rolling upgrade, or SQL run by hand) drops the rendering, so the next read renders
-- the row again instead of serving what it was: an offboarding must never go on showing the erased profile. The
-- gateway's own writes set api_json and add one to api_rev in the same statement, and a statement that leaves every
-- shown column as it was keeps it.
CREATE FUNCTION tenants_rendering_outdated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.api_rev IS NOT DISTINCT FROM OLD.api_rev AND NEW.api_json IS NOT NULL AND (
        NEW.id, NEW.provider, NEW.external_id, NEW.state, NEW.next_action, NEW.provider_status, NEW.profile, NEW.metadata,
        NEW.credentials_available, NEW.last_error, NEW.created_at, NEW.updated_at, NEW.state_changed_at, NEW.provider_details
    ) IS DISTINCT FROM (
        OLD.id, OLD.provider, OLD.external_id, OLD.state, OLD.next_action, OLD.provider_status, OLD.profile, OLD.metadata,
        OLD.credentials_available, OLD.last_error, OLD.created_at, OLD.updated_at, OLD.state_changed_at, OLD.provider_details
    ) THEN
        NEW.api_json := NULL;
        NEW.api_version := NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER tenants_rendering_outdated BEFORE UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION tenants_rendering_outdated();
