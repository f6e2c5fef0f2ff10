-- 004_alerts.sql - ranking-shift alerts: detection at settle points, an
-- outbox table written in the batch's transaction, NOTIFY, and the state the
-- Kafka relay needs.

-- The outbox. Append-only but for `active` (a shift that was later
-- retracted) and `published_at` (set by the relay after Kafka's ack).
CREATE TABLE tradeflow.alerts (
    alert_id    bigserial PRIMARY KEY,
    dataset     text NOT NULL,
    reporter    text NOT NULL,
    flow        text NOT NULL,
    basis       text NOT NULL,
    level       text NOT NULL,
    period      date NOT NULL,
    partner     text NOT NULL,
    old_rank    integer,
    new_rank    integer,
    value_usd   numeric(22,2),
    kind        text NOT NULL CHECK (kind IN ('shift', 'retraction')),
    detected_at timestamptz NOT NULL DEFAULT now(),
    retracts    bigint REFERENCES tradeflow.alerts (alert_id),
    active      boolean NOT NULL DEFAULT true,  -- shift not (yet) retracted
    suppressed  boolean NOT NULL DEFAULT false, -- before --alerts-from: table only
    published_at timestamptz                    -- acknowledged by Kafka
);
CREATE INDEX alerts_scope ON tradeflow.alerts (dataset, reporter, flow, basis, level, period)
    WHERE active AND kind = 'shift';
CREATE INDEX alerts_unpublished ON tradeflow.alerts (alert_id)
    WHERE published_at IS NULL AND NOT suppressed;

-- Evaluates one (scope, basis, period): the shifts it shows now against the
-- most recent earlier period of the scope with data, reconciled with the
-- shifts already alerted for it (new ones alerted, vanished ones retracted).
CREATE OR REPLACE FUNCTION tradeflow.evaluate_period(
    p_dataset text, p_reporter text, p_flow text, p_level text, p_basis text,
    p_period date, p_top integer, p_from date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    prev date;
    n integer := 0;
    k integer;
    a record;
BEGIN
    SELECT max(period) INTO prev FROM tradeflow.ranking
     WHERE dataset = p_dataset AND reporter = p_reporter AND flow = p_flow
       AND level = p_level AND basis = p_basis AND period < p_period;

    DELETE FROM tf_shifts;
    IF prev IS NOT NULL THEN
        INSERT INTO tf_shifts
        SELECT coalesce(c.partner, o.partner),
               CASE WHEN o.rank <= p_top THEN o.rank END,
               CASE WHEN c.rank <= p_top THEN c.rank END,
               c.value_usd
          FROM (SELECT partner, rank, value_usd FROM tradeflow.ranking
                 WHERE dataset = p_dataset AND reporter = p_reporter AND flow = p_flow
                   AND level = p_level AND basis = p_basis AND period = p_period
                   AND rank IS NOT NULL) c
          FULL JOIN
               (SELECT partner, rank FROM tradeflow.ranking
                 WHERE dataset = p_dataset AND reporter = p_reporter AND flow = p_flow
                   AND level = p_level AND basis = p_basis AND period = prev
                   AND rank IS NOT NULL) o USING (partner)
         WHERE (c.rank <= p_top OR o.rank <= p_top)
           AND (CASE WHEN o.rank <= p_top THEN o.rank END)
               IS DISTINCT FROM (CASE WHEN c.rank <= p_top THEN c.rank END);
    END IF;

    -- Alerted shifts that no longer hold: retract them.
    FOR a IN
        SELECT al.* FROM tradeflow.alerts al
         WHERE al.dataset = p_dataset AND al.reporter = p_reporter AND al.flow = p_flow
           AND al.level = p_level AND al.basis = p_basis AND al.period = p_period
           AND al.kind = 'shift' AND al.active
           AND NOT EXISTS (SELECT 1 FROM tf_shifts s WHERE s.partner = al.partner
                              AND s.old_rank IS NOT DISTINCT FROM al.old_rank
                              AND s.new_rank IS NOT DISTINCT FROM al.new_rank)
         ORDER BY al.alert_id
    LOOP
        UPDATE tradeflow.alerts SET active = false WHERE alert_id = a.alert_id;
        INSERT INTO tradeflow.alerts (dataset, reporter, flow, basis, level, period, partner,
                                      old_rank, new_rank, value_usd, kind, retracts,
                                      active, suppressed)
        VALUES (a.dataset, a.reporter, a.flow, a.basis, a.level, a.period, a.partner,
                a.old_rank, a.new_rank,
                (SELECT value_usd FROM tradeflow.ranking r
                  WHERE r.dataset = a.dataset AND r.reporter = a.reporter AND r.flow = a.flow
                    AND r.level = a.level AND r.basis = a.basis AND r.period = a.period
                    AND r.partner = a.partner),
                'retraction', a.alert_id, false, p_period < p_from);
        n := n + 1;
    END LOOP;

    -- New shifts, best rank first.
    INSERT INTO tradeflow.alerts (dataset, reporter, flow, basis, level, period, partner,
                                  old_rank, new_rank, value_usd, kind, suppressed)
    SELECT p_dataset, p_reporter, p_flow, p_basis, p_level, p_period, s.partner,
           s.old_rank, s.new_rank, s.value_usd, 'shift', p_period < p_from
      FROM tf_shifts s
     WHERE NOT EXISTS (SELECT 1 FROM tradeflow.alerts al
                        WHERE al.dataset = p_dataset AND al.reporter = p_reporter
                          AND al.flow = p_flow AND al.level = p_level AND al.basis = p_basis
                          AND al.period = p_period AND al.kind = 'shift' AND al.active
                          AND al.partner = s.partner
                          AND al.old_rank IS NOT DISTINCT FROM s.old_rank
                          AND al.new_rank IS NOT DISTINCT FROM s.new_rank)
     ORDER BY s.new_rank NULLS LAST, s.old_rank NULLS LAST, s.partner;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN n + k;
END;
$$;

-- Evaluates ranking shifts for everything changed since the last settle
-- point (tradeflow.settle_pending) and writes the alerts to the outbox in
-- the caller's transaction, in period order; NOTIFY tradeflow_alerts for each
-- alert that is not suppressed (period before p_from). Reporters locked by
-- another transaction are left pending for a later settle point (their
-- holder settles them), so settling never waits and never deadlocks.
-- For each changed period it evaluates the period itself and the next
-- period with data (whose comparison base changed); on the YTD basis every
-- later period of the same year too (their YTD values moved).
CREATE OR REPLACE FUNCTION tradeflow.settle_alerts(
    p_top integer, p_from date, OUT evaluated integer, OUT raised integer)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    e record;
BEGIN
    evaluated := 0;
    raised := 0;
    CREATE TEMP TABLE IF NOT EXISTS tf_shifts (
        partner text, old_rank integer, new_rank integer, value_usd numeric
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS tf_pend (
        flow text, level text, period date
    ) ON COMMIT DELETE ROWS;

    FOR s IN SELECT DISTINCT dataset, reporter FROM tradeflow.settle_pending ORDER BY 1, 2 LOOP
        IF NOT pg_try_advisory_xact_lock(hashtextextended(s.dataset || '|' || s.reporter, 0)) THEN
            CONTINUE;
        END IF;
        DELETE FROM tf_pend;
        WITH d AS (
            DELETE FROM tradeflow.settle_pending
             WHERE dataset = s.dataset AND reporter = s.reporter
            RETURNING flow, level, period)
        INSERT INTO tf_pend SELECT * FROM d;

        FOR e IN
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
            SELECT * FROM ev WHERE period IS NOT NULL ORDER BY period, flow, level, basis
        LOOP
            raised := raised + tradeflow.evaluate_period(s.dataset, s.reporter, e.flow,
                                                         e.level, e.basis, e.period, p_top,
                                                         p_from);
            evaluated := evaluated + 1;
        END LOOP;
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

CREATE OR REPLACE VIEW reporting.ranking_alerts AS
SELECT alert_id, dataset, reporter, flow, basis, level, period, partner, old_rank, new_rank,
       value_usd, kind, detected_at, retracts, published_at IS NOT NULL AS published,
       suppressed
  FROM tradeflow.alerts;
COMMENT ON VIEW reporting.ranking_alerts IS
  'Ranking-shift alerts (kind shift | retraction) per scope and period. See docs/reporting.md.';
GRANT SELECT ON reporting.ranking_alerts TO tradeflow_reader;
