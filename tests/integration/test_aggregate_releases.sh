#!/usr/bin/env bash
# Source profiles end to end and whole-release replacement (issue 18):
# file -> tradeflow-produce --source -> Kafka -> tradeflow-aggregate ->
# PostgreSQL -> reporting views, against the independent oracle.
#
#  1. Each profile (Comtrade, Comext, GACC samples): the reporting views equal
#     the oracle fed with the records the producer published (read back from
#     the topic by test_produce_dump).
#  2. A sequence of Comtrade releases of CHN 2024-01 with --complete-release:
#     R1; R2 changes USA, drops KOR, adds DEU; R3 (partial) changes JPN;
#     then R1 replayed. The views must equal the latest complete release plus
#     the later partial one, KOR withdrawn, the 2024-02 scope (only in R1)
#     untouched. The oracle gets the cells that should count.
#  3. The same files in the reverse order, into 3 partitions, another
#     database: the same views, row for row (order independence).
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
S="$TF_SOURCE_DIR/tests/data/source"
tf_new_workdir W
PRODUCE="$(tf_bin tradeflow-produce)"
DUMP="$TF_BUILD_DIR/tests/test_produce_dump"

# effective TOPIC OUT: the topic's cells as the oracle's plain CSV, keeping
# per record_id the highest revision, and only the cells whose revision is
# not below their scope's highest release marker (markers are the records
# whose id has no hash part). Written independently of the SQL.
effective() {
    "$DUMP" -t "$1" | cut -f2 | "$TF_PYTHON" -c '
import sys, csv
best, marks = {}, {}
for line in sys.stdin:
    f = line.rstrip("\n").split("|")
    rid, rev = f[1], int(f[2])
    if rid.count(":") == 2:
        marks[rid] = max(marks.get(rid, -1), rev)
    elif rid not in best or rev > best[rid][0]:
        best[rid] = (rev, f)
w = csv.writer(sys.stdout)
w.writerow(["record_id", "revision", "reporter", "partner", "flow", "period", "hs_code", "value_usd"])
for rid, (rev, f) in sorted(best.items()):
    scope = rid.rsplit(":", 1)[0]
    if rev >= marks.get(scope, -1):
        w.writerow([rid, rev, f[3], f[4], f[5], f[6], f[8], f[7]])
' >"$2" || fail "effective $1"
}

src() { "$PRODUCE" --topic "$T" --partitions "${PARTS:-6}" --quiet "$@" 2>>"$W/produce.log" || [ $? -eq 1 ]; }

# --- 1. each profile, end to end -----------------------------------------------
tf_new_db agg_sources
T="$(tf_topic sources)"
src --source comtrade --hs-level total --release 2024-03-15 "$S/comtrade_monthly.csv"
src --source comtrade --hs-level total --release 2024-03-15 "$S/comtrade_api.json"
src --source comext --release 2024-03-20 --fx "$S/fx.csv" "$S/comext_full.dat"
src --source gacc --release 2024-02-20 --flow export "$S/gacc_export_gbk.csv"
src --source gacc --release 2024-02-20 --flow import --fx "$S/fx.csv" "$S/gacc_import_rmb_gbk.csv"
aggregate "grp-$T" "$T"
effective "$T" "$W/sources.csv"
expect "cells published by the three profiles" "$(($(wc -l <"$W/sources.csv") - 1))" 17
check_oracle "$W" --customs "$W/sources.csv"
expect "GACC's CHN->HKG export in the views" \
    "$(q "select value_usd from reporting.partner_monthly where reporter='CHN' and partner='HKG' and flow='export' and period='2024-01-01'")" \
    9876543.21
expect "Comext's DEU->CHN import in euros x 1.0905" \
    "$(q "select value_usd from reporting.partner_monthly where reporter='DEU' and partner='CHN' and flow='import' and period='2024-01-01'")" \
    134629628.40

