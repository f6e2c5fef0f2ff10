#!/usr/bin/env bash
# deploy/demo.sh - the whole main job on bundled sample data, from a fresh
# machine: install dependencies, build, start the local stack (Kafka +
# PostgreSQL), generate a SYNTHETIC customs and investment feed calibrated to
# published GACC figures, publish it with tradeflow-produce, aggregate it with
# tradeflow-aggregate (exactly once into PostgreSQL) and print China's top
# partners with rank, YoY and share, and ASEAN's rank history.
#
#   deploy/demo.sh [--scale K] [--keep-going]
#
# The stack keeps running afterwards (deploy/stack.sh down stops it); run
# `eval "$(deploy/stack.sh env)"` to explore with psql, kcat and the tools.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SCALE=1
while [ $# -gt 0 ]; do
    case "$1" in
    --scale) SCALE="$2"; shift 2 ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing dependencies (skipped when present)"
deploy/install-deps.sh

step "Building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" 2>&1 | grep -E 'error|warning' || true
[ -x build/bin/tradeflow-produce ] && [ -x build/bin/tradeflow-aggregate ] ||
    { echo "demo.sh: build failed" >&2; exit 1; }

step "Starting the local stack (Kafka 4.x KRaft + PostgreSQL on 127.0.0.1)"
deploy/stack.sh up
eval "$(deploy/stack.sh env)"
# A clean slate for the demo's own database, topics and consumer group.
export PGDATABASE=tradeflow_demo
PGOPTIONS="-c client_min_messages=warning" psql -q -d postgres -c "DROP DATABASE IF EXISTS tradeflow_demo" \
    -c "CREATE DATABASE tradeflow_demo" >/dev/null
RUN="demo$(date +%s)"
CUSTOMS_TOPIC="tradeflow.customs.$RUN"
INVEST_TOPIC="tradeflow.investment.$RUN"

step "Generating the SYNTHETIC sample feed (scale $SCALE)"
OUT="$REPO/out/demo"
mkdir -p "$OUT"
producers/tradeflow-genfeed --kind customs --format csv --scale "$SCALE" --out "$OUT/customs.csv"
producers/tradeflow-genfeed --kind investment --format jsonl --scale "$SCALE" --out "$OUT/investment.jsonl"
wc -l "$OUT/customs.csv" "$OUT/investment.jsonl"

step "Publishing to Kafka (one transaction per file)"
build/bin/tradeflow-produce --kind customs --topic "$CUSTOMS_TOPIC" "$OUT/customs.csv"
build/bin/tradeflow-produce --kind investment --topic "$INVEST_TOPIC" "$OUT/investment.jsonl"

step "Publishing the customs file again (a re-sent file must change nothing)"
build/bin/tradeflow-produce --kind customs --topic "$CUSTOMS_TOPIC" "$OUT/customs.csv"

step "Aggregating into PostgreSQL (exactly once; exits when caught up)"
time build/bin/tradeflow-aggregate --exit-at-end -g "demo-$RUN" \
    -t "$CUSTOMS_TOPIC" -t "$INVEST_TOPIC"

step "China's top trading partners, Jan-Nov 2020 (YTD, export + import, groups)"
build/bin/tradeflow-report --reporter CHN --period 2020-11 --format text --alerts 5

step "China's top trading partners, latest YTD in the feed"
psql -X -P footer=off -c "
SELECT to_char(period, 'YYYY-MM') AS ytd_to, rank AS \"#\", partner,
       to_char(value_usd / 1e9, 'FM999G990D00') AS \"US\$ bn\",
       to_char(yoy_pct, 'FMS990D0') || '%' AS \"YoY\",
       to_char(share_pct, 'FM990D0') || '%' AS \"share\"
  FROM reporting.partner_ranking
 WHERE dataset = 'customs' AND reporter = 'CHN' AND flow = 'total' AND basis = 'ytd'
   AND level = 'group' AND rank <= 5
   AND period = (SELECT max(period) FROM reporting.partner_ranking
                  WHERE dataset = 'customs' AND reporter = 'CHN' AND basis = 'ytd')
 ORDER BY rank, partner"

step "ASEAN's rank among China's partners (YTD, export + import)"
psql -X -P footer=off -c "
SELECT to_char(period, 'YYYY-MM') AS ytd_to, rank AS \"#\",
       to_char(value_usd / 1e9, 'FM999G990D00') AS \"US\$ bn\",
       to_char(yoy_pct, 'FMS990D0') || '%' AS \"YoY\",
       to_char(share_pct, 'FM990D0') || '%' AS \"share\"
  FROM reporting.partner_ranking
 WHERE dataset = 'customs' AND reporter = 'CHN' AND flow = 'total' AND basis = 'ytd'
   AND level = 'group' AND partner = 'ASEAN'
   AND (extract(month FROM period) IN (2, 12) OR period = DATE '2020-11-01')
 ORDER BY period"

step "China's outward direct investment in ASEAN, Jan-Sep (YTD)"
psql -X -P footer=off -c "
SELECT to_char(period, 'YYYY-MM') AS ytd_to,
       to_char(value_usd / 1e9, 'FM999G990D00') AS \"US\$ bn\",
       to_char(yoy_pct, 'FMS990D0') || '%' AS \"YoY\"
  FROM reporting.partner_ranking
 WHERE dataset = 'investment' AND reporter = 'CHN' AND flow = 'outward' AND basis = 'ytd'
   AND level = 'group' AND partner = 'ASEAN' AND extract(month FROM period) = 9
 ORDER BY period"

step "The report: one self-contained HTML file, read as the BI role tradeflow_reader"
REPORT="$(PGOPTIONS='-c role=tradeflow_reader' build/bin/tradeflow-report --reporter CHN \
    --period 2020-11 --note "SYNTHETIC data calibrated to GACC's published figures (docs/sample-data.md)" \
    --out "$OUT/report-CHN-2020-11.html")"

echo
echo "Synthetic data, calibrated to GACC's published figures (see docs/sample-data.md)."
echo "Report: $REPORT (open it in a browser)"
echo "Explore: eval \"\$(deploy/stack.sh env)\"; PGDATABASE=tradeflow_demo psql"
