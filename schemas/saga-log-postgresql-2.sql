-- The usher saga log on PostgreSQL: the migration from schema version 1 to 2,
-- several nodes on one database (docs/cluster.md; docs/cluster.md).
--
-- Each `usher serve` on the database is a node with a lease it renews; each
-- running saga is owned by one node under a fence, a number that grows each
-- time the saga changes hands. Every group commit checks, in its own
-- transaction, that the node still owns each saga under the fence it holds
-- and that its lease holds, so a node that was paused or cut off past its
-- lease, whose sagas others took over, writes nothing more. Like version 1,
-- this file is never edited once released.

-- Nodes, by an id never reused: a node whose lease lapsed joins again as a new
-- node, so an id names one incarnation. Times are the database's clock, the
-- one every node's lease is judged by.
CREATE TABLE usher_nodes (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text        NOT NULL,            -- host:pid, for people
  address     text        NOT NULL DEFAULT '', -- the API address it advertised
  started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  lease_until timestamptz NOT NULL,
  stopped_at  timestamptz                      -- set when it left cleanly
);

-- The owner (a node id; NULL for sagas written before version 2, or by a
-- store used without nodes) and the fence it owns the saga under.
ALTER TABLE sagas ADD COLUMN owner bigint, ADD COLUMN fence bigint NOT NULL DEFAULT 0;
-- Take-over finds the running sagas of nodes whose lease ended.
CREATE INDEX sagas_by_owner ON sagas (owner, id) WHERE status IN ('running', 'compensating');

-- Which node wrote each event, under which fence: the audit trail of
-- ownership (one writer per fence; fences only grow along a saga's seq).
ALTER TABLE saga_events ADD COLUMN node bigint, ADD COLUMN fence bigint NOT NULL DEFAULT 0;

-- One group commit: every event and projection row of a batch of appends, in
-- one statement (so one round trip and one WAL flush), from arrays.
--
-- Version 2 adds ownership. Each row names its writer (s_owner, a node id, or
-- NULL for a store used without nodes) and the fence it holds the saga under.
-- Every node named must still hold its lease once the batch's rows are
-- written and locked, or the rows it wrote are refused (UA004). A row with
-- prior_seq > 0 updates its saga only if the saga's last_seq is prior_seq (else UA001: a saga's events never skip a seq, even after an
-- earlier append failed) and the saga is still owned by that node under that
-- fence (else UA003: another node took it over). A row with prior_seq = 0
-- starts a saga, owned by its writer, and must not collide with another
-- saga's id or idempotency key; an event must not be in the log already (else
-- UA002). Each refusal of one row or event raises an error whose DETAIL names
-- it by its place in the arrays ('saga 3', 'event 12', from 1), so the writer
-- can fail that append alone and commit the rest. Events record the node and
-- fence of their saga's row. The caller passes at most one row per saga.
DROP FUNCTION usher_append;
CREATE FUNCTION usher_append(
  e_saga uuid[], e_seq bigint[], e_type text[], e_step text[], e_data jsonb[], e_at timestamptz[], e_cause bigint[],
  s_id uuid[], s_prior bigint[], s_workflow text[], s_version bigint[], s_hash text[], s_status text[],
  s_step text[], s_key text[], s_correlation text[], s_created timestamptz[], s_updated timestamptz[],
  s_deadline timestamptz[], s_error text[], s_last bigint[], s_owner bigint[], s_fence bigint[]
) RETURNS bigint LANGUAGE plpgsql
-- Plans made for each call's own arrays: a plan cached while the tables were
-- small (a hash join over a scan of every saga) would be kept as they grow.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
  updated   bigint[];
  started   uuid[];
  culprit   bigint;
  first_position bigint;
