-- The usher saga log on PostgreSQL, schema version 1 (docs/architecture.md and docs/postgresql.md).
--
-- The same tables, events and JSON as schemas/saga-log.sql (SQLite), in
-- PostgreSQL's types: saga ids are `uuid`, event data `jsonb`, times
-- `timestamptz` (microsecond precision, as usher's clock), positions `bigint`.
-- The build embeds this file in usher_store; `usher migrate` (and `usher serve`
-- unless --no-migrate) applies it to an empty database as the migration from
-- version 0 to 1, in one transaction, under an advisory lock, and records the
-- version in usher_schema. Like the SQLite file it is never edited in place
-- once released: a later version is a further migration step (-2.sql: several
-- nodes; -3.sql: the status `terminated`, an index of correlation ids; -4.sql:
-- publication positions).

CREATE TABLE usher_schema (
  version integer NOT NULL
);
INSERT INTO usher_schema (version) VALUES (0);

-- The log proper: append-only, one row per event, dense seq per saga.
-- `position` orders every saga's events by commit (the event feed reads it):
-- it is handed out by usher_feed_position inside the committing transaction,
-- whose row lock is held until the commit, so a later position can never
-- become visible before an earlier one, however many writers there are.
CREATE TABLE saga_events (
  saga_id       uuid        NOT NULL,
  seq           bigint      NOT NULL CHECK (seq > 0),
  type          text        NOT NULL,
  step          text,                  -- NULL when the event is not about one step
  data          jsonb       NOT NULL,  -- a JSON object
  occurred_at   timestamptz NOT NULL,
  causation_seq bigint      NOT NULL DEFAULT 0,
  position      bigint      NOT NULL UNIQUE,
  PRIMARY KEY (saga_id, seq)
);

CREATE TABLE usher_feed_position (
  last_position bigint NOT NULL
);
INSERT INTO usher_feed_position (last_position) VALUES (0);

-- One row per saga, a projection of its events written in the same
-- transaction as them; `usher` can rebuild it from saga_events.
CREATE TABLE sagas (
  id              uuid        NOT NULL PRIMARY KEY,
  workflow        text        NOT NULL,
  version         bigint      NOT NULL,
  definition_hash text        NOT NULL,
  status          text        NOT NULL
                  CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'stuck')),
  current_step    text,                  -- NULL when none
  idempotency_key text        UNIQUE,    -- NULL when none; NULLs are not unique-checked
  correlation_id  text,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  deadline        timestamptz,           -- NULL when the saga has no deadline
  last_error      text,
  last_seq        bigint      NOT NULL
) WITH (fillfactor = 50);
-- A saga's row is updated at every transition, but its indexed columns (id,
-- workflow, idempotency key; status only when it settles) rarely change: room
-- on each page lets PostgreSQL update it in place (a HOT update) instead of
-- writing a new entry in every index.

-- Listing newest first (ids are UUIDv7: by id is by start time), filtered by
-- status or by workflow.
CREATE INDEX sagas_by_status   ON sagas (status, id);
CREATE INDEX sagas_by_workflow ON sagas (workflow, id);
-- Recovery reads only unfinished sagas: proportional to them, not to history.
CREATE INDEX sagas_unfinished ON sagas (id) WHERE status IN ('running', 'compensating', 'stuck');

-- Workflow definitions by content hash, so a running saga keeps the definition
-- it started with after a newer version is loaded.
CREATE TABLE definitions (
  hash      text        NOT NULL PRIMARY KEY,
  workflow  text        NOT NULL,
  version   bigint      NOT NULL,
  source    text        NOT NULL,
  loaded_at timestamptz NOT NULL DEFAULT now()
);

-- Microseconds since the Unix epoch, usher's unit of time, to and from
-- timestamptz, for reads (the writer sends times as timestamptz text).
CREATE FUNCTION usher_time(us bigint) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN timestamptz 'epoch' + us * interval '1 microsecond';
CREATE FUNCTION usher_us(t timestamptz) RETURNS bigint
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN (extract(epoch FROM t) * 1000000)::bigint;

-- One group commit: every event and projection row of a batch of appends, in
-- one statement (so one round trip and one WAL flush), from arrays.
--
-- A row with prior_seq > 0 updates its saga only if the saga's last_seq is
-- prior_seq: a saga's events never skip a seq, even after an earlier append
-- failed. A row with prior_seq = 0 starts a saga, and must not collide with
-- another saga's id or idempotency key. An event must not be in the log
-- already. Each refusal raises an error whose DETAIL names the offending
-- element by its place in the arrays ('saga 3', 'event 12', from 1), so the
-- writer can fail that append alone and commit the rest: SQLSTATE UA001 (does
-- not continue the log) or UA002 (already exists). The caller passes at most
-- one row per saga.
CREATE FUNCTION usher_append(
  e_saga uuid[], e_seq bigint[], e_type text[], e_step text[], e_data jsonb[], e_at timestamptz[], e_cause bigint[],
  s_id uuid[], s_prior bigint[], s_workflow text[], s_version bigint[], s_hash text[], s_status text[],
  s_step text[], s_key text[], s_correlation text[], s_created timestamptz[], s_updated timestamptz[],
  s_deadline timestamptz[], s_error text[], s_last bigint[]
) RETURNS bigint LANGUAGE plpgsql
-- Plans made for each call's own arrays: a plan cached while the tables were
-- small (a hash join over a scan of every saga) would be kept as they grow.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
  written   bigint;
  started   uuid[];
  culprit   bigint;
  first_position bigint;