# --- 2. a sequence of releases ------------------------------------------------------
H="typeCode,freqCode,period,reporterISO,flowCode,partnerCode,partnerISO,cmdCode,primaryValue"
release() { # FILE ROWS... ("PERIOD PARTNER VALUE")
    local f="$1"
    shift
    {
        echo "$H"
        for r in "$@"; do
            set -- $r
            echo "C,M,$1,CHN,X,,$2,TOTAL,$3"
        done
    } >"$f"
}
release "$W/r1.csv" "202401 W00 200" "202401 USA 100" "202401 JPN 50" "202401 KOR 30" \
    "202401 VNM 20" "202402 W00 90" "202402 USA 60" "202402 KOR 30"
release "$W/r2.csv" "202401 W00 220" "202401 USA 110" "202401 JPN 50" "202401 DEU 40" \
    "202401 VNM 20"
release "$W/r3.csv" "202401 JPN 55"
rel() { src --source comtrade --hs-level total "$@"; }

tf_new_db agg_releases
T="$(tf_topic releases)"
# (a consumer that is caught up settles after every batch: each release is
# seen on its own, as its vintages need)
rel --release 2024-03-01 --complete-release "$W/r1.csv"
aggregate "grp-$T" "$T"
rel --release 2024-04-01 --complete-release "$W/r2.csv"
aggregate "grp-$T" "$T"
rel --release 2024-05-01 "$W/r3.csv"
aggregate "grp-$T" "$T"
m() { q "select coalesce((select value_usd from reporting.partner_monthly where reporter='CHN' and flow='export' and period='$1' and partner='$2'), -1)"; }
expect "R2 changed USA" "$(m 2024-01-01 USA)" 110.00
expect "R3 (partial, newer) changed JPN" "$(m 2024-01-01 JPN)" 55.00
expect "R2 added DEU" "$(m 2024-01-01 DEU)" 40.00
expect "KOR, missing from R2, is withdrawn" "$(m 2024-01-01 KOR)" -1
expect "the 2024-02 scope (only in R1) is untouched" "$(m 2024-02-01 KOR)" 30.00
expect "the monthly row of KOR is gone at every level" \
    "$(q "select count(*) from tradeflow.monthly where period='2024-01-01' and partner='KOR'")" 0
expect "ranks move: DEU third in 2024-01" \
    "$(q "select rank from reporting.partner_ranking where reporter='CHN' and flow='export' and basis='month' and level='partner' and period='2024-01-01' and partner='DEU'")" 3
expect "YTD of KOR in 2024-02 is February's only" \
    "$(q "select ytd_value_usd from reporting.partner_monthly where reporter='CHN' and flow='export' and period='2024-02-01' and partner='KOR'")" 30.00
expect "watermarks" "$(q "select string_agg(scope || '=' || revision, ' ' order by scope) from tradeflow.release_marks")" \
    "ct:CHN:202401=20240401000000 ct:CHN:202402=20240301000000"
effective "$T" "$W/eff.csv"
check_oracle "$W" --customs "$W/eff.csv"
dump_reporting "$W"
cp "$W/actual_ranking.csv" "$W/a_ranking.csv"
cp "$W/actual_monthly.csv" "$W/a_monthly.csv"

# R1 replayed (a duplicate and an older complete release): nothing changes.
rel --release 2024-03-01 --complete-release "$W/r1.csv"
aggregate "grp-$T" "$T"
dump_reporting "$W"
cmp -s "$W/a_monthly.csv" "$W/actual_monthly.csv" || fail "R1 replayed changed partner_monthly"
cmp -s "$W/a_ranking.csv" "$W/actual_ranking.csv" || fail "R1 replayed changed partner_ranking"
echo "ok: an older release replayed changes nothing"

# A newer complete release that drops a cell R3 had changed: JPN goes.
release "$W/r4.csv" "202401 W00 230" "202401 USA 120" "202401 DEU 40" "202401 VNM 20"
rel --release 2024-06-01 --complete-release "$W/r4.csv"
aggregate "grp-$T" "$T"
expect "R4 withdrew JPN (last changed by the partial R3)" "$(m 2024-01-01 JPN)" -1
# Vintages (reporting.vintages): first published, current, revisions, the
# release of the last change; for monthly and YTD totals and their ranks.
v() { q "select $1 from reporting.vintages where reporter='CHN' and flow='export' and level='partner' and basis='$2' and period='$3' and partner='$4'"; }
expect "vintage USA Jan: first 100, now 120, 2 revisions, last by R4" \
    "$(v "first_value_usd || ' ' || current_value_usd || ' ' || revisions || ' ' || last_release" month 2024-01-01 USA)" \
    "100.00 120.00 2 20240601000000"
