#!/usr/bin/env bash
# DOMAIN.md semantics on real Kafka + PostgreSQL, case by case: revisions
# that change the value or the dimensions (partner, flow, period), exact
# duplicates, equal and lower revisions, out-of-order revisions on different
# partitions, a missing January, WLD vs sum-of-partners denominators,
# EU28 -> EU27, ties, a group code sent as a partner, huge values, investment
# YoY. Checked by hand-computed values AND against the independent oracle.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_semantics
D="$TF_SOURCE_DIR/tests/integration/agg"
tf_new_workdir W
TC="$(tf_topic customs)"
TI="$(tf_topic investment)"

# File 3 carries a LOWER revision of d1 with another partner (so another key
# and most likely another partition) sent after the higher one.
produce customs "$TC" "$D/semantics1.csv" "$D/semantics2.csv" "$D/semantics3.csv"
produce investment "$TI" "$D/semantics_inv.jsonl"
(TF_AGG_LOG=info aggregate "grp-$TC" "$TC" "$TI") 2>"$W/first.log" ||
    { tail -n 30 "$W/first.log" >&2; fail "the first run failed (its log above)"; }

# What was consumed from where: the consumer was assigned every partition of
# both topics, consumed exactly the messages in them (counted by kcat), and
# the offsets it stored in PostgreSQL are at the end of every partition.
for t in "$TC" "$TI"; do
    expect "partitions of $t assigned" \
        "$(grep -o "assigned $t \[[0-9]*\]" "$W/first.log" | sort -u | wc -l)" 6
done
expect "messages consumed by the first run" "$(done_stat "$W/first.log" consumed)" \
    "$(kafka_count "$TC" "$TI")"
AGG_OFFSETS_VERBOSE=1 offsets_at_end "grp-$TC" "$TC" "$TI" ||
    fail "the first run's stored offsets are not at the end of every partition"
echo "ok: stored offsets at the end of all 12 partitions"

rk="select rank from reporting.partner_ranking where dataset='customs' and reporter='CHN'"
val="select value_usd from reporting.partner_ranking where dataset='customs' and reporter='CHN'"
expect "revised value (THA import 2019-02)" \
    "$(q "$val and flow='import' and basis='month' and level='partner' and period='2019-02-01' and partner='THA'")" 60.00
expect "dimension change leaves no KOR row" \
    "$(q "select count(*) from reporting.partner_ranking where partner='KOR'")" 0
expect "dimension change lands on JPN import 2020-04" \
    "$(q "$val and flow='import' and basis='month' and level='partner' and period='2020-04-01' and partner='JPN'")" 7.00
expect "lower revision ignored (MYS 2020-05)" \
    "$(q "$val and flow='export' and basis='month' and level='partner' and period='2020-05-01' and partner='MYS'")" 40.00
expect "out-of-order lower revision on another key ignored (SGP)" \
    "$(q "$val and flow='export' and basis='month' and level='partner' and period='2020-06-01' and partner='SGP'")" 20.00
expect "no IDN from the stale revision" \
    "$(q "select count(*) from reporting.partner_ranking where partner='IDN'")" 0
expect "duplicates counted once (VNM export 2019-02)" \
    "$(q "$val and flow='export' and basis='month' and level='partner' and period='2019-02-01' and partner='VNM'")" 100.00
expect "EU28 in 2019 includes GBR" \
    "$(q "$val and flow='export' and basis='month' and level='group' and period='2019-02-01' and partner='EU'")" 100.00
expect "EU27 from 2020-02 excludes GBR" \
    "$(q "$val and flow='export' and basis='month' and level='group' and period='2020-02-01' and partner='EU'")" 90.00
expect "GBR on its own at group level from 2020-02" \
    "$(q "$val and flow='export' and basis='month' and level='group' and period='2020-02-01' and partner='GBR'")" 30.00
expect "ASEAN group = members + the group code itself (2020-02 export)" \
    "$(q "$val and flow='export' and basis='month' and level='group' and period='2020-02-01' and partner='ASEAN'")" 111.00
expect "tie: VNM and USA share rank 1" \
    "$(q "select string_agg(partner || '=' || rank, ',' order by partner) from reporting.partner_ranking where dataset='customs' and flow='export' and basis='month' and level='partner' and period='2020-02-01' and partner in ('VNM','USA','DEU')")" \
    "DEU=3,USA=1,VNM=1"
