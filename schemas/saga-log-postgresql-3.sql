-- The usher saga log on PostgreSQL: the migration from schema version 2 to 3
-- (docs/architecture.md and docs/api.md), as schemas/saga-log-2.sql is for SQLite: the
-- status `terminated`, and sagas found by correlation id. Like the earlier
-- versions, this file is never edited once released.

-- `terminated` (an operator ended the saga; nothing more is sent) is a
-- finished status: the partial indexes of unfinished sagas (sagas_unfinished,
-- sagas_by_owner) leave it out as they are. Every row already satisfies the
-- wider CHECK; PostgreSQL checks them once, in this transaction.
ALTER TABLE sagas DROP CONSTRAINT sagas_status_check;
ALTER TABLE sagas ADD CONSTRAINT sagas_status_check
  CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'stuck', 'terminated'));

-- Listing by correlation id (GET /v1/sagas?correlation_id=, `usher ls
-- --correlation`), newest first; sagas without one are left out of the index.
CREATE INDEX sagas_by_correlation ON sagas (correlation_id, id) WHERE correlation_id IS NOT NULL;
