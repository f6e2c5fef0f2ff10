-- 002_apply.sql - the batch apply engine, server side.
--
-- The consumer COPYs a batch (deduplicated per record_id, highest revision
-- first) into its session's temporary table tf_stage and calls
-- tradeflow.apply_stage() in the transaction that also stores the Kafka
-- offsets. Everything a batch changes commits or rolls back together.

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
      LEFT JOIN tradeflow.ranking p
        ON p.dataset = p_dataset AND p.reporter = p_reporter AND p.flow = p_flow
       AND p.level = p_level AND p.basis = e.basis AND p.partner = e.partner
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
              LEFT JOIN tradeflow.ranking p
                ON p.dataset = p_dataset AND p.reporter = p_reporter AND p.flow = p_flow
               AND p.level = p_level AND p.basis = c.basis AND p.partner = c.partner
               AND p.period = (c.period - interval '1 year')::date
             WHERE c.dataset = p_dataset AND c.reporter = p_reporter AND c.flow = p_flow
               AND c.level = p_level
               AND c.period >= (p_from + interval '1 year')::date
               AND c.period < (y_end + interval '1 year')::date) x
     WHERE n.dataset = p_dataset AND n.reporter = p_reporter AND n.flow = p_flow
       AND n.level = p_level AND n.basis = x.basis AND n.period = x.period
       AND n.partner = x.partner
       -- unchanged rows are not rewritten (no dead tuples, no index churn)
       AND (n.prev_year_value_usd, n.yoy_pct, n.share_change_pp)
           IS DISTINCT FROM (x.pv, x.yoy, x.scp);
END;
$$;

-- Maps a partner code to its group in a month (itself when in no group).
CREATE OR REPLACE FUNCTION tradeflow.group_of(p_partner text, p_period date)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT group_code FROM tradeflow.group_members
          WHERE member = p_partner AND p_period BETWEEN valid_from AND valid_to
          ORDER BY group_code LIMIT 1),
        p_partner);
$$;

-- Applies the batch in pg_temp.tf_stage. Returns counts:
--   applied    = new records and higher revisions written,
--   superseded = of those, how many replaced an earlier revision,
--   duplicates = records with an equal or lower revision (no effect).
-- Serialisation: every writer takes transaction-scoped advisory locks on the
-- (dataset, reporter) pairs it will touch, in ascending key order, so two
-- consumers never deadlock and never lose an update to a reporter's
-- rankings. If a record's stored reporter changed between the lookup and the
-- lock, raises SQLSTATE 40001 and the client retries the batch.
CREATE OR REPLACE FUNCTION tradeflow.apply_stage(
    OUT applied integer, OUT superseded integer, OUT duplicates integer)
LANGUAGE plpgsql AS $$
DECLARE
    keys   bigint[];
    k      bigint;
    staged integer;