BEGIN
  WITH written AS (
    UPDATE sagas AS s
       SET status = u.status, current_step = u.step, updated_at = u.updated,
           deadline = u.deadline, last_error = u.error, last_seq = u.last
      FROM unnest(s_id, s_prior, s_status, s_step, s_updated, s_deadline, s_error, s_last, s_owner, s_fence)
           WITH ORDINALITY AS u(id, prior, status, step, updated, deadline, error, last, owner, fence, n)
     WHERE u.prior > 0 AND s.id = u.id AND s.last_seq = u.prior
       AND s.owner IS NOT DISTINCT FROM u.owner AND s.fence = u.fence
    RETURNING u.n)
  SELECT coalesce(array_agg(n), '{}') INTO updated FROM written;
  IF cardinality(updated) <> (SELECT count(*) FROM unnest(s_prior) AS p(prior) WHERE p.prior > 0) THEN
    -- The first row not written: another node's now, or not where its log is.
    SELECT u.n INTO culprit
      FROM unnest(s_prior) WITH ORDINALITY AS u(prior, n)
     WHERE u.prior > 0 AND u.n <> ALL (updated)
     ORDER BY u.n LIMIT 1;
    IF EXISTS (SELECT 1 FROM sagas AS s
                WHERE s.id = s_id[culprit]
                  AND (s.owner IS DISTINCT FROM s_owner[culprit] OR s.fence <> s_fence[culprit])) THEN
      RAISE EXCEPTION 'saga % is no longer owned by node % under fence %', s_id[culprit], s_owner[culprit],
                      s_fence[culprit]
        USING ERRCODE = 'UA003', DETAIL = 'saga ' || culprit;
    END IF;
    RAISE EXCEPTION 'saga % does not continue the log at seq %', s_id[culprit], s_prior[culprit]
      USING ERRCODE = 'UA001', DETAIL = 'saga ' || culprit;
  END IF;

  WITH inserted AS (
    INSERT INTO sagas (id, workflow, version, definition_hash, status, current_step, idempotency_key,
                       correlation_id, created_at, updated_at, deadline, last_error, last_seq, owner, fence)
    SELECT u.id, u.workflow, u.version, u.hash, u.status, u.step, u.key, u.correlation,
           u.created, u.updated, u.deadline, u.error, u.last, u.owner, u.fence
      FROM unnest(s_id, s_prior, s_workflow, s_version, s_hash, s_status, s_step, s_key, s_correlation,
                  s_created, s_updated, s_deadline, s_error, s_last, s_owner, s_fence)
           AS u(id, prior, workflow, version, hash, status, step, key, correlation, created, updated,
                deadline, error, last, owner, fence)
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

  IF cardinality(e_saga) > 0 THEN
    UPDATE usher_feed_position SET last_position = last_position + cardinality(e_saga)
      RETURNING last_position - cardinality(e_saga) INTO first_position;
    -- A plain insert (cheaper than ON CONFLICT); the handler, a subtransaction
    -- entered once per batch, only runs when an event is already there.
    BEGIN
      INSERT INTO saga_events (saga_id, seq, type, step, data, occurred_at, causation_seq, position, node, fence)
      SELECT e.saga, e.seq, e.type, e.step, e.data, e.at, e.cause, first_position + e.n, r.owner,
             coalesce(r.fence, 0)
        FROM unnest(e_saga, e_seq, e_type, e_step, e_data, e_at, e_cause)
             WITH ORDINALITY AS e(saga, seq, type, step, data, at, cause, n)
        LEFT JOIN unnest(s_id, s_owner, s_fence) AS r(id, owner, fence) ON r.id = e.saga;
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
  END IF;

  -- Last, once every row this batch writes is locked: every writer's lease,
  -- per node (a batch has one or two); only when one fails, the first row it
  -- wrote, to blame. clock_timestamp(), not now(): the time of the check, not
  -- of the transaction's start. (A claim of those sagas waits for this
  -- transaction's row locks, so it comes after it in any case.)
  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT o FROM unnest(s_owner) AS o WHERE o IS NOT NULL) AS w(o)
              WHERE NOT EXISTS (SELECT 1 FROM usher_nodes AS n
                                 WHERE n.id = w.o AND n.lease_until > clock_timestamp() AND n.stopped_at IS NULL)) THEN
    SELECT u.n INTO culprit
      FROM unnest(s_owner) WITH ORDINALITY AS u(owner, n)
     WHERE u.owner IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM usher_nodes AS n
                        WHERE n.id = u.owner AND n.lease_until > clock_timestamp() AND n.stopped_at IS NULL)
     ORDER BY u.n LIMIT 1;
    RAISE EXCEPTION 'node % does not hold its lease', s_owner[culprit]
      USING ERRCODE = 'UA004', DETAIL = 'saga ' || culprit;
  END IF;

  RETURN first_position;
END
$$;
