-- Which providers exist is the registry's to say (Sources/Providers), not a CHECK list: a provider is added without a
-- schema migration. SQLite cannot drop a constraint, and rebuilding `tenants` would cascade-delete its children, so
-- the constraint is taken out of the stored table definition, as SQLite documents for changes that leave the on-disk
-- format as it is (https://sqlite.org/lang_altertable.html#otheralter). The RESET reloads the schema at once.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'provider              TEXT NOT NULL CHECK (provider IN (''wrapp'', ''magnifinance'')),', 'provider              TEXT NOT NULL,')
 WHERE type = 'table' AND name = 'tenants';
PRAGMA writable_schema = RESET;
-- If the text did not match, the constraint is still there: fail, and the whole migration is rolled back.
CREATE TEMP TABLE migration_0008_guard (constraint_gone INTEGER NOT NULL CHECK (constraint_gone = 1));
INSERT INTO migration_0008_guard SELECT instr(sql, 'CHECK (provider IN') = 0 FROM sqlite_schema WHERE type = 'table' AND name = 'tenants';
DROP TABLE migration_0008_guard;
-- A real schema change moves the schema cookie, so every other connection (the pool's readers, another process)
-- reloads the schema too.
CREATE TABLE migration_0008_reload (x INTEGER);
DROP TABLE migration_0008_reload;