BEGIN
    SELECT count(*) INTO staged FROM tf_stage;

    SELECT array_agg(DISTINCT x.k ORDER BY x.k) INTO keys FROM (
        SELECT hashtextextended(s.dataset || '|' || s.reporter, 0) AS k FROM tf_stage s
        UNION
        SELECT hashtextextended(f.dataset || '|' || f.reporter, 0)
          FROM tf_stage s JOIN tradeflow.facts f USING (dataset, record_id)) x;
    IF keys IS NOT NULL THEN
        FOREACH k IN ARRAY keys LOOP
            PERFORM pg_advisory_xact_lock(k);
        END LOOP;
    END IF;

    -- Lock the existing facts and check that their reporters are covered.
    PERFORM 1 FROM tradeflow.facts f JOIN tf_stage s USING (dataset, record_id)
      ORDER BY f.dataset, f.record_id FOR UPDATE OF f;
    IF EXISTS (SELECT 1 FROM tf_stage s JOIN tradeflow.facts f USING (dataset, record_id)
                WHERE NOT hashtextextended(f.dataset || '|' || f.reporter, 0) = ANY (keys)) THEN
        RAISE EXCEPTION 'a record''s reporter changed concurrently; retry'
              USING ERRCODE = '40001';
    END IF;

    SELECT count(*) FILTER (WHERE f.record_id IS NULL OR s.revision > f.revision),
           count(*) FILTER (WHERE f.record_id IS NOT NULL AND s.revision > f.revision)
      INTO applied, superseded
      FROM tf_stage s LEFT JOIN tradeflow.facts f USING (dataset, record_id);
    duplicates := staged - applied;

    DELETE FROM tf_touched;  -- (TRUNCATE would make a new file every batch)

    -- New record_ids are inserted in key order with a plain INSERT: if another
    -- consumer inserts the same record_id concurrently, this fails with a
    -- unique violation (23505) and the client retries the batch, which then
    -- sees the other's fact (and locks its reporter). Existing facts were
    -- locked above and are updated in place.
    WITH chg AS (
        SELECT s.*, f.record_id IS NOT NULL AS had_old,
               f.reporter AS o_reporter, f.partner AS o_partner, f.flow AS o_flow,
               f.period AS o_period, f.value_usd AS o_value
          FROM tf_stage s
          LEFT JOIN tradeflow.facts f USING (dataset, record_id)
         WHERE f.record_id IS NULL OR s.revision > f.revision
    ), ins_new AS (
        INSERT INTO tradeflow.facts
            (dataset, record_id, revision, reporter, partner, flow, period, value_usd,
             hs_code, quantity, unit, sector, source)
        SELECT dataset, record_id, revision, reporter, partner, flow, period, value_usd,
               hs_code, quantity, unit, sector, source
          FROM chg WHERE NOT had_old ORDER BY dataset, record_id
        RETURNING 1
    ), upd AS (
        UPDATE tradeflow.facts f
           SET revision = c.revision, reporter = c.reporter, partner = c.partner,
               flow = c.flow, period = c.period, value_usd = c.value_usd,
               hs_code = c.hs_code, quantity = c.quantity, unit = c.unit, sector = c.sector,
               source = c.source, applied_at = now()
          FROM chg c
         WHERE c.had_old AND f.dataset = c.dataset AND f.record_id = c.record_id
        RETURNING 1
    ), d AS (                       -- +new, -old
        SELECT dataset, reporter, partner, flow, period, value_usd AS v, 1 AS n FROM chg
        UNION ALL
        SELECT dataset, o_reporter, o_partner, o_flow, o_period, -o_value, -1 FROM chg WHERE had_old
    ), d2 AS (                      -- customs: total = export + import
        SELECT * FROM d
        UNION ALL
        SELECT dataset, reporter, partner, 'total', period, v, n FROM d WHERE dataset = 'customs'
    ), gm AS MATERIALIZED (         -- group of each (partner, month), looked up once
        SELECT partner, period, tradeflow.group_of(partner, period) AS grp
          FROM (SELECT DISTINCT partner, period FROM d) x
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

    -- Remember what changed for the next settle point's alert evaluation.
    INSERT INTO tradeflow.settle_pending (dataset, reporter, flow, level, period)
    SELECT DISTINCT dataset, reporter, flow, level, period FROM tf_touched
        ON CONFLICT DO NOTHING;

    PERFORM tradeflow.refresh_ranking(dataset, reporter, flow, level, min(period))
       FROM tf_touched
      GROUP BY dataset, reporter, flow, level, date_trunc('year', period)
      ORDER BY dataset, reporter, flow, level, date_trunc('year', period);
END;
$$;

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
        hs_code text, quantity numeric(23,3), unit text, sector text, source text,
        PRIMARY KEY (dataset, record_id)
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_touched (
        dataset text, reporter text, flow text, level text, period date, partner text,
        facts integer
    ) ON COMMIT DELETE ROWS;
END;
$$;

-- Recomputes the group level and every ranking from the partner-level
-- monthly table; run after editing tradeflow.group_members
-- (`tradeflow-aggregate rebuild`). Locks every reporter it touches.
CREATE OR REPLACE FUNCTION tradeflow.rebuild_groups() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT hashtextextended(dataset || '|' || reporter, 0) AS k
               FROM tradeflow.monthly ORDER BY 1) x;
    DELETE FROM tradeflow.monthly WHERE level = 'group';
    INSERT INTO tradeflow.monthly (dataset, reporter, flow, level, period, partner, value_usd, facts)
    SELECT dataset, reporter, flow, 'group', period, tradeflow.group_of(partner, period),
           sum(value_usd), sum(facts)
      FROM tradeflow.monthly WHERE level = 'partner'
     GROUP BY 1, 2, 3, 5, 6;
    DELETE FROM tradeflow.ranking;
    FOR r IN SELECT dataset, reporter, flow, level, date_trunc('year', period)::date AS y
               FROM tradeflow.monthly GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 LOOP
        PERFORM tradeflow.refresh_ranking(r.dataset, r.reporter, r.flow, r.level, r.y);
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;
