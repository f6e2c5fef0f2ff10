-- 009_releases.sql - whole-release replacement (tradeflow-produce
-- --complete-release, issue 18; docs/design.md "Releases").
--
-- A release marker says: the release with revision R is complete for its
-- scope (record_id prefix "<source tag>:<reporter>:<YYYYMM>", the prefix of
-- the source profiles' record ids). The scope's watermark is the highest
-- such R seen. A fact of the scope whose revision is below the watermark is
-- WITHDRAWN: it stays in tradeflow.facts (its revision still decides which
-- version of a record wins) but counts for nothing in the aggregates. This
-- holds whatever the order of arrival: a marker withdraws the scope's facts
-- already applied below it; a fact that arrives after a higher marker (an
-- older release replayed, another partition lagging) is applied as withdrawn.
-- So the aggregates equal, per scope, the latest complete release plus any
-- later partial publications, exactly, for any interleaving.
--
-- Everything goes through the delta path of apply_stage (006, or its
-- successor): apply_releases() runs after apply_stage in the batch's
-- transaction, reads what apply_stage left in tf_stage / tf_old (the batch's
-- facts and the versions they replaced), writes correcting deltas to
-- tf_delta and applies them to tradeflow.monthly and settle_pending with
-- the same statements as apply_stage, so totals, YTD, ranks, shares and
-- alerts move (and alerts are raised or retracted) as with any revision.

CREATE TABLE IF NOT EXISTS tradeflow.release_marks (
    dataset   text   NOT NULL,
    scope     text   NOT NULL,
    revision  bigint NOT NULL CHECK (revision >= 0),
    marked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, scope)
);

