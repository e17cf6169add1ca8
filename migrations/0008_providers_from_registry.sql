-- Which providers exist is the registry's to say (Sources/Providers), not a CHECK list: a provider is added without a
-- schema migration. SQLite cannot drop a constraint, and rebuilding `tenants` would cascade-delete its children, so
-- the constraint is taken out of the stored table definition, as SQLite documents for changes that leave the on-disk
-- format as it is (https://sqlite.org/lang_altertable.html#otheralter). The RESET reloads the schema at once.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'provider              TEXT NOT NULL CHECK (provider IN (''wrapp'', ''magnifinance'')),', 'provider              TEXT NOT NULL,')
 WHERE type = 'table' AND name = 'tenants';
PRAGMA writable_schema = RESET;
