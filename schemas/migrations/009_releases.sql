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
    nestloop text;
BEGIN
    withdrawn := 0;
    restored := 0;
    marks := 0;
    IF to_regclass('pg_temp.tf_release') IS NULL THEN
        PERFORM tradeflow.prepare_release_session();
    END IF;
    PERFORM tradeflow.note_vintages();  -- for the next settle point
    have_marks := EXISTS (SELECT 1 FROM tradeflow.release_marks);
    IF NOT have_marks AND NOT EXISTS (SELECT 1 FROM tf_release) THEN
        RETURN;
    END IF;
    DELETE FROM tf_delta;  -- apply_stage's deltas are applied already

    -- 1. The batch's facts against the watermarks before this batch's
    --    markers. apply_stage counted every new version and uncounted every
    --    replaced one; a version below its scope's watermark does not count.
    IF have_marks THEN
        -- tf_stage and tf_old are temporary tables without statistics: the
        -- planner's "1 row" makes a nested-loop anti-join of them quadratic
        -- (20,000 x 20,000 per batch); hash joins are right at every size.
        nestloop := current_setting('enable_nestloop');
        PERFORM set_config('enable_nestloop', 'off', true);
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
        PERFORM set_config('enable_nestloop', nestloop, true);
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

-- ---- Vintages (issue 18, item 4; docs/reporting.md "reporting.vintages") ----
--
-- Per ranking row (dataset, reporter, flow, level, basis, period, partner:
-- a monthly or YTD total with its rank), the value and rank as first
-- published, the current ones (NULL once withdrawn), how many times they
-- changed and the release (revision) behind the last change. Recorded at
-- settle points, after settle_alerts refreshed the rankings, for the
-- reporter-periods changed since (tradeflow.vintage_pending, noted by every
-- batch with the highest revision it applied there).

CREATE TABLE IF NOT EXISTS tradeflow.vintage_pending (
    dataset  text   NOT NULL,
    reporter text   NOT NULL,
    period   date   NOT NULL,
    revision bigint NOT NULL,
    PRIMARY KEY (dataset, reporter, period)
);

CREATE TABLE IF NOT EXISTS tradeflow.vintages (
    dataset   text NOT NULL,
    reporter  text NOT NULL,
    flow      text NOT NULL,
    level     text NOT NULL,
    basis     text NOT NULL,
    period    date NOT NULL,
    partner   text NOT NULL,
    first_value_usd numeric NOT NULL,
    first_rank      integer,
    first_release   bigint NOT NULL,
    first_at        timestamptz NOT NULL DEFAULT now(),
    value_usd       numeric,          -- current; NULL = withdrawn
    rank            integer,
    revisions       integer NOT NULL DEFAULT 0,
    last_release    bigint NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, reporter, flow, level, basis, period, partner)
);

-- Per batch, from apply_releases(): the highest revision applied per
-- (dataset, reporter, period) of the batch's facts and markers.
CREATE OR REPLACE FUNCTION tradeflow.note_vintages() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tradeflow.vintage_pending AS p (dataset, reporter, period, revision)
    SELECT dataset, reporter, period, max(revision) FROM tf_stage GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (dataset, reporter, period) DO UPDATE
       SET revision = greatest(p.revision, excluded.revision)
     WHERE p.revision < excluded.revision;
    IF EXISTS (SELECT 1 FROM tf_release) THEN
        INSERT INTO tradeflow.vintage_pending AS p (dataset, reporter, period, revision)
        SELECT dataset, split_part(scope, ':', 2), to_date(split_part(scope, ':', 3), 'YYYYMM'),
               max(revision)
          FROM tf_release GROUP BY 1, 2, 3
        ON CONFLICT (dataset, reporter, period) DO UPDATE
           SET revision = greatest(p.revision, excluded.revision)
         WHERE p.revision < excluded.revision;
    END IF;
END;
$$;

