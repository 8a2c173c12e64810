-- create_schema_migrations --
-- The specification's schema_migrations table, created before anything else.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    migration_hash TEXT NOT NULL
)

-- lock_migrations --
-- One migrator at a time, across processes and hosts (session-level advisory lock).
SELECT pg_advisory_lock(hashtext('enchant_worker.migrate'))

-- unlock_migrations --
-- Release the migrator lock.
SELECT pg_advisory_unlock(hashtext('enchant_worker.migrate'))

-- applied_migrations --
-- What has been applied, with the hash of each file as it was then.
SELECT version, migration_hash FROM schema_migrations ORDER BY version

-- record_migration --
-- Record one applied file.
INSERT INTO schema_migrations (version, migration_hash) VALUES (%(version)s, %(hash)s)

-- schema_migrations_exists --
-- Has this database been migrated at all?
SELECT to_regclass('schema_migrations') IS NOT NULL AS present

-- embedded_database_exists --
-- Does the embedded server have the project's database yet?
SELECT 1 FROM pg_database WHERE datname = 'enchant'

-- create_embedded_database --
-- The project's database on the embedded server.
CREATE DATABASE enchant

-- ping --
-- Is the connection alive?
SELECT 1
