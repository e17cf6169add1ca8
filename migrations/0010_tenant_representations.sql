-- Reads served from bytes (issue 23).
-- Each tenant's API rendering, made by the server when the tenant is written, in the same transaction, and the
-- version of the shape that made it. A read serves the bytes when their version is the server's; a row written before
-- this migration (NULL) or by another shape is rendered again from its columns when read, and the new rendering kept.
ALTER TABLE tenants ADD COLUMN api_json BLOB;
ALTER TABLE tenants ADD COLUMN api_version INTEGER;
