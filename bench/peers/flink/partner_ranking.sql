-- bench/peers/flink/partner_ranking.sql - reporting.partner_ranking
-- (docs/reporting.md) in Flink SQL, as a Flink user would write it. The
-- table `src` (record_id, revision, reporter, partner, flow, period,
-- value_usd) is the Kafka topic, registered by FlinkPeer.java; ${...} are
-- filled in by it. Statements end with a ';' at the end of a line.

-- Deduplication: the highest revision of each record_id (Top-1; an equal
-- revision arriving later does not replace the first). A higher revision
-- retracts the row it replaces downstream.
CREATE TEMPORARY VIEW facts AS
SELECT record_id, revision, reporter, partner, flow, `period`, value_usd FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY record_id ORDER BY revision DESC) AS rn
      FROM src)
 WHERE rn = 1;

-- customs: total = export + import; two levels: partner codes as they came,
-- and members mapped into their group with the membership valid in that
-- month (tradeflow.group_members as shipped, written as a CASE).
CREATE TEMPORARY VIEW flows AS
SELECT reporter, partner, flow, `period`, value_usd FROM facts
UNION ALL
SELECT reporter, partner, 'total', `period`, value_usd FROM facts;

CREATE TEMPORARY VIEW levels AS
SELECT reporter, flow, 'partner' AS lvl, `period`, partner, value_usd FROM flows
UNION ALL
SELECT reporter, flow, 'group' AS lvl, `period`,
       CASE WHEN partner IN ('BRN','KHM','IDN','LAO','MYS','MMR','PHL','SGP','THA','VNM')
            THEN 'ASEAN'
            WHEN partner IN ('AUT','BEL','BGR','HRV','CYP','CZE','DNK','EST','FIN','FRA','DEU',
                             'GRC','HUN','IRL','ITA','LVA','LTU','LUX','MLT','NLD','POL','PRT',
                             'ROU','SVK','SVN','ESP','SWE')
              OR (partner = 'GBR' AND `period` <= DATE '2020-01-31')
            THEN 'EU'
            ELSE partner END AS partner,
       value_usd
  FROM flows;

-- Monthly sums; a retracted fact leaves its old group (and the group goes
-- away when its last fact does).
CREATE TEMPORARY VIEW monthly AS
SELECT reporter, flow, lvl, `period`, partner, SUM(value_usd) AS v
  FROM levels
 GROUP BY reporter, flow, lvl, `period`, partner;

-- The periods of a scope: the months in which any of its partners has data.
CREATE TEMPORARY VIEW scope_periods AS
SELECT DISTINCT reporter, flow, lvl, `period`, YEAR(`period`) AS yr FROM monthly;

-- YTD: for each period of the scope, every partner with data in that year up
-- to that month (a year without January starts at February).
CREATE TEMPORARY VIEW ytd AS
SELECT s.reporter, s.flow, s.lvl, s.`period`, m.partner, SUM(m.v) AS v
  FROM scope_periods s
  JOIN (SELECT reporter, flow, lvl, `period`, partner, v, YEAR(`period`) AS yr FROM monthly) m
    ON m.reporter = s.reporter AND m.flow = s.flow AND m.lvl = s.lvl AND m.yr = s.yr
   AND m.`period` <= s.`period`
 GROUP BY s.reporter, s.flow, s.lvl, s.`period`, m.partner;

CREATE TEMPORARY VIEW both_bases AS
SELECT reporter, flow, lvl, 'month' AS basis, `period`, partner, v, partner = 'WLD' AS is_wld
  FROM monthly
UNION ALL
SELECT reporter, flow, lvl, 'ytd' AS basis, `period`, partner, v, partner = 'WLD' AS is_wld
  FROM ytd;

-- The total a share is of: the WLD value if one was published, else the sum
-- over the partners.
CREATE TEMPORARY VIEW totals AS
SELECT reporter, flow, lvl, basis, `period`,
       COALESCE(MAX(v) FILTER (WHERE is_wld), SUM(v) FILTER (WHERE NOT is_wld)) AS total
  FROM both_bases
 GROUP BY reporter, flow, lvl, basis, `period`;

-- Rank of every partner (WLD apart): Flink's streaming Top-N with a bound
-- above any scope's number of partners.
CREATE TEMPORARY VIEW ranked AS
SELECT * FROM (
    SELECT reporter, flow, lvl, basis, `period`, partner, v, is_wld,
           ${RANK_FN}() OVER (PARTITION BY reporter, flow, lvl, basis, `period`, is_wld
                              ORDER BY v DESC) AS rk
      FROM both_bases)
 WHERE rk <= ${TOP_N};

CREATE TEMPORARY VIEW shares AS
SELECT r.reporter, r.flow, r.lvl, r.basis, r.`period`, r.partner, r.v,
       CASE WHEN r.is_wld THEN CAST(NULL AS INT) ELSE CAST(r.rk AS INT) END AS rk,
       -- (DECIMAL division keeps max(6, ...) digits: a quotient of DECIMAL(38, 2)s has 6, and
       -- ROUND(.., 4) of that rounds twice, 1 in ~100 shares ends 0.0001 off PostgreSQL's
       -- numeric; 20 digits in the dividend give 18 in the quotient.)
       CAST(ROUND(CAST(100 * r.v AS DECIMAL(38, 20)) / NULLIF(t.total, 0), 4) AS DECIMAL(38, 4))
           AS share_pct
  FROM ranked r
  JOIN totals t
    ON t.reporter = r.reporter AND t.flow = r.flow AND t.lvl = r.lvl AND t.basis = r.basis
   AND t.`period` = r.`period`;

CREATE TABLE sink (
    dataset STRING, reporter STRING, flow STRING, basis STRING, `period` DATE, `level` STRING,
    partner STRING, `rank` INT, value_usd DECIMAL(22, 2), share_pct DECIMAL(38, 4),
    prev_year_value_usd DECIMAL(22, 2), yoy_pct DECIMAL(38, 4), share_change_pp DECIMAL(38, 4),
    PRIMARY KEY (dataset, reporter, flow, basis, `period`, `level`, partner) NOT ENFORCED
) WITH (
    'connector' = 'jdbc',
    'url' = '${JDBC_URL}',
    'table-name' = '${SINK_TABLE}',
    'username' = '${JDBC_USER}',
    'password' = '${JDBC_PASSWORD}',
    'sink.buffer-flush.max-rows' = '${FLUSH_ROWS}',
    'sink.buffer-flush.interval' = '${FLUSH_INTERVAL}',
    'sink.parallelism' = '${SINK_PARALLELISM}'
);

-- YoY and share change: the same partner, scope and basis 12 months earlier.
INSERT INTO sink
SELECT 'customs', c.reporter, c.flow, c.basis, c.`period`, c.lvl, c.partner, c.rk,
       CAST(c.v AS DECIMAL(22, 2)), c.share_pct,
       CAST(p.v AS DECIMAL(22, 2)),
       CAST(CASE WHEN p.v <> 0 THEN ROUND(CAST(100 * (c.v - p.v) AS DECIMAL(38, 20)) / p.v, 4) END
            AS DECIMAL(38, 4)),
       CAST(c.share_pct - p.share_pct AS DECIMAL(38, 4))
  FROM shares c
  LEFT JOIN (SELECT reporter, flow, lvl, basis, `period` + INTERVAL '1' YEAR AS next_period,
                    partner, v, share_pct
               FROM shares) p
    ON p.reporter = c.reporter AND p.flow = c.flow AND p.lvl = c.lvl AND p.basis = c.basis
   AND p.partner = c.partner AND p.next_period = c.`period`;
