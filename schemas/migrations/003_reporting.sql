-- 003_reporting.sql - the stable reporting interface (docs/reporting.md).
-- BI tools read these views through the read-only role tradeflow_reader.

CREATE SCHEMA IF NOT EXISTS reporting;

CREATE OR REPLACE VIEW reporting.partner_ranking AS
SELECT dataset, reporter, flow, basis, period, level, partner, rank,
       value_usd, share_pct, prev_year_value_usd, yoy_pct, share_change_pp
  FROM tradeflow.ranking;

CREATE OR REPLACE VIEW reporting.partner_monthly AS
SELECT m.dataset, m.reporter, m.partner, m.flow, m.period, m.value_usd,
       y.value_usd AS ytd_value_usd
  FROM tradeflow.monthly m
  JOIN tradeflow.ranking y
    ON y.dataset = m.dataset AND y.reporter = m.reporter AND y.flow = m.flow
   AND y.level = 'partner' AND y.basis = 'ytd' AND y.period = m.period
   AND y.partner = m.partner
 WHERE m.level = 'partner';

COMMENT ON VIEW reporting.partner_ranking IS
  'Partner rankings with value, share, YoY and share change per dataset, reporter, flow, basis (month|ytd), period and level (partner|group). See docs/reporting.md.';
COMMENT ON VIEW reporting.partner_monthly IS
  'Monthly and year-to-date values per partner (partner level). See docs/reporting.md.';

-- Roles are cluster-wide: create them once, tolerate a concurrent creator.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tradeflow_reader') THEN
        CREATE ROLE tradeflow_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END;
$$;

GRANT USAGE ON SCHEMA reporting TO tradeflow_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO tradeflow_reader;
REVOKE ALL ON SCHEMA tradeflow FROM PUBLIC;