expect "vintage KOR Jan: first 30 (rank 3), withdrawn by R2" \
    "$(v "first_value_usd || ' ' || first_rank || ' ' || withdrawn || ' ' || revisions || ' ' || last_release" month 2024-01-01 KOR)" \
    "30.00 3 true 1 20240401000000"
expect "vintage JPN Jan: 50, 55 (partial R3), withdrawn by R4" \
    "$(v "first_value_usd || ' ' || withdrawn || ' ' || revisions || ' ' || last_release" month 2024-01-01 JPN)" \
    "50.00 true 2 20240601000000"
expect "vintage of a YTD total: WLD Jan-Feb first 290, now 320, by R2 and R4" \
    "$(v "first_value_usd || ' ' || current_value_usd || ' ' || revisions || ' ' || last_release" ytd 2024-02-01 WLD)" \
    "290.00 320.00 2 20240601000000"
expect "vintage of a rank: DEU Jan, new in R2 at rank 3" \
    "$(v "first_rank || ' ' || current_rank || ' ' || first_release || ' ' || revisions" month 2024-01-01 DEU)" \
    "3 2 20240401000000 1"
expect "the untouched February keeps its first vintage" \
    "$(v "revisions || ' ' || revised_by_usd" month 2024-02-01 KOR)" "0 0.00"
expect "reporting.vintages is readable by the BI role" \
    "$(psql -X -q -At -v ON_ERROR_STOP=1 -c "set role tradeflow_reader" -c "select count(*) > 0 from reporting.vintages")" t
psql -X -q -At -v ON_ERROR_STOP=1 -c "set role tradeflow_reader" -c "select count(*) from tradeflow.vintages" >/dev/null 2>&1 &&
    fail "the BI role reads tradeflow.vintages"
echo "ok: the BI role cannot read the internal table"
effective "$T" "$W/eff4.csv"
check_oracle "$W" --customs "$W/eff4.csv"
dump_reporting "$W"
cp "$W/actual_ranking.csv" "$W/a4_ranking.csv"
cp "$W/actual_monthly.csv" "$W/a4_monthly.csv"

# --- 3. the reverse order, another partitioning --------------------------------------
tf_new_db agg_releases_rev
T="$(tf_topic releases.rev)"
PARTS=3
rel --release 2024-06-01 --complete-release "$W/r4.csv"
rel --release 2024-05-01 "$W/r3.csv"
aggregate "grp-$T" "$T"
rel --release 2024-04-01 --complete-release "$W/r2.csv"
rel --release 2024-03-01 --complete-release "$W/r1.csv"
rel --release 2024-03-01 --complete-release "$W/r1.csv"
aggregate "grp-$T" "$T"
dump_reporting "$W"
cmp -s "$W/a4_monthly.csv" "$W/actual_monthly.csv" || {
    diff "$W/a4_monthly.csv" "$W/actual_monthly.csv" >&2
    fail "reverse order: partner_monthly differs"
}
cmp -s "$W/a4_ranking.csv" "$W/actual_ranking.csv" || {
    diff "$W/a4_ranking.csv" "$W/actual_ranking.csv" >&2
    fail "reverse order: partner_ranking differs"
}
echo "ok: reverse order into 3 partitions gives the same views"

# A file with a rejected row is not a complete release: no marker.
release "$W/r5.csv" "202401 W00 1" "202401 USA -5"
rel --release 2024-07-01 --complete-release "$W/r5.csv"
grep -q "not a complete release (1 rejected records): no release markers" "$W/produce.log" ||
    fail "no warning for a complete release with rejects"
aggregate "grp-$T" "$T"
expect "a release with rejects withdraws nothing" "$(m 2024-01-01 DEU)" 40.00

echo "1 passed, 0 failed"
