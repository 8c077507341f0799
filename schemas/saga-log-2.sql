-- The usher saga log, the migration from schema version 1 to 2 (docs/architecture.md
-- and docs/api.md): the status `terminated`, and sagas found by correlation id.
--
-- The build embeds this file in usher_store, which applies it after
-- saga-log.sql, in the same IMMEDIATE transaction as the PRAGMA user_version
-- that records it: a crash halfway leaves version 1 as it was. Like version 1,
-- this file is never edited in place once released.

-- `terminated` (an operator ended the saga; nothing more is sent) is a status
-- the CHECK of version 1 refuses. SQLite cannot change a CHECK constraint, so
-- the table is made again with the wider one and every row copied over; its
-- indexes go with the old table and are made again below.
CREATE TABLE sagas_v2 (
  id              TEXT    NOT NULL PRIMARY KEY,
  workflow        TEXT    NOT NULL,
  version         INTEGER NOT NULL,
  definition_hash TEXT    NOT NULL,
  status          TEXT    NOT NULL
                  CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'stuck', 'terminated')),
  current_step    TEXT,              -- NULL when none
  idempotency_key TEXT    UNIQUE,    -- NULL when none; NULLs are not unique-checked
  correlation_id  TEXT,              -- NULL when none
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  deadline        INTEGER,           -- NULL when the saga has no deadline
  last_error      TEXT,
  last_seq        INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO sagas_v2 (id, workflow, version, definition_hash, status, current_step, idempotency_key,
                      correlation_id, created_at, updated_at, deadline, last_error, last_seq)
  SELECT id, workflow, version, definition_hash, status, current_step, idempotency_key,
         correlation_id, created_at, updated_at, deadline, last_error, last_seq
    FROM sagas;

DROP TABLE sagas;
ALTER TABLE sagas_v2 RENAME TO sagas;

-- The indexes of version 1, as they were.
CREATE INDEX sagas_by_status   ON sagas (status, id);
CREATE INDEX sagas_by_workflow ON sagas (workflow, id);
-- A terminated saga is finished: like completed and compensated, it stays out
-- of recovery's partial index (queries repeat this exact WHERE clause).
CREATE INDEX sagas_unfinished ON sagas (id)
  WHERE status IN ('running', 'compensating', 'stuck');

-- Listing by correlation id (GET /v1/sagas?correlation_id=, `usher ls
-- --correlation`), newest first; sagas without one are left out of the index.
CREATE INDEX sagas_by_correlation ON sagas (correlation_id, id)
  WHERE correlation_id IS NOT NULL;