expect "WLD is not ranked" \
    "$(q "select count(*) from reporting.partner_ranking where partner='WLD' and rank is not null")" 0
expect "share against WLD (USA export 2019-02 = 120/1000)" \
    "$(q "select share_pct from reporting.partner_ranking where dataset='customs' and flow='export' and basis='month' and level='partner' and period='2019-02-01' and partner='USA'")" 12.0000
expect "share against the sum of partners without WLD (2020-03 total)" \
    "$(q "select string_agg(partner || '=' || share_pct, ',' order by partner) from reporting.partner_ranking where dataset='customs' and flow='total' and basis='month' and level='partner' and period='2020-03-01'")" \
    "JPN=50.0000,USA=50.0000"
expect "YTD without January (USA export YTD 2020-03 = Feb + Mar)" \
    "$(q "$val and flow='export' and basis='ytd' and level='partner' and period='2020-03-01' and partner='USA'")" 120.00
expect "total = export + import (WLD 2019-02)" \
    "$(q "$val and flow='total' and basis='month' and level='partner' and period='2019-02-01' and partner='WLD'")" 1800.00
expect "exact at 10^13 (USA import 2020-06)" \
    "$(q "$val and flow='import' and basis='month' and level='partner' and period='2020-06-01' and partner='USA'")" 98765432109876.54
expect "investment YoY (VNM outward YTD 2020-09 vs 2019-09)" \
    "$(q "select yoy_pct from reporting.partner_ranking where dataset='investment' and flow='outward' and basis='ytd' and level='partner' and period='2020-09-01' and partner='VNM'")" 77.0000
expect "hostile text stored verbatim" \
    "$(q "select sector from tradeflow.facts where record_id='i3'")" 'Finance; "quoted" \ back'

expect "hostile record_id stored verbatim (quotes, semicolon, backslash, tab)" \
    "$(q "select count(*) from tradeflow.facts where record_id = E'x\\'; DROP TABLE tradeflow.facts; --\\\\\\t\"q\"'")" 1
check_oracle "$W" --customs "$D/semantics1.csv" --customs "$D/semantics2.csv" \
    --customs "$D/semantics3.csv" --investment "$D/semantics_inv.jsonl"

# Replaying everything (a new consumer group reads the topics from the start;
# the facts table makes every record a duplicate) changes nothing.
before="$(md5sum <"$W/actual_ranking.csv")"
aggregate "grp2-$TC" "$TC" "$TI"
dump_reporting "$W"
expect "replay by another group changes nothing" "$(md5sum <"$W/actual_ranking.csv")" "$before"

# Re-sending the files changes nothing either.
produce customs "$TC" "$D/semantics1.csv" "$D/semantics2.csv" "$D/semantics3.csv"
aggregate "grp-$TC" "$TC" "$TI"
dump_reporting "$W"
expect "re-sent files change nothing" "$(md5sum <"$W/actual_ranking.csv")" "$before"

# A revision that moves a committed record to another reporter (a3: CHN ->
# HKG), in a later batch: the consumer must lock both reporters (apply_stage
# asks for a careful retry) and move the value from one to the other.
produce customs "$TC" "$D/semantics4.csv"
out="$(aggregate "grp-$TC" "$TC" "$TI" 2>&1)"
expect "the reporter move needed one careful retry" "$(sed -n 's/.*retries \([0-9]*\).*/\1/p' <<<"$out")" 1
expect "a3 left CHN (USA export 2019-02)" \
    "$(q "select count(*) from reporting.partner_ranking where reporter='CHN' and partner='USA' and flow='export' and period='2019-02-01'")" 0
expect "a3 arrived at HKG (USA export 2019-02)" \
    "$(q "select value_usd from reporting.partner_ranking where reporter='HKG' and flow='export' and basis='month' and level='partner' and period='2019-02-01' and partner='USA'")" 120.00
check_oracle "$W" --customs "$D/semantics1.csv" --customs "$D/semantics2.csv" \
    --customs "$D/semantics3.csv" --investment "$D/semantics_inv.jsonl" --customs "$D/semantics4.csv"
echo "1 passed, 0 failed"
