-- 006_fast_apply.sql - the batch apply engine, second version: one probe of
-- the facts per batch, and rankings refreshed at settle points.
--
-- What changed against 002_apply.sql and 004_alerts.sql (same results, row
-- for row; bench/bench_aggregate.sh compares them with the peer and the
-- integration tests with the oracle):
--
--  * apply_stage reads the facts of the batch's record_ids ONCE (an index
--    probe per staged record, the existing ones kept in tf_old)
--    instead of four joins; new records are a plain INSERT of the rest;
--    deltas are summed per (dataset, reporter, partner, flow, period) before
--    they are expanded to flow 'total' and the group level.
--  * The advisory locks are taken for the reporters in the batch; the rare
--    revision that moves a record to another reporter needs that reporter's
--    lock too: apply_stage raises 40001 (hint 'careful') and the client
--    retries with apply_stage(true), which locks the stored reporters as well.
--  * Rankings, shares and YoY are no longer recomputed per batch but at
--    settle points (settle_alerts), for the scope-years changed since the
--    last one (tradeflow.settle_pending). While a consumer works through a
--    backlog, tradeflow.ranking lags tradeflow.monthly by at most
--    settle.interval; once caught up, every batch is a settle point.
--  * tf_stage has no primary key: the client stages one row per record_id
--    (the highest revision of the batch); a repeated new record_id fails the
--    facts insert with 23505.