-- The scope of a source profile's record id, NULL for any other id.
CREATE OR REPLACE FUNCTION tradeflow.release_scope(p_record_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_record_id ~ '^[a-z]+:[A-Z][A-Z0-9]{1,15}:[0-9]{6}:[0-9a-f]{32}$'
                THEN left(p_record_id, -33) END
$$;

-- The facts of a scope, for a marker; only source-profile ids are indexed.
CREATE INDEX IF NOT EXISTS facts_release_scope
    ON tradeflow.facts (dataset, tradeflow.release_scope(record_id))
 WHERE tradeflow.release_scope(record_id) IS NOT NULL;

-- The batch's markers (the consumer COPYs them), per session.
CREATE OR REPLACE FUNCTION tradeflow.prepare_release_session() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS tf_release (
        dataset text NOT NULL, scope text NOT NULL, revision bigint NOT NULL
    ) ON COMMIT DELETE ROWS;
END;
$$;

-- Before apply_stage when a batch has markers: the advisory locks of the
-- markers' reporters together with the facts' reporters, in ascending key
-- order (apply_stage then takes its own again: advisory locks are
-- re-entrant), so that two consumers never deadlock on them.
CREATE OR REPLACE FUNCTION tradeflow.release_lock() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k bigint;
BEGIN
    FOR k IN SELECT DISTINCT x.k FROM (
            SELECT hashtextextended(dataset || '|' || reporter, 0) AS k FROM tf_stage
            UNION
            SELECT hashtextextended(dataset || '|' || split_part(scope, ':', 2), 0)
              FROM tf_release) x
        ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;
END;
$$;

-- tf_delta -> tradeflow.monthly and settle_pending: apply_stage's own
-- statements (006), for the correcting deltas.
CREATE OR REPLACE FUNCTION tradeflow.apply_deltas() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tf_touched;
    WITH d2 AS (                    -- customs: total = export + import
        SELECT * FROM tf_delta
        UNION ALL
        SELECT dataset, reporter, partner, 'total', period, v, n FROM tf_delta
         WHERE dataset = 'customs'
    ), gm AS MATERIALIZED (
        SELECT partner, period, tradeflow.group_of(partner, period) AS grp
          FROM (SELECT DISTINCT partner, period FROM tf_delta) x
    ), d3 AS (
        SELECT dataset, reporter, flow, 'partner'::text AS level, period, partner, v, n FROM d2
        UNION ALL
        SELECT d2.dataset, d2.reporter, d2.flow, 'group', d2.period, gm.grp, d2.v, d2.n
          FROM d2 JOIN gm USING (partner, period)
    ), agg AS (
        SELECT dataset, reporter, flow, level, period, partner, sum(v) AS v, sum(n) AS n
          FROM d3 GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(n) <> 0 OR sum(v) <> 0
    ), ins AS (
        INSERT INTO tradeflow.monthly AS m
            (dataset, reporter, flow, level, period, partner, value_usd, facts)
        SELECT dataset, reporter, flow, level, period, partner, v, n FROM agg
         ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (dataset, reporter, flow, level, period, partner) DO UPDATE
           SET value_usd = m.value_usd + excluded.value_usd, facts = m.facts + excluded.facts
        RETURNING dataset, reporter, flow, level, period, partner, facts
    )
    INSERT INTO tf_touched SELECT * FROM ins;

    DELETE FROM tradeflow.monthly m USING tf_touched t
     WHERE t.facts = 0 AND m.dataset = t.dataset AND m.reporter = t.reporter
       AND m.flow = t.flow AND m.level = t.level AND m.period = t.period
       AND m.partner = t.partner AND m.facts = 0;

    INSERT INTO tradeflow.settle_pending (dataset, reporter, flow, level, period)
    SELECT DISTINCT dataset, reporter, flow, level, period FROM tf_touched
        ON CONFLICT DO NOTHING;
END;
$$;

-- After apply_stage, in the same transaction. Returns
--   withdrawn = facts that stopped counting (markers, or facts that arrived
--               below their scope's watermark),
--   restored  = replaced versions that had not been counted (their
--               subtraction by apply_stage undone),
--   marks     = watermarks raised.
-- With no watermark anywhere and no marker in the batch it returns at once
-- (the cost for feeds that never use --complete-release: two probes).
CREATE OR REPLACE FUNCTION tradeflow.apply_releases(
    OUT withdrawn integer, OUT restored integer, OUT marks integer)
LANGUAGE plpgsql AS $$
DECLARE
    have_marks boolean;
    v_n bigint;
BEGIN
    withdrawn := 0;
    restored := 0;
    marks := 0;
    IF to_regclass('pg_temp.tf_release') IS NULL THEN
        PERFORM tradeflow.prepare_release_session();
    END IF;
    have_marks := EXISTS (SELECT 1 FROM tradeflow.release_marks);
    IF NOT have_marks AND NOT EXISTS (SELECT 1 FROM tf_release) THEN
        RETURN;
    END IF;
    DELETE FROM tf_delta;  -- apply_stage's deltas are applied already

    -- 1. The batch's facts against the watermarks before this batch's
    --    markers. apply_stage counted every new version and uncounted every
    --    replaced one; a version below its scope's watermark does not count.
    IF have_marks THEN
        INSERT INTO tf_delta
        SELECT dataset, reporter, partner, flow, period, sum(v), sum(n) FROM (
            -- a new record_id below its watermark
            SELECT s.dataset, s.reporter, s.partner, s.flow, s.period,
                   -s.value_usd AS v, -1 AS n
              FROM tf_stage s
              JOIN tradeflow.release_marks m
                ON m.dataset = s.dataset AND m.scope = tradeflow.release_scope(s.record_id)
             WHERE s.revision < m.revision
               AND NOT EXISTS (SELECT 1 FROM tf_old o
                                WHERE o.dataset = s.dataset AND o.record_id = s.record_id)
            UNION ALL
            -- a new version below its watermark
            SELECT o.dataset, o.reporter, o.partner, o.flow, o.period, -o.value_usd, -1
              FROM tf_old o
              JOIN tradeflow.release_marks m
                ON m.dataset = o.dataset AND m.scope = tradeflow.release_scope(o.record_id)
             WHERE o.revision > o.o_revision AND o.revision < m.revision
            UNION ALL
            -- a replaced version that was below its watermark (not counted)
            SELECT o.dataset, o.o_reporter, o.o_partner, o.o_flow, o.o_period, o.o_value, 1
              FROM tf_old o
              JOIN tradeflow.release_marks m
                ON m.dataset = o.dataset AND m.scope = tradeflow.release_scope(o.record_id)
             WHERE o.revision > o.o_revision AND o.o_revision < m.revision) d
         GROUP BY 1, 2, 3, 4, 5;
        -- (net per monthly key: a key can lose one version and regain another)
        SELECT coalesce(sum(-d.n) FILTER (WHERE d.n < 0), 0),
               coalesce(sum(d.n) FILTER (WHERE d.n > 0), 0)
          INTO withdrawn, restored FROM tf_delta d;
    END IF;

    -- 2. This batch's markers: the scope's facts from the old watermark
    --    (they counted) up to the new one stop counting. Facts applied by
    --    this batch are already in tradeflow.facts.
    WITH nm AS (
        SELECT r.dataset, r.scope, max(r.revision) AS revision,
               coalesce(max(m.revision), -1) AS old_rev
          FROM tf_release r
          LEFT JOIN tradeflow.release_marks m USING (dataset, scope)
         GROUP BY r.dataset, r.scope
        HAVING max(r.revision) > coalesce(max(m.revision), -1)
    ), ins AS (
        INSERT INTO tf_delta
        SELECT f.dataset, f.reporter, f.partner, f.flow, f.period, -sum(f.value_usd), -count(*)
          FROM nm
          JOIN tradeflow.facts f
            ON f.dataset = nm.dataset AND tradeflow.release_scope(f.record_id) = nm.scope
         WHERE tradeflow.release_scope(f.record_id) IS NOT NULL
           AND f.revision >= nm.old_rev AND f.revision < nm.revision
         GROUP BY 1, 2, 3, 4, 5
        RETURNING n)
    SELECT coalesce(sum(-ins.n), 0) INTO v_n FROM ins;
    withdrawn := withdrawn + v_n;

    WITH up AS (
        INSERT INTO tradeflow.release_marks AS m (dataset, scope, revision)
        SELECT dataset, scope, max(revision) FROM tf_release GROUP BY 1, 2
        ON CONFLICT (dataset, scope) DO UPDATE
           SET revision = excluded.revision, marked_at = now()
         WHERE m.revision < excluded.revision
        RETURNING 1)
    SELECT count(*) INTO marks FROM up;

    IF EXISTS (SELECT 1 FROM tf_delta) THEN
        PERFORM tradeflow.apply_deltas();
    END IF;
END;
$$;
