-- 008_incremental_settle.sql - settle points whose work follows what changed,
-- bounded per call (issue 15).
--
-- Supersedes (CREATE OR REPLACE) from 006_fast_apply.sql:
--   tradeflow.prepare_session()       - three more session tables (tf_pend_y,
--                                        tf_unit, tf_new)
--   tradeflow.settle_alerts(int, date) - now settle_alerts(p_top, p_from, NULL):
--                                        everything pending, as before
-- and adds tradeflow.settle_alerts(int, date, int) (with a time budget and
-- the count of what is left), tradeflow.ranking_diff() and
-- tradeflow.ranking_write(). tradeflow.refresh_ranking (006) stays as it was
-- and is still what rebuild_groups (002) uses.
--
-- What changed against 006 (same rows, column for column; the oracle tests
-- compare them):
--
--  * Dirty granularity: a changed (scope, period) re-derives the month basis
--    of that period only, and the YTD basis of the periods from it to the end
--    of its year (006: month and YTD of every period from the earliest
--    changed one to December).
--  * Only what changed is written: the new rows of those periods are
--    compared with the stored ones (rank, value, share and the previous-year
--    columns) and only rows that differ are updated, new ones inserted,
--    vanished ones deleted (006: delete + insert of every row). The
--    previous-year columns are computed with the row, from the year before
--    (already settled: years are settled oldest first); the rows one year
--    later that compare against a changed row get their previous-year
--    columns updated, by key, only where they differ.
--  * Bounded: settle_alerts(p_top, p_from, p_budget_ms) stops taking more
--    work once p_budget_ms have passed (checked before each reporter-year; at
--    least one is always done) and returns how many (scope, period) rows are
--    still pending; the consumer keeps settling with every batch until none
--    are, so ingestion never waits for a whole backlog's rankings.
--    Evaluations that depend on a period still pending (a later year of the
--    same scope not yet re-derived) are not made now: that period is left
--    (or put) in tradeflow.settle_pending and evaluated when it is settled.

