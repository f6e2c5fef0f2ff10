-- 007_unbounded_totals.sql - totals that cannot overflow (issue 14).
--
-- A record's value_usd is at most 9999999999999999.99 (the Avro schemas'
-- decimal(18,2), checked by tf_record_validate on both sides), but a total
-- adds up any number of records: monthly sums per partner, the 'total' flow
-- (export + import), the group level (every member), YTD (twelve months)
-- and the ranking/alert copies of those. numeric(22,2) overflowed at the
-- 10,001st maximal record of one partner-month (SQLSTATE 22003). These
-- columns become unconstrained numeric: exact like before (the sums of
-- scale-2 values keep scale 2), with PostgreSQL's limit of 131072 digits
-- before the point, which no sum of records can reach (2^63 records of
-- 10^16 USD are below 10^36). Same storage format; the typmod only rounded.
--
-- The reporting views read these columns, so they are dropped and created
-- again with the same definitions (column names and order unchanged; only
-- the reported type of the value columns changes from numeric(22,2) to
-- numeric). facts.value_usd stays numeric(20,2): it holds one record.

DROP VIEW IF EXISTS reporting.partner_monthly;
DROP VIEW IF EXISTS reporting.partner_ranking;
DROP VIEW IF EXISTS reporting.ranking_alerts;

ALTER TABLE tradeflow.monthly ALTER COLUMN value_usd TYPE numeric;
ALTER TABLE tradeflow.ranking ALTER COLUMN value_usd TYPE numeric,
                              ALTER COLUMN prev_year_value_usd TYPE numeric;
ALTER TABLE tradeflow.alerts ALTER COLUMN value_usd TYPE numeric;

CREATE VIEW reporting.partner_ranking AS
SELECT dataset, reporter, flow, basis, period, level, partner, rank,
       value_usd, share_pct, prev_year_value_usd, yoy_pct, share_change_pp
  FROM tradeflow.ranking;

CREATE VIEW reporting.partner_monthly AS
SELECT m.dataset, m.reporter, m.partner, m.flow, m.period, m.value_usd,
       y.value_usd AS ytd_value_usd
  FROM tradeflow.monthly m
  JOIN tradeflow.ranking y
    ON y.dataset = m.dataset AND y.reporter = m.reporter AND y.flow = m.flow
   AND y.level = 'partner' AND y.basis = 'ytd' AND y.period = m.period
   AND y.partner = m.partner
 WHERE m.level = 'partner';

CREATE VIEW reporting.ranking_alerts AS
SELECT alert_id, dataset, reporter, flow, basis, level, period, partner, old_rank, new_rank,
       value_usd, kind, detected_at, retracts, published_at IS NOT NULL AS published,
       suppressed
  FROM tradeflow.alerts;

COMMENT ON VIEW reporting.partner_ranking IS
  'Partner rankings with value, share, YoY and share change per dataset, reporter, flow, basis (month|ytd), period and level (partner|group). See docs/reporting.md.';
COMMENT ON VIEW reporting.partner_monthly IS
  'Monthly and year-to-date values per partner (partner level). See docs/reporting.md.';
COMMENT ON VIEW reporting.ranking_alerts IS
  'Ranking-shift alerts (kind shift | retraction) per scope and period. See docs/reporting.md.';

GRANT SELECT ON reporting.partner_ranking, reporting.partner_monthly, reporting.ranking_alerts
   TO tradeflow_reader, tradeflow_writer;