BEGIN
  UPDATE sagas AS s
     SET status = u.status, current_step = u.step, updated_at = u.updated,
         deadline = u.deadline, last_error = u.error, last_seq = u.last
    FROM unnest(s_id, s_prior, s_status, s_step, s_updated, s_deadline, s_error, s_last)
         AS u(id, prior, status, step, updated, deadline, error, last)
   WHERE u.prior > 0 AND s.id = u.id AND s.last_seq = u.prior;
  GET DIAGNOSTICS written = ROW_COUNT;
  IF written <> (SELECT count(*) FROM unnest(s_prior) AS p(prior) WHERE p.prior > 0) THEN
    SELECT u.n INTO culprit
      FROM unnest(s_id, s_prior, s_last) WITH ORDINALITY AS u(id, prior, last, n)
     WHERE u.prior > 0 AND NOT EXISTS (SELECT 1 FROM sagas AS s WHERE s.id = u.id AND s.last_seq = u.last)
     ORDER BY u.n LIMIT 1;
    RAISE EXCEPTION 'saga % does not continue the log at seq %', s_id[culprit], s_prior[culprit]
      USING ERRCODE = 'UA001', DETAIL = 'saga ' || culprit;
  END IF;

  WITH inserted AS (
    INSERT INTO sagas (id, workflow, version, definition_hash, status, current_step, idempotency_key,
                       correlation_id, created_at, updated_at, deadline, last_error, last_seq)
    SELECT u.id, u.workflow, u.version, u.hash, u.status, u.step, u.key, u.correlation,
           u.created, u.updated, u.deadline, u.error, u.last
      FROM unnest(s_id, s_prior, s_workflow, s_version, s_hash, s_status, s_step, s_key, s_correlation,
                  s_created, s_updated, s_deadline, s_error, s_last)
           AS u(id, prior, workflow, version, hash, status, step, key, correlation, created, updated,
                deadline, error, last)
     WHERE u.prior = 0
    ON CONFLICT DO NOTHING
    RETURNING id)
  SELECT coalesce(array_agg(id), '{}') INTO started FROM inserted;
  IF cardinality(started) <> (SELECT count(*) FROM unnest(s_prior) AS p(prior) WHERE p.prior = 0) THEN
    SELECT u.n INTO culprit
      FROM unnest(s_id, s_prior) WITH ORDINALITY AS u(id, prior, n)
     WHERE u.prior = 0 AND u.id <> ALL (started)
     ORDER BY u.n LIMIT 1;
    RAISE EXCEPTION 'saga % already exists, or its idempotency key is taken', s_id[culprit]
      USING ERRCODE = 'UA002', DETAIL = 'saga ' || culprit;
  END IF;

  IF cardinality(e_saga) = 0 THEN
    RETURN NULL;
  END IF;
  UPDATE usher_feed_position SET last_position = last_position + cardinality(e_saga)
    RETURNING last_position - cardinality(e_saga) INTO first_position;
  -- A plain insert (cheaper than ON CONFLICT); the handler, a subtransaction
  -- entered once per batch, only runs when an event is already there.
  BEGIN
    INSERT INTO saga_events (saga_id, seq, type, step, data, occurred_at, causation_seq, position)
    SELECT e.saga, e.seq, e.type, e.step, e.data, e.at, e.cause, first_position + e.n
      FROM unnest(e_saga, e_seq, e_type, e_step, e_data, e_at, e_cause)
           WITH ORDINALITY AS e(saga, seq, type, step, data, at, cause, n);
  EXCEPTION WHEN unique_violation THEN
    -- The first event already in the log, or twice in the batch (then the
    -- second of the two).
    SELECT e.n INTO culprit
      FROM unnest(e_saga, e_seq) WITH ORDINALITY AS e(saga, seq, n)
     WHERE EXISTS (SELECT 1 FROM saga_events AS x WHERE x.saga_id = e.saga AND x.seq = e.seq)
        OR EXISTS (SELECT 1 FROM unnest(e_saga, e_seq) WITH ORDINALITY AS f(saga, seq, m)
                    WHERE f.saga = e.saga AND f.seq = e.seq AND f.m < e.n)
     ORDER BY e.n LIMIT 1;
    RAISE EXCEPTION 'event % of saga % is already in the log', e_seq[culprit], e_saga[culprit]
      USING ERRCODE = 'UA002', DETAIL = 'event ' || culprit;
  END;
  RETURN first_position;
END
$$;