-- The existing facts of the staged record_ids with their stored values, into
-- tf_old. Index probes whatever the temporary tables' statistics say (a hash
-- join would read all of facts). No row locks: every writer of a fact holds
-- the advisory lock of its stored reporter (apply_stage checks), taken
-- before this statement's snapshot.
CREATE OR REPLACE FUNCTION tradeflow.probe_facts() RETURNS integer
LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO tf_old
    SELECT s.*, f.revision, f.reporter, f.partner, f.flow, f.period, f.value_usd
      FROM tf_stage s JOIN tradeflow.facts f USING (dataset, record_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

DROP FUNCTION IF EXISTS tradeflow.apply_stage();

-- Applies the batch in pg_temp.tf_stage. Returns counts:
--   applied    = new records and higher revisions written,
--   superseded = of those, how many replaced an earlier revision,
--   duplicates = records with an equal or lower revision (no effect).
-- Serialisation: transaction-scoped advisory locks on the (dataset, reporter)
-- pairs it touches, taken in ascending key order before anything is read, so
-- two consumers never deadlock on them and never lose an update. With
-- p_careful the stored reporters of the batch's record_ids are locked too
-- (read before locking; if one changed in between, 40001 again).
CREATE OR REPLACE FUNCTION tradeflow.apply_stage(
    p_careful boolean DEFAULT false,
    OUT applied integer, OUT superseded integer, OUT duplicates integer)
LANGUAGE plpgsql AS $$
DECLARE
    keys     bigint[];
    k        bigint;
    staged   integer;
    existing integer;
BEGIN
    superseded := 0;
    IF to_regclass('pg_temp.tf_ev') IS NULL THEN  -- a session prepared before 006
        PERFORM tradeflow.prepare_session();
    END IF;
    SELECT count(*) INTO staged FROM tf_stage;
    IF p_careful THEN
        SELECT array_agg(DISTINCT x.k ORDER BY x.k) INTO keys FROM (
            SELECT hashtextextended(s.dataset || '|' || s.reporter, 0) AS k FROM tf_stage s
            UNION
            SELECT hashtextextended(f.dataset || '|' || f.reporter, 0)
              FROM tf_stage s JOIN tradeflow.facts f USING (dataset, record_id)) x;
    ELSE
        SELECT array_agg(x.k ORDER BY x.k) INTO keys FROM (
            SELECT DISTINCT hashtextextended(y.dataset || '|' || y.reporter, 0) AS k
              FROM (SELECT DISTINCT dataset, reporter FROM tf_stage) y) x;
    END IF;
    IF keys IS NOT NULL THEN
        FOREACH k IN ARRAY keys LOOP
            PERFORM pg_advisory_xact_lock(k);
        END LOOP;
    END IF;

    DELETE FROM tf_old;   -- (ON COMMIT DELETE ROWS empties them at commit; a
    DELETE FROM tf_delta; --  second call in one transaction starts clean too)
    DELETE FROM tf_touched;
    existing := tradeflow.probe_facts();

    IF existing = 0 THEN
        -- The common case of a live feed or a first load: all new.
        INSERT INTO tradeflow.facts
            (dataset, record_id, revision, reporter, partner, flow, period, value_usd,
             hs_code, quantity, unit, sector, source)
        SELECT dataset, record_id, revision, reporter, partner, flow, period, value_usd,
               hs_code, quantity, unit, sector, source
          FROM tf_stage;
        INSERT INTO tf_delta
        SELECT dataset, reporter, partner, flow, period, sum(value_usd), count(*)
          FROM tf_stage GROUP BY 1, 2, 3, 4, 5;
    ELSE
        -- New record_ids: a plain INSERT; if another consumer inserts the same
        -- record_id concurrently, this fails with 23505 and the client retries
        -- the batch, which then finds (and locks) the other's fact.
        INSERT INTO tradeflow.facts
            (dataset, record_id, revision, reporter, partner, flow, period, value_usd,
             hs_code, quantity, unit, sector, source)
        SELECT dataset, record_id, revision, reporter, partner, flow, period, value_usd,
               hs_code, quantity, unit, sector, source
          FROM tf_stage s
         WHERE NOT EXISTS (SELECT 1 FROM tf_old o
                            WHERE o.dataset = s.dataset AND o.record_id = s.record_id);
        IF EXISTS (SELECT 1 FROM tf_old
                    WHERE revision > o_revision
                      AND NOT hashtextextended(dataset || '|' || o_reporter, 0) = ANY (keys)) THEN
            RAISE EXCEPTION 'a revision moves a record from another reporter; retry'
                  USING ERRCODE = '40001', HINT = 'careful';
        END IF;
        UPDATE tradeflow.facts f
           SET revision = c.revision, reporter = c.reporter, partner = c.partner,
               flow = c.flow, period = c.period, value_usd = c.value_usd,
               hs_code = c.hs_code, quantity = c.quantity, unit = c.unit,
               sector = c.sector, source = c.source, applied_at = now()
          FROM tf_old c
         WHERE c.revision > c.o_revision
           AND f.dataset = c.dataset AND f.record_id = c.record_id;
        GET DIAGNOSTICS superseded = ROW_COUNT;
        INSERT INTO tf_delta                   -- +new, and -old for revisions
        SELECT dataset, reporter, partner, flow, period, sum(v), sum(n) FROM (
            SELECT dataset, reporter, partner, flow, period, value_usd AS v, 1 AS n
              FROM tf_stage s
             WHERE NOT EXISTS (SELECT 1 FROM tf_old o
                                WHERE o.dataset = s.dataset AND o.record_id = s.record_id)
            UNION ALL
            SELECT dataset, reporter, partner, flow, period, value_usd, 1
              FROM tf_old WHERE revision > o_revision
            UNION ALL
            SELECT dataset, o_reporter, o_partner, o_flow, o_period, -o_value, -1
              FROM tf_old WHERE revision > o_revision) d
         GROUP BY 1, 2, 3, 4, 5;
    END IF;
    applied := staged - existing + superseded;
    duplicates := staged - applied;

    WITH d2 AS (                    -- customs: total = export + import
        SELECT * FROM tf_delta
        UNION ALL
        SELECT dataset, reporter, partner, 'total', period, v, n FROM tf_delta
         WHERE dataset = 'customs'
    ), gm AS MATERIALIZED (         -- group of each (partner, month), looked up once
        SELECT partner, period, tradeflow.group_of(partner, period) AS grp
          FROM (SELECT DISTINCT partner, period FROM tf_delta) x
    ), d3 AS (                      -- levels
        SELECT dataset, reporter, flow, 'partner'::text AS level, period, partner, v, n FROM d2
        UNION ALL
        SELECT d2.dataset, d2.reporter, d2.flow, 'group', d2.period, gm.grp, d2.v, d2.n
          FROM d2 JOIN gm USING (partner, period)
    ), agg AS (
        SELECT dataset, reporter, flow, level, period, partner, sum(v) AS v, sum(n) AS n
          FROM d3 GROUP BY 1, 2, 3, 4, 5, 6
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

    -- What changed, for the next settle point: rankings and alerts.
    INSERT INTO tradeflow.settle_pending (dataset, reporter, flow, level, period)
    SELECT DISTINCT dataset, reporter, flow, level, period FROM tf_touched
        ON CONFLICT DO NOTHING;
END;
$$;

-- Creates the session's staging tables; the consumer calls it once per
-- connection. ON COMMIT DELETE ROWS empties them after every batch.
-- (A session that still has 002's tf_stage, with its primary key, works too.)
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
END;
$$;

-- (As in 002, with the previous-year rows read by a constant period range of
-- the scope: 002's join conditions let the planner scan all of
-- tradeflow.ranking, which grows with every reporter and year.)
-- Recomputes rankings, shares and YoY of one scope (dataset, reporter, flow,
-- level) for the periods from_period .. December of its year, from the
-- monthly table only (at most 12 months of one scope: never a rescan of the
-- facts). Then refreshes the previous-year columns that depend on them in
-- the following year.
CREATE OR REPLACE FUNCTION tradeflow.refresh_ranking(
    p_dataset text, p_reporter text, p_flow text, p_level text, p_from date)
RETURNS void LANGUAGE plpgsql
-- The inputs are small (one scope-year) but the statistics of freshly
-- loaded tables say "1 row": without this the planner picks nested loops
-- over CTE scans that are quadratic. Hash joins are right at every size here.
-- JIT compilation (triggered by the resulting cost figures) costs ~1 s a
-- call and never pays off for one scope-year.
SET enable_nestloop = off
SET jit = off
AS $$
DECLARE
    y_start date := date_trunc('year', p_from)::date;
    y_end   date := (date_trunc('year', p_from) + interval '1 year')::date;
BEGIN
    DELETE FROM tradeflow.ranking
     WHERE dataset = p_dataset AND reporter = p_reporter AND flow = p_flow
       AND level = p_level AND period >= p_from AND period < y_end;

    INSERT INTO tradeflow.ranking
        (dataset, reporter, flow, level, basis, period, partner, rank, value_usd, share_pct,
         prev_year_value_usd, yoy_pct, share_change_pp)
    WITH m AS (
        SELECT period, partner, value_usd
          FROM tradeflow.monthly
         WHERE dataset = p_dataset AND reporter = p_reporter AND flow = p_flow
           AND level = p_level AND period >= y_start AND period < y_end
    ), sp AS (                      -- the scope's periods with data this year
        SELECT DISTINCT period FROM m
    ), pa AS (
        SELECT DISTINCT partner FROM m
    ), run AS (                     -- running YTD per partner over the scope's periods
        SELECT sp.period, pa.partner,
               sum(m.value_usd) OVER w AS ytd, count(m.value_usd) OVER w AS seen
          FROM sp CROSS JOIN pa
          LEFT JOIN m ON m.period = sp.period AND m.partner = pa.partner
        WINDOW w AS (PARTITION BY pa.partner ORDER BY sp.period)
    ), r AS (
        SELECT 'month'::text AS basis, period, partner, value_usd FROM m WHERE period >= p_from
        UNION ALL
        SELECT 'ytd', period, partner, ytd FROM run WHERE period >= p_from AND seen > 0
    ), d AS (
        SELECT r.*,
               coalesce(max(value_usd) FILTER (WHERE partner = 'WLD') OVER w,
                        sum(value_usd) FILTER (WHERE partner <> 'WLD') OVER w) AS denom,
               rank() OVER (PARTITION BY basis, period, partner = 'WLD'
                            ORDER BY value_usd DESC) AS rk
          FROM r
        WINDOW w AS (PARTITION BY basis, period)
    ), e AS (
        SELECT basis, period, partner, value_usd,
               CASE WHEN partner = 'WLD' THEN NULL ELSE rk END AS rank,
               round(100 * value_usd / nullif(denom, 0), 4) AS share_pct
          FROM d
    )
    SELECT p_dataset, p_reporter, p_flow, p_level, e.basis, e.period, e.partner, e.rank,
           e.value_usd, e.share_pct, p.value_usd,
           CASE WHEN p.value_usd <> 0
                THEN round(100 * (e.value_usd - p.value_usd) / p.value_usd, 4) END,
           e.share_pct - p.share_pct
      FROM e
      LEFT JOIN (SELECT basis, period, partner, value_usd, share_pct
                   FROM tradeflow.ranking
                  WHERE dataset = p_dataset AND reporter = p_reporter AND flow = p_flow
                    AND level = p_level AND period >= (y_start - interval '1 year')::date
                    AND period < y_start) p
        ON p.basis = e.basis AND p.partner = e.partner
       AND p.period = (e.period - interval '1 year')::date;

    -- The previous-year columns of next year's periods that compare against
    -- the refreshed ones.
    UPDATE tradeflow.ranking n
       SET prev_year_value_usd = x.pv, yoy_pct = x.yoy, share_change_pp = x.scp
      FROM (SELECT c.basis, c.period, c.partner, p.value_usd AS pv,
                   CASE WHEN p.value_usd <> 0
                        THEN round(100 * (c.value_usd - p.value_usd) / p.value_usd, 4) END AS yoy,
                   c.share_pct - p.share_pct AS scp
              FROM tradeflow.ranking c
              LEFT JOIN (SELECT basis, period, partner, value_usd, share_pct
                           FROM tradeflow.ranking
                          WHERE dataset = p_dataset AND reporter = p_reporter
                            AND flow = p_flow AND level = p_level
                            AND period >= p_from AND period < y_end) p
                ON p.basis = c.basis AND p.partner = c.partner
               AND p.period = (c.period - interval '1 year')::date
             WHERE c.dataset = p_dataset AND c.reporter = p_reporter AND c.flow = p_flow
               AND c.level = p_level
               AND c.period >= (p_from + interval '1 year')::date
               AND c.period < (y_end + interval '1 year')::date) x
     WHERE n.dataset = p_dataset AND n.reporter = p_reporter AND n.flow = p_flow
       AND n.level = p_level AND n.basis = x.basis AND n.period = x.period
       AND n.partner = x.partner
       AND n.period >= (p_from + interval '1 year')::date
       AND n.period < (y_end + interval '1 year')::date
       -- unchanged rows are not rewritten (no dead tuples, no index churn)
       AND (n.prev_year_value_usd, n.yoy_pct, n.share_change_pp)
           IS DISTINCT FROM (x.pv, x.yoy, x.scp);
END;
$$;

-- Settle point: for everything changed since the last one
-- (tradeflow.settle_pending), refreshes rankings, shares and YoY of the
-- changed scope-years, then evaluates ranking shifts and writes the alerts to
-- the outbox in the caller's transaction; NOTIFY tradeflow_alerts for each
-- alert that is not suppressed (period before p_from). Reporters locked by
-- another transaction are left pending for a later settle point (their
-- holder settles them), so settling never waits and never deadlocks.
-- For each changed period it evaluates the period itself and the next
-- period with data (whose comparison base changed); on the YTD basis every
-- later period of the same year too (their YTD values moved).
-- The evaluation is tradeflow.evaluate_period's (004), done for all of a
-- reporter's periods in one set of statements; the alerts get their ids in
-- the same order: by period, flow, level, basis; within one, retractions
-- first (in the order of the shifts they retract), then new shifts best
-- rank first.
CREATE OR REPLACE FUNCTION tradeflow.settle_alerts(
    p_top integer, p_from date, OUT evaluated integer, OUT raised integer)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    n integer;
BEGIN
    evaluated := 0;
    raised := 0;
    IF to_regclass('pg_temp.tf_ev') IS NULL THEN  -- a session prepared before 006
        PERFORM tradeflow.prepare_session();
    END IF;

    FOR s IN SELECT DISTINCT dataset, reporter FROM tradeflow.settle_pending ORDER BY 1, 2 LOOP
        IF NOT pg_try_advisory_xact_lock(hashtextextended(s.dataset || '|' || s.reporter, 0)) THEN
            CONTINUE;
        END IF;
        DELETE FROM tf_pend;
        DELETE FROM tf_ev;
        DELETE FROM tf_shift;
        WITH d AS (
            DELETE FROM tradeflow.settle_pending
             WHERE dataset = s.dataset AND reporter = s.reporter
            RETURNING flow, level, period)
        INSERT INTO tf_pend SELECT * FROM d;

        -- Rankings of the changed scope-years, oldest year first (a year's
        -- YoY columns read the year before).
        PERFORM tradeflow.refresh_ranking(s.dataset, s.reporter, flow, level, min(period))
           FROM tf_pend
          GROUP BY flow, level, date_trunc('year', period)
          ORDER BY date_trunc('year', period), flow, level;

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
            SELECT DISTINCT py.flow, py.level, 'ytd', r.period
              FROM py JOIN tradeflow.ranking r
                ON r.dataset = s.dataset AND r.reporter = s.reporter AND r.flow = py.flow
               AND r.level = py.level AND r.basis = 'ytd' AND r.period >= py.mp
               AND r.period < (py.y + interval '1 year')::date
            UNION
            SELECT py.flow, py.level, 'ytd',
                   (SELECT min(r.period) FROM tradeflow.ranking r
                     WHERE r.dataset = s.dataset AND r.reporter = s.reporter
                       AND r.flow = py.flow AND r.level = py.level AND r.basis = 'ytd'
                       AND r.period >= (py.y + interval '1 year')::date)
              FROM py
        )
        SELECT * FROM ev WHERE period IS NOT NULL;
        GET DIAGNOSTICS n = ROW_COUNT;
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
    END LOOP;

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
