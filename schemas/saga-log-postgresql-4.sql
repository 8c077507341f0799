-- The usher saga log on PostgreSQL: the migration from schema version 3 to 4
-- (docs/architecture.md and docs/event-feed.md), as schemas/saga-log-3.sql is
-- for SQLite: where each publisher of the event feed has got to. Like the
-- earlier versions, this file is never edited once released.

-- One row per publication (the Kafka publication of `publish:` in usher.yaml),
-- named by where it goes ("kafka:usher.saga-events"). `position` is a feed
-- position (saga_events.position): every event up to and including it has
-- been acknowledged by the broker, so the publisher that takes the
-- publication over, on this node or another, goes on after it instead of
-- from the start. Kept in the log, beside the events it refers to, so that
-- both are backed up and restored together.
--
-- Only ever moved forward (the store's upsert keeps the greater position).
-- Which node publishes is not stored here: it is whoever holds the session
-- advisory lock keyed by the name, which the server releases with a dead
-- connection, where a row naming the holder would outlive it.
-- `updated_at` is when the position last moved, for an operator wondering
-- whether a publisher is stuck.
CREATE TABLE usher_publications (
  name       text        NOT NULL PRIMARY KEY,
  position   bigint      NOT NULL CHECK (position >= 0),
  updated_at timestamptz NOT NULL
);
