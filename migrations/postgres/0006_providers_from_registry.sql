-- Which providers exist is the registry's to say (Sources/Providers), not a CHECK list: a provider is added without a
-- schema migration.
ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_provider_check;
