-- The usher saga log, schema version 1 (docs/architecture.md).
--
-- This file is the single source of truth: the build embeds it in usher_store,
-- which applies it to an empty database as the migration from version 0 to 1
-- and then sets PRAGMA user_version = 1 in the same transaction. Later versions
-- are added as further migration steps; this file is never edited in place once
-- released, because databases created from it must stay readable. Version 2
-- (the status `terminated`, an index of correlation ids) is saga-log-2.sql;
-- version 3 (publication positions) is saga-log-3.sql.
--
-- Times are microseconds since the Unix epoch. Saga ids are UUIDv7 strings, so
-- ordering by id is ordering by start time.

-- The log proper: append-only, one row per event, dense seq per saga.
--
-- A rowid table on purpose: rows are stored in insertion order, so a group
-- commit appends its events to the last pages of the table instead of
-- dirtying one leaf page per saga in flight (as a table clustered by
-- (saga_id, seq) does: with 256 sagas in flight that was ~150 page writes per
-- commit). The primary key is then a separate, narrow index, whose in-flight
-- range is a few pages.
CREATE TABLE saga_events (
  saga_id       TEXT    NOT NULL,
  seq           INTEGER NOT NULL CHECK (seq > 0),
  type          TEXT    NOT NULL,
  step          TEXT,              -- NULL when the event is not about one step
  data          TEXT    NOT NULL,  -- JSON object
  occurred_at   INTEGER NOT NULL,
  causation_seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (saga_id, seq)
);

-- One row per saga, a projection of its events written in the same transaction
-- as them; `usher` can rebuild it from saga_events.
CREATE TABLE sagas (
  id              TEXT    NOT NULL PRIMARY KEY,
  workflow        TEXT    NOT NULL,
  version         INTEGER NOT NULL,
  definition_hash TEXT    NOT NULL,
  status          TEXT    NOT NULL
                  CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'stuck')),
  current_step    TEXT,              -- NULL when none
  idempotency_key TEXT    UNIQUE,    -- NULL when none; NULLs are not unique-checked
  correlation_id  TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  deadline        INTEGER,           -- NULL when the saga has no deadline
  last_error      TEXT,
  last_seq        INTEGER NOT NULL
) WITHOUT ROWID;

-- Listing newest first, filtered by status or by workflow (sagas are WITHOUT
-- ROWID, so every index already ends in id; naming it makes the order explicit).
CREATE INDEX sagas_by_status   ON sagas (status, id);
CREATE INDEX sagas_by_workflow ON sagas (workflow, id);

-- Recovery reads only unfinished sagas; a partial index keeps that proportional
-- to the number of unfinished sagas, not to the size of the history. Queries
-- must repeat this exact WHERE clause for SQLite to use it.
CREATE INDEX sagas_unfinished ON sagas (id)
  WHERE status IN ('running', 'compensating', 'stuck');

-- Workflow definitions by content hash, so a running saga keeps the definition
-- it started with after a newer version is loaded.
CREATE TABLE definitions (
  hash      TEXT    NOT NULL PRIMARY KEY,
  workflow  TEXT    NOT NULL,
  version   INTEGER NOT NULL,
  source    TEXT    NOT NULL,
  loaded_at INTEGER NOT NULL
);