-- At a settle point, after settle_alerts: compares the refreshed rankings of
-- the pending reporter-years (from their earliest pending month to the end
-- of the year: later months' YTD and ranks move too) with the vintages.
-- Reporters still pending for settling, or locked by another consumer, stay
-- pending. Returns the vintage rows written.
CREATE OR REPLACE FUNCTION tradeflow.record_vintages() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    n integer := 0;
    k integer;
BEGIN
    FOR s IN SELECT DISTINCT dataset, reporter FROM tradeflow.vintage_pending ORDER BY 1, 2 LOOP
        IF EXISTS (SELECT 1 FROM tradeflow.settle_pending
                    WHERE dataset = s.dataset AND reporter = s.reporter)
           OR NOT pg_try_advisory_xact_lock(hashtextextended(s.dataset || '|' || s.reporter, 0)) THEN
            CONTINUE;
        END IF;
        WITH pend AS (
            DELETE FROM tradeflow.vintage_pending
             WHERE dataset = s.dataset AND reporter = s.reporter
            RETURNING period, revision
        ), yr AS (                  -- per year: from the earliest pending month
            SELECT date_trunc('year', period)::date AS y, min(period) AS p0
              FROM pend GROUP BY 1
        ), mo AS MATERIALIZED (     -- each month from there to December, with the
            SELECT m.period,        -- highest revision pending up to it
                   (SELECT max(p.revision) FROM pend p
                     WHERE p.period <= m.period AND p.period >= yr.y) AS rel
              FROM yr CROSS JOIN LATERAL (
                   SELECT generate_series(yr.p0, (yr.y + interval '11 months')::date,
                                          interval '1 month')::date AS period) m
        ), cur AS (
            SELECT r.flow, r.level, r.basis, r.period, r.partner, r.value_usd, r.rank, mo.rel
              FROM mo JOIN tradeflow.ranking r
                ON r.dataset = s.dataset AND r.reporter = s.reporter AND r.period = mo.period
        ), gone AS (                -- had a value, no ranking row now: withdrawn
            SELECT v.flow, v.level, v.basis, v.period, v.partner, NULL::numeric AS value_usd,
                   NULL::integer AS rank, mo.rel
              FROM mo JOIN tradeflow.vintages v
                ON v.dataset = s.dataset AND v.reporter = s.reporter AND v.period = mo.period
             WHERE v.value_usd IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM tradeflow.ranking r
                                WHERE r.dataset = v.dataset AND r.reporter = v.reporter
                                  AND r.flow = v.flow AND r.level = v.level
                                  AND r.basis = v.basis AND r.period = v.period
                                  AND r.partner = v.partner)
        ), ch AS (
            SELECT * FROM cur UNION ALL SELECT * FROM gone
        ), up AS (
            INSERT INTO tradeflow.vintages AS v
                (dataset, reporter, flow, level, basis, period, partner, first_value_usd,
                 first_rank, first_release, value_usd, rank, last_release)
            SELECT s.dataset, s.reporter, flow, level, basis, period, partner,
                   coalesce(value_usd, 0), rank, coalesce(rel, 0), value_usd, rank,
                   coalesce(rel, 0)
              FROM ch
             ORDER BY flow, level, basis, period, partner
            ON CONFLICT (dataset, reporter, flow, level, basis, period, partner) DO UPDATE
               SET value_usd = excluded.value_usd, rank = excluded.rank,
                   revisions = v.revisions + 1, last_release = excluded.last_release,
                   changed_at = now()
             WHERE (v.value_usd, v.rank) IS DISTINCT FROM (excluded.value_usd, excluded.rank)
            RETURNING 1
        )
        SELECT count(*) INTO k FROM up;
        n := n + k;
    END LOOP;
    RETURN n;
END;
$$;

CREATE OR REPLACE VIEW reporting.vintages AS
SELECT dataset, reporter, flow, basis, period, level, partner,
       first_value_usd, first_rank, first_release, first_at,
       value_usd AS current_value_usd, rank AS current_rank,
       value_usd IS NULL AS withdrawn,
       revisions, last_release, changed_at AS last_changed_at,
       value_usd - first_value_usd AS revised_by_usd
  FROM tradeflow.vintages;
COMMENT ON VIEW reporting.vintages IS
  'Per monthly and YTD total (partner and group level): value and rank as first published, current value and rank (NULL once withdrawn), number of revisions and the release that last changed it. See docs/reporting.md.';
GRANT SELECT ON reporting.vintages TO tradeflow_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON tradeflow.release_marks, tradeflow.vintage_pending,
    tradeflow.vintages TO tradeflow_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tradeflow TO tradeflow_writer;
