-- The usher saga log, the migration from schema version 2 to 3 (docs/architecture.md
-- and docs/event-feed.md): where each publisher of the event feed has got to.
--
-- The build embeds this file in usher_store, which applies it after
-- saga-log-2.sql, in the same IMMEDIATE transaction as the PRAGMA user_version
-- that records it: a crash halfway leaves version 2 as it was. Like the earlier
-- versions, this file is never edited in place once released.

-- One row per publication (the Kafka publication of `publish:` in usher.yaml),
-- named by where it goes ("kafka:usher.saga-events"). `position` is a feed
-- position (the rowid of saga_events): every event up to and including it has
-- been acknowledged by the broker, so a restarted publisher goes on after it
-- instead of from the start. Kept in the log itself rather than in a file
-- beside it, so that it is backed up, copied and restored with the events it
-- refers to, and can never be ahead of a log restored from an older backup by
-- more than that backup lost.
--
-- Only ever moved forward (the store's upsert keeps the greater position).
-- `updated_at` (µs since the epoch) is when it last moved, for an operator
-- wondering whether a publisher is stuck.
--
-- WITHOUT ROWID: a handful of rows looked up by name only; clustering them by
-- name needs no second index.
CREATE TABLE usher_publications (
  name       TEXT    NOT NULL PRIMARY KEY,
  position   INTEGER NOT NULL CHECK (position >= 0),
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