-- Creates the session's staging tables; the consumer calls it once per
-- connection. ON COMMIT DELETE ROWS empties them after every batch.
CREATE OR REPLACE FUNCTION tradeflow.prepare_session() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Batches are many small set-based statements: JIT compilation only
    -- adds latency to them.
    PERFORM set_config('jit', 'off', false);
    CREATE TEMP TABLE IF NOT EXISTS tf_stage (
        dataset text NOT NULL, record_id text NOT NULL, revision bigint NOT NULL,
        reporter text NOT NULL, partner text NOT NULL, flow text NOT NULL,
        period date NOT NULL, value_usd numeric(20,2) NOT NULL,
        hs_code text, quantity numeric(23,3), unit text, sector text, source text
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_old (
        dataset text, record_id text, revision bigint, reporter text, partner text,
        flow text, period date, value_usd numeric(20,2), hs_code text,
        quantity numeric(23,3), unit text, sector text, source text,
        o_revision bigint, o_reporter text, o_partner text, o_flow text, o_period date,
        o_value numeric(20,2)
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_delta (
        dataset text, reporter text, partner text, flow text, period date,
        v numeric, n bigint
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_touched (
        dataset text, reporter text, flow text, level text, period date, partner text,
        facts integer
    ) ON COMMIT DELETE ROWS;
    -- settle_alerts'
    CREATE TEMP TABLE IF NOT EXISTS tf_pend (
        flow text, level text, period date
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_ev (
        flow text, level text, basis text, period date, prev date
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_shift (
        flow text, level text, basis text, period date, partner text,
        old_rank integer, new_rank integer, value_usd numeric
    ) ON COMMIT DELETE ROWS;
    -- 008: one reporter-year's pending rows, its scope-years, and the
    -- ranking rows that differ from the stored ones (op I = new, U = changed,
    -- D = vanished; value columns NULL for D).
    CREATE TEMP TABLE IF NOT EXISTS tf_pend_y (
        flow text, level text, period date
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_unit (
        flow text, level text, y date, pmin date
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_new (
        flow text, level text, basis text, period date, partner text, op "char",
        rank integer, value_usd numeric, share_pct numeric,
        prev_year_value_usd numeric, yoy_pct numeric, share_change_pp numeric
    ) ON COMMIT DELETE ROWS;
END;
$$;

-- The ranking rows of the (scope, period)s in tf_pend_y (one reporter, one
-- year) that differ from tradeflow.ranking, into tf_new: the month basis of
-- each pending period, the YTD basis of every period of the year from the
-- scope's earliest pending one. The same formulas as refresh_ranking (006).
-- The large tables are read by LATERAL index range scans per scope-year
-- (tf_unit), everything else is hash joins of those small sets (the temporary
-- tables have no statistics, those of the large ones lag behind a backfill:
-- nested loops over them are what made 006 set enable_nestloop = off, and a
-- merge join of two "1 row" estimates on part of the key is quadratic too).
-- Returns the number of rows in tf_new.
CREATE OR REPLACE FUNCTION tradeflow.ranking_diff(p_dataset text, p_reporter text)
RETURNS integer LANGUAGE plpgsql
SET enable_nestloop = off
SET enable_mergejoin = off
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM tf_unit;
    DELETE FROM tf_new;
    INSERT INTO tf_unit
    SELECT flow, level, date_trunc('year', period)::date, min(period)
      FROM tf_pend_y GROUP BY 1, 2, 3;

    INSERT INTO tf_new
    WITH m AS MATERIALIZED (        -- the scope-years' monthly values
        SELECT u.flow, u.level, u.y, x.period, x.partner, x.value_usd
          FROM tf_unit u CROSS JOIN LATERAL (
                SELECT mo.period, mo.partner, mo.value_usd FROM tradeflow.monthly mo
                 WHERE mo.dataset = p_dataset AND mo.reporter = p_reporter
                   AND mo.flow = u.flow AND mo.level = u.level
                   AND mo.period >= u.y AND mo.period < (u.y + interval '1 year')::date
                OFFSET 0) x     -- (OFFSET 0: not pulled up into a join with a full scan)
    ), sp AS (                      -- each scope-year's periods with data
        SELECT DISTINCT flow, level, y, period FROM m
    ), pa AS (
        SELECT DISTINCT flow, level, y, partner FROM m
    ), run AS (                     -- running YTD per partner over those periods
        SELECT sp.flow, sp.level, sp.y, sp.period, pa.partner,
               sum(m.value_usd) OVER w AS ytd, count(m.value_usd) OVER w AS seen
          FROM sp JOIN pa ON pa.flow = sp.flow AND pa.level = sp.level AND pa.y = sp.y
          LEFT JOIN m ON m.flow = sp.flow AND m.level = sp.level AND m.period = sp.period
                     AND m.partner = pa.partner
        WINDOW w AS (PARTITION BY sp.flow, sp.level, sp.y, pa.partner ORDER BY sp.period)
    ), r AS (
        SELECT m.flow, m.level, 'month'::text AS basis, m.period, m.partner, m.value_usd
          FROM m JOIN tf_pend_y p ON p.flow = m.flow AND p.level = m.level AND p.period = m.period
        UNION ALL
        SELECT run.flow, run.level, 'ytd', run.period, run.partner, run.ytd
          FROM run JOIN tf_unit u ON u.flow = run.flow AND u.level = run.level AND u.y = run.y
         WHERE run.period >= u.pmin AND run.seen > 0
    ), d AS (
        SELECT r.*,
               coalesce(max(value_usd) FILTER (WHERE partner = 'WLD') OVER w,
                        sum(value_usd) FILTER (WHERE partner <> 'WLD') OVER w) AS denom,
               rank() OVER (PARTITION BY flow, level, basis, period, partner = 'WLD'
                            ORDER BY value_usd DESC) AS rk
          FROM r
        WINDOW w AS (PARTITION BY flow, level, basis, period)
    ), e AS (
        SELECT flow, level, basis, period, partner, value_usd,
               CASE WHEN partner = 'WLD' THEN NULL ELSE rk END AS rank,
               round(100 * value_usd / nullif(denom, 0), 4) AS share_pct
          FROM d
    ), py AS (                      -- the year before (settled: oldest years first)
        SELECT u.flow, u.level, b.basis, x.period, x.partner, x.value_usd, x.share_pct
          FROM tf_unit u CROSS JOIN (VALUES ('month'), ('ytd')) b (basis)
         CROSS JOIN LATERAL (   -- (per basis: the key has basis before period)
                SELECT r.period, r.partner, r.value_usd, r.share_pct
                  FROM tradeflow.ranking r
                 WHERE r.dataset = p_dataset AND r.reporter = p_reporter AND r.flow = u.flow
                   AND r.level = u.level AND r.basis = b.basis
                   AND r.period >= (u.pmin - interval '1 year')::date
                   AND r.period < u.y
                OFFSET 0) x
    ), nw AS (
        SELECT e.flow, e.level, e.basis, e.period, e.partner, e.rank, e.value_usd, e.share_pct,
               p.value_usd AS pv,
               CASE WHEN p.value_usd <> 0
                    THEN round(100 * (e.value_usd - p.value_usd) / p.value_usd, 4) END AS yoy,
               e.share_pct - p.share_pct AS scp
          FROM e LEFT JOIN py p
            ON p.flow = e.flow AND p.level = e.level AND p.basis = e.basis
           AND p.partner = e.partner AND p.period = (e.period - interval '1 year')::date
    ), old AS (                     -- the stored rows of the same periods
        SELECT u.flow, u.level, b.basis, x.*
          FROM tf_unit u CROSS JOIN (VALUES ('month'), ('ytd')) b (basis)
         CROSS JOIN LATERAL (
                SELECT r.period, r.partner, r.rank, r.value_usd, r.share_pct,
                       r.prev_year_value_usd, r.yoy_pct, r.share_change_pp
                  FROM tradeflow.ranking r
                 WHERE r.dataset = p_dataset AND r.reporter = p_reporter AND r.flow = u.flow
                   AND r.level = u.level AND r.basis = b.basis AND r.period >= u.pmin
                   AND r.period < (u.y + interval '1 year')::date
                OFFSET 0) x
         WHERE b.basis = 'ytd'
            OR (b.basis = 'month' AND EXISTS (SELECT 1 FROM tf_pend_y p
                                               WHERE p.flow = u.flow AND p.level = u.level
                                                 AND p.period = x.period))
    )
    SELECT coalesce(nw.flow, old.flow), coalesce(nw.level, old.level),
           coalesce(nw.basis, old.basis), coalesce(nw.period, old.period),
           coalesce(nw.partner, old.partner),
           CASE WHEN old.partner IS NULL THEN 'I' WHEN nw.partner IS NULL THEN 'D' ELSE 'U' END,
           nw.rank, nw.value_usd, nw.share_pct, nw.pv, nw.yoy, nw.scp
      FROM nw FULL JOIN old
        ON old.flow = nw.flow AND old.level = nw.level AND old.basis = nw.basis
       AND old.period = nw.period AND old.partner = nw.partner
     WHERE old.partner IS NULL OR nw.partner IS NULL
        OR (old.rank, old.value_usd, old.share_pct, old.prev_year_value_usd, old.yoy_pct,
            old.share_change_pp)
           IS DISTINCT FROM (nw.rank, nw.value_usd, nw.share_pct, nw.pv, nw.yoy, nw.scp);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- Applies tf_new to tradeflow.ranking by key (index probes: the work is
-- proportional to the rows that differ), then the previous-year columns of
-- the rows one year later that compare against them. Returns the number of
-- rows written.
CREATE OR REPLACE FUNCTION tradeflow.ranking_write(p_dataset text, p_reporter text)
RETURNS integer LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_seqscan = off        -- (of tradeflow.ranking; tf_new has no other path)
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
DECLARE
    n integer;
    k integer;
BEGIN
    -- (The stored rows are found from tf_new, by key, in a LATERAL subquery
    -- that the planner can neither reorder nor pull up: the statistics of
    -- tradeflow.ranking lag behind a backfill, and with them a join ordered
    -- the other way scans a reporter's whole ranking per row.)
    DELETE FROM tradeflow.ranking r
     WHERE r.ctid = ANY (ARRAY(
            SELECT l.tid FROM tf_new x CROSS JOIN LATERAL (
                   SELECT o.ctid AS tid FROM tradeflow.ranking o
                    WHERE o.dataset = p_dataset AND o.reporter = p_reporter
                      AND o.flow = x.flow AND o.level = x.level AND o.basis = x.basis
                      AND o.period = x.period AND o.partner = x.partner
                   OFFSET 0) l
             WHERE x.op = 'D'));
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE tradeflow.ranking r
       SET rank = y.rank, value_usd = y.value_usd, share_pct = y.share_pct,
           prev_year_value_usd = y.prev_year_value_usd, yoy_pct = y.yoy_pct,
           share_change_pp = y.share_change_pp
      FROM (SELECT x.*, l.tid FROM tf_new x CROSS JOIN LATERAL (
                   SELECT o.ctid AS tid FROM tradeflow.ranking o
                    WHERE o.dataset = p_dataset AND o.reporter = p_reporter
                      AND o.flow = x.flow AND o.level = x.level AND o.basis = x.basis
                      AND o.period = x.period AND o.partner = x.partner
                   OFFSET 0) l
             WHERE x.op = 'U') y
     WHERE r.ctid = y.tid;
    GET DIAGNOSTICS k = ROW_COUNT;
    n := n + k;
    INSERT INTO tradeflow.ranking
        (dataset, reporter, flow, level, basis, period, partner, rank, value_usd, share_pct,
         prev_year_value_usd, yoy_pct, share_change_pp)
    SELECT p_dataset, p_reporter, flow, level, basis, period, partner, rank, value_usd,
           share_pct, prev_year_value_usd, yoy_pct, share_change_pp
      FROM tf_new WHERE op = 'I'
     ORDER BY flow, level, basis, period, partner;
    GET DIAGNOSTICS k = ROW_COUNT;
    n := n + k;
    -- One year later: the rows comparing against a changed row (value and
    -- share of a vanished row are NULL, so are then the columns). Not looked
    -- for when the scopes have no rows in the next year (a backfill).
    IF NOT EXISTS (SELECT 1 FROM tf_unit u CROSS JOIN LATERAL (
                        SELECT 1 FROM tradeflow.ranking o
                         WHERE o.dataset = p_dataset AND o.reporter = p_reporter
                           AND o.flow = u.flow AND o.level = u.level
                           AND o.basis = 'month'  -- (where there is data)
                           AND o.period >= (u.y + interval '1 year')::date
                           AND o.period < (u.y + interval '2 years')::date
                         LIMIT 1) l) THEN
        RETURN n;
    END IF;
    UPDATE tradeflow.ranking r
       SET prev_year_value_usd = y.pv,
           yoy_pct = CASE WHEN y.pv <> 0 THEN round(100 * (r.value_usd - y.pv) / y.pv, 4) END,
           share_change_pp = r.share_pct - y.ps
      FROM (SELECT l.tid, x.value_usd AS pv, x.share_pct AS ps
              FROM tf_new x CROSS JOIN LATERAL (
                   SELECT o.ctid AS tid FROM tradeflow.ranking o
                    WHERE o.dataset = p_dataset AND o.reporter = p_reporter
                      AND o.flow = x.flow AND o.level = x.level AND o.basis = x.basis
                      AND o.period = (x.period + interval '1 year')::date
                      AND o.partner = x.partner
                   OFFSET 0) l) y
     WHERE r.ctid = y.tid
       AND (r.prev_year_value_usd, r.yoy_pct, r.share_change_pp) IS DISTINCT FROM
           (y.pv, CASE WHEN y.pv <> 0 THEN round(100 * (r.value_usd - y.pv) / y.pv, 4) END,
            r.share_pct - y.ps);
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN n + k;
END;
$$;

-- Settle point with a time budget: for what changed since the last one
-- (tradeflow.settle_pending), reporter by reporter and within a reporter
-- year by year (oldest first), re-derives the rankings (ranking_diff +
-- ranking_write), then evaluates ranking shifts of the reporter and writes
-- the alerts to the outbox in the caller's transaction; NOTIFY
-- tradeflow_alerts for each alert that is not suppressed (period before
-- p_from). Once p_budget_ms (NULL = no limit) have passed, no further
-- reporter-year is taken (at least one is); what is left stays pending, and
-- `remaining` counts it (the rows of reporters that another transaction
-- holds are left to their holder, as in 006, and not counted).
-- Reporters locked by another transaction are skipped, so settling never
-- waits and never deadlocks.
-- For each changed period it evaluates the period itself and the next period
-- with data (whose comparison base changed); on the YTD basis every later
-- period of the same year too (their YTD values moved); an evaluation that
-- needs a period still pending is put off until that period is settled.
-- The alerts of a reporter get their ids in the order by period, flow,
-- level, basis; within one, retractions first (in the order of the shifts
-- they retract), then new shifts best rank first.
CREATE OR REPLACE FUNCTION tradeflow.settle_alerts(
    p_top integer, p_from date, p_budget_ms integer,
    OUT evaluated integer, OUT raised integer, OUT remaining integer)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    yr date;
    n integer;
    t0 timestamptz := clock_timestamp();
    took boolean := false;
    out_of_time boolean := false;
    busy text[] := '{}';
BEGIN
    evaluated := 0;
    raised := 0;
    IF to_regclass('pg_temp.tf_new') IS NULL THEN  -- a session prepared before 008
        PERFORM tradeflow.prepare_session();
    END IF;

    FOR s IN SELECT DISTINCT dataset, reporter FROM tradeflow.settle_pending ORDER BY 1, 2 LOOP
        IF took AND p_budget_ms IS NOT NULL
           AND clock_timestamp() - t0 >= p_budget_ms * interval '1 millisecond' THEN
            EXIT;
        END IF;
        IF NOT pg_try_advisory_xact_lock(hashtextextended(s.dataset || '|' || s.reporter, 0)) THEN
            busy := busy || (s.dataset || '|' || s.reporter);
            CONTINUE;
        END IF;
        DELETE FROM tf_pend;
        DELETE FROM tf_ev;
        DELETE FROM tf_shift;

        -- Rankings, one year at a time, oldest first (a year's
        -- previous-year columns read the year before).
        FOR yr IN SELECT DISTINCT date_trunc('year', period)::date FROM tradeflow.settle_pending
                   WHERE dataset = s.dataset AND reporter = s.reporter ORDER BY 1 LOOP
            IF took AND p_budget_ms IS NOT NULL
               AND clock_timestamp() - t0 >= p_budget_ms * interval '1 millisecond' THEN
                out_of_time := true;
                EXIT;
            END IF;
            DELETE FROM tf_pend_y;
            WITH d AS (
                DELETE FROM tradeflow.settle_pending
                 WHERE dataset = s.dataset AND reporter = s.reporter
                   AND period >= yr AND period < (yr + interval '1 year')::date
                RETURNING flow, level, period)
            INSERT INTO tf_pend_y SELECT * FROM d;
            PERFORM tradeflow.ranking_diff(s.dataset, s.reporter);
            PERFORM tradeflow.ranking_write(s.dataset, s.reporter);
            INSERT INTO tf_pend SELECT * FROM tf_pend_y;
            took := true;
        END LOOP;

        -- What to evaluate, each with the most recent earlier period with data.
        INSERT INTO tf_ev (flow, level, basis, period)
        WITH py AS (
            SELECT flow, level, date_trunc('year', period)::date AS y, min(period) AS mp
              FROM tf_pend GROUP BY 1, 2, 3
        ), ev AS (
            SELECT flow, level, 'month'::text AS basis, period FROM tf_pend
            UNION
            SELECT p.flow, p.level, 'month',
                   (SELECT min(r.period) FROM tradeflow.ranking r
                     WHERE r.dataset = s.dataset AND r.reporter = s.reporter
                       AND r.flow = p.flow AND r.level = p.level AND r.basis = 'month'
                       AND r.period > p.period)
              FROM tf_pend p
            UNION
            SELECT flow, level, 'ytd', period FROM tf_pend
            UNION
            SELECT DISTINCT py.flow, py.level, 'ytd', x.period
              FROM py CROSS JOIN LATERAL (   -- (by index, whatever the statistics say)
                   SELECT r.period FROM tradeflow.ranking r
                    WHERE r.dataset = s.dataset AND r.reporter = s.reporter
                      AND r.flow = py.flow AND r.level = py.level AND r.basis = 'ytd'
                      AND r.period >= py.mp AND r.period < (py.y + interval '1 year')::date
                   OFFSET 0) x
            UNION
            SELECT py.flow, py.level, 'ytd',
                   (SELECT min(r.period) FROM tradeflow.ranking r
                     WHERE r.dataset = s.dataset AND r.reporter = s.reporter
                       AND r.flow = py.flow AND r.level = py.level AND r.basis = 'ytd'
                       AND r.period >= (py.y + interval '1 year')::date)
              FROM py
        )
        SELECT * FROM ev WHERE period IS NOT NULL;
        -- Put off what depends on a period still pending (a later year of the
        -- scope, left for the next call): it is evaluated when that is settled.
        IF out_of_time THEN
            WITH dfr AS (
                DELETE FROM tf_ev e
                 WHERE EXISTS (SELECT 1 FROM tradeflow.settle_pending sp
                                WHERE sp.dataset = s.dataset AND sp.reporter = s.reporter
                                  AND sp.flow = e.flow AND sp.level = e.level
                                  AND sp.period <= e.period)
                RETURNING flow, level, period)
            INSERT INTO tradeflow.settle_pending (dataset, reporter, flow, level, period)
            SELECT DISTINCT s.dataset, s.reporter, flow, level, period FROM dfr
                ON CONFLICT DO NOTHING;
        END IF;
        SELECT count(*) INTO n FROM tf_ev;
        evaluated := evaluated + n;
        UPDATE tf_ev e
           SET prev = (SELECT max(r.period) FROM tradeflow.ranking r
                        WHERE r.dataset = s.dataset AND r.reporter = s.reporter
                          AND r.flow = e.flow AND r.level = e.level AND r.basis = e.basis
                          AND r.period < e.period);

        -- The shifts each evaluated period shows now: top-N ranks against the
        -- previous period's (NULL = outside the top N).
        INSERT INTO tf_shift
        SELECT e.flow, e.level, e.basis, e.period, x.partner, x.old_rank, x.new_rank, x.value_usd
          FROM tf_ev e
         CROSS JOIN LATERAL (
            SELECT coalesce(c.partner, o.partner) AS partner,
                   CASE WHEN o.rank <= p_top THEN o.rank END AS old_rank,
                   CASE WHEN c.rank <= p_top THEN c.rank END AS new_rank,
                   c.value_usd
              FROM (SELECT partner, rank, value_usd FROM tradeflow.ranking
                     WHERE dataset = s.dataset AND reporter = s.reporter AND flow = e.flow
                       AND level = e.level AND basis = e.basis AND period = e.period
                       AND rank IS NOT NULL) c
              FULL JOIN
                   (SELECT partner, rank FROM tradeflow.ranking
                     WHERE dataset = s.dataset AND reporter = s.reporter AND flow = e.flow
                       AND level = e.level AND basis = e.basis AND period = e.prev
                       AND rank IS NOT NULL) o USING (partner)
             WHERE (c.rank <= p_top OR o.rank <= p_top)
               AND (CASE WHEN o.rank <= p_top THEN o.rank END)
                   IS DISTINCT FROM (CASE WHEN c.rank <= p_top THEN c.rank END)) x
         WHERE e.prev IS NOT NULL;

        -- Alerted shifts that no longer hold are retracted; shifts not yet
        -- alerted are raised.
        WITH gone AS (
            UPDATE tradeflow.alerts al SET active = false
              FROM tf_ev e
             WHERE al.dataset = s.dataset AND al.reporter = s.reporter
               AND al.flow = e.flow AND al.level = e.level AND al.basis = e.basis
               AND al.period = e.period AND al.kind = 'shift' AND al.active
               AND NOT EXISTS (SELECT 1 FROM tf_shift x
                                WHERE x.flow = al.flow AND x.level = al.level
                                  AND x.basis = al.basis AND x.period = al.period
                                  AND x.partner = al.partner
                                  AND x.old_rank IS NOT DISTINCT FROM al.old_rank
                                  AND x.new_rank IS NOT DISTINCT FROM al.new_rank)
            RETURNING al.*
        ), out AS (
            SELECT g.flow, g.level, g.basis, g.period, g.partner, g.old_rank, g.new_rank,
                   (SELECT r.value_usd FROM tradeflow.ranking r
                     WHERE r.dataset = s.dataset AND r.reporter = s.reporter
                       AND r.flow = g.flow AND r.level = g.level AND r.basis = g.basis
                       AND r.period = g.period AND r.partner = g.partner) AS value_usd,
                   'retraction'::text AS kind, g.alert_id AS retracts, false AS active,
                   0 AS grp, g.alert_id AS ord
              FROM gone g
            UNION ALL
            SELECT x.flow, x.level, x.basis, x.period, x.partner, x.old_rank, x.new_rank,
                   x.value_usd, 'shift', NULL::bigint, true, 1, NULL::bigint
              FROM tf_shift x
             WHERE NOT EXISTS (SELECT 1 FROM tradeflow.alerts al
                                WHERE al.dataset = s.dataset AND al.reporter = s.reporter
                                  AND al.flow = x.flow AND al.level = x.level
                                  AND al.basis = x.basis AND al.period = x.period
                                  AND al.kind = 'shift' AND al.active
                                  AND al.partner = x.partner
                                  AND al.old_rank IS NOT DISTINCT FROM x.old_rank
                                  AND al.new_rank IS NOT DISTINCT FROM x.new_rank)
        )
        INSERT INTO tradeflow.alerts (dataset, reporter, flow, basis, level, period, partner,
                                      old_rank, new_rank, value_usd, kind, retracts, active,
                                      suppressed)
        SELECT s.dataset, s.reporter, flow, basis, level, period, partner, old_rank, new_rank,
               value_usd, kind, retracts, active, period < p_from
          FROM out
         ORDER BY period, flow, level, basis, grp, ord, new_rank NULLS LAST,
                  old_rank NULLS LAST, partner;
        GET DIAGNOSTICS n = ROW_COUNT;
        raised := raised + n;
        IF out_of_time THEN
            EXIT;
        END IF;
    END LOOP;

    SELECT count(*) INTO remaining FROM tradeflow.settle_pending
     WHERE NOT (dataset || '|' || reporter) = ANY (busy);

    PERFORM pg_notify('tradeflow_alerts', json_build_object(
                'alert_id', alert_id, 'dataset', dataset, 'reporter', reporter, 'flow', flow,
                'basis', basis, 'level', level, 'period', to_char(period, 'YYYY-MM'),
                'partner', partner, 'old_rank', old_rank, 'new_rank', new_rank,
                'value_usd', value_usd::text, 'kind', kind, 'detected_at', detected_at)::text)
       FROM tradeflow.alerts
      WHERE xmin = pg_current_xact_id()::xid AND NOT suppressed
        AND (kind = 'retraction' OR active)
      ORDER BY alert_id;
END;
$$;

-- The interface of 004/006: everything pending, no time limit.
CREATE OR REPLACE FUNCTION tradeflow.settle_alerts(
    p_top integer, p_from date, OUT evaluated integer, OUT raised integer)
LANGUAGE sql AS $$
    SELECT evaluated, raised FROM tradeflow.settle_alerts(p_top, p_from, NULL::integer);
$$;
