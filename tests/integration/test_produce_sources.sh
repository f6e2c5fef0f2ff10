#!/usr/bin/env bash
# Source profiles on the real broker (issue 18): each sample of
# tests/data/source published with --source, read back through the codec
# (read_committed): the mapped cells, derived record ids and the release as
# revision; the same release re-published gives the same ids and revisions
# (a duplicate for the aggregator), a newer release a higher revision;
# --rejects-topic gets each rejected record with file, line, column and
# reason headers in the file's transaction (nothing with --strict); usage
# errors.
. "$(dirname "$0")/test_produce_lib.sh"

D="$TF_SOURCE_DIR/tests/data/source"
command -v kcat >/dev/null || tf_fail "kcat is needed"

# dump TOPIC: "record_id|revision|reporter|partner|flow|period|value|hs|qty|unit", sorted.
dump() { "$DUMP" -t "$1" | cut -f2 | cut -d'|' -f2- | sort; }

# --- UN Comtrade, CSV ---------------------------------------------------------
t="$(tp_topic comtrade)"
dl="$(tp_topic comtrade.rejects)"
tp_produce --source comtrade --hs-level total --release 2024-03-15 --topic "$t" \
    --rejects-topic "$dl" --rejects "$W/ct.rej.csv" "$D/comtrade_monthly.csv"
tp_eq "comtrade: some rejected: exit 1" "$rc" 1
tp_check "comtrade: summary with the skipped rows" \
    grep -q "read 8, published 4, rejected 4, failed 0, skipped 3" "$W/err"
tp_check "comtrade: each skip reason once, with its first line" \
    grep -q "skipped 1 row(s) (first at line 6): flowCode RX is not mapped" "$W/err"
dump "$t" | cut -d'|' -f2- >"$W/ct.got"
cat >"$W/ct.want" <<'EOF'
20240315000000|CHN|JPN|import|2024-01|12345000000.00||||
20240315000000|CHN|USA|export|2024-01|42351234567.12||||
20240315000000|CHN|VNM|export|2024-01|15000000.01||1234.568|kg|
20240315000000|CHN|WLD|export|2024-01|280000000000.50||||
EOF
tp_same_file "comtrade: the cells, mapped (W00 -> WLD, USD, release as revision)" "$W/ct.got" "$W/ct.want"
dump "$t" | cut -d'|' -f1 | sort >"$W/ct.ids1"
tp_eq "comtrade: record ids derived from the cell (ct:CHN:202401:<128-bit hash>)" \
    "$(grep -Ec '^ct:CHN:202401:[0-9a-f]{32}$' "$W/ct.ids1")" 4
"$DUMP" -t "$t" | cut -f1 | sort -u >"$W/ct.keys"
tp_check "comtrade: key reporter|partner" grep -qx 'CHN|WLD' "$W/ct.keys"

# The dead-letter topic: one message per rejected record, the record's text
# as value, file/line/column/reason headers.
kcat -C -b "$TRADEFLOW_BROKERS" -t "$dl" -e -q -X isolation.level=read_committed \
    -f '%h\n' >"$W/dl.h" 2>/dev/null || true
tp_eq "rejects topic: 4 messages" "$(wc -l <"$W/dl.h")" 4
for lc in "7:freqCode" "8:partnerISO" "10:primaryValue" "11:typeCode"; do
    tp_check "rejects topic: line ${lc%%:*} column ${lc#*:}" \
        grep -q "file=$D/comtrade_monthly.csv,line=${lc%%:*},column=${lc#*:},reason=.\+,source=comtrade" "$W/dl.h"
done
kcat -C -b "$TRADEFLOW_BROKERS" -t "$dl" -e -q -X isolation.level=read_committed \
    -f '%s\n' 2>/dev/null | sort >"$W/dl.v"
sed -n '7p;8p;10p;11p' "$D/comtrade_monthly.csv" | sort >"$W/dl.want"
tp_same_file "rejects topic: the value is the record as read" "$W/dl.v" "$W/dl.want"
tp_check "rejects file too (header + reason)" grep -q '"reason"$' "$W/ct.rej.csv"

# Same release again: same ids and revisions (the aggregator's duplicate);
# a newer release: same ids, a higher revision.
tp_produce --source comtrade --hs-level total --release 2024-03-15 --topic "$t" -q \
    "$D/comtrade_monthly.csv"
dump "$t" | cut -d'|' -f1,2 | sort -u >"$W/ct.rev"
tp_eq "same release re-published: the same 4 (id, revision) pairs" "$(wc -l <"$W/ct.rev")" 4
tp_produce --source comtrade --hs-level total --release 2024-04-15T10:00 --topic "$t" -q \
    "$D/comtrade_monthly.csv"
dump "$t" | cut -d'|' -f1 | sort -u >"$W/ct.ids3"
tp_check "newer release: the same record ids" cmp -s "$W/ct.ids1" "$W/ct.ids3"
tp_eq "newer release: revision 20240415100000 for each cell" \
    "$(dump "$t" | grep -c '|20240415100000|')" 4

# The API's JSON document and the tab-separated bulk file.
t2="$(tp_topic comtrade.json)"
tp_produce --source comtrade --hs-level total --release 2024-03-15 --topic "$t2" \
    "$D/comtrade_api.json"
tp_eq "comtrade JSON document: exit 1 (one bad)" "$rc" 1
tp_eq "comtrade JSON document: 2 published" "$(dump "$t2" | wc -l)" 2
t3="$(tp_topic comtrade.bulk)"
tp_produce --source comtrade --hs-level total --release 2024-03-15 --topic "$t3" \
    "$D/comtrade_bulk.txt"
tp_eq "comtrade bulk (TSV, .txt): exit 0" "$rc" 0
dump "$t3" | cut -d'|' -f1 >"$W/bulk.ids"
tp_eq "comtrade bulk: 3 published" "$(wc -l <"$W/bulk.ids")" 3
tp_check "comtrade bulk: the same record ids as the CSV" \
    bash -c "comm -23 '$W/bulk.ids' '$W/ct.ids1' | wc -l | grep -qx 0"

# --release mtime: the file's modification time (UTC) is its release.
cp "$D/comtrade_bulk.txt" "$W/bulk_mtime.txt"
touch -d '2024-05-06 07:08:09 UTC' "$W/bulk_mtime.txt"
t4="$(tp_topic comtrade.mtime)"
tp_produce --source comtrade --hs-level total --release mtime --topic "$t4" "$W/bulk_mtime.txt"
tp_eq "--release mtime: revision 20240506070809 for each cell" \
    "$(dump "$t4" | grep -c '|20240506070809|')" 3

# --- Eurostat Comext ----------------------------------------------------------
t="$(tp_topic comext)"
tp_produce --source comext --release 2024-03-20 --fx "$D/fx.csv" --topic "$t" "$D/comext_full.dat"
tp_eq "comext: exit 1" "$rc" 1
dump "$t" | cut -d'|' -f2- >"$W/cx.got"
cat >"$W/cx.want" <<'EOF'
20240320000000|DEU|CHN|import|2024-01|134629628.40|85176200|45678.500|kg|
20240320000000|DEU|USA|export|2024-01|107703703.60|85176200|1200.000|kg|
20240320000000|DEU|USA|export|2024-01|5452500.00|8517|||
20240320000000|FRA|USA|export|2024-01|1091.05|85176200|10.000|kg|
EOF
tp_same_file "comext: alpha-2 -> alpha-3, EUR at the month's rate, confidential 8517XXXX" \
    "$W/cx.got" "$W/cx.want"
tp_check "comext: a month without a rate is rejected with the reason" \
    grep -q "comext_full.dat:9: VALUE_IN_EUROS: no EUR rate for 2023-12 in the --fx table" "$W/err"

# --- GACC -----------------------------------------------------------------------
t="$(tp_topic gacc)"
tp_produce --source gacc --release 2024-02-20 --flow export --topic "$t" "$D/gacc_export_gbk.csv"
tp_eq "gacc GBK: exit 1" "$rc" 1
dump "$t" | cut -d'|' -f2-5,7 | sort >"$W/ga.got"
cat >"$W/ga.want" <<'EOF'
20240220000000|CHN|HKG|export|9876543.21
20240220000000|CHN|JPN|export|3000.00
20240220000000|CHN|RUS|export|2500.00
20240220000000|CHN|TWN|export|100.00
20240220000000|CHN|USA|export|12345678.00
EOF
tp_same_file "gacc GBK: Chinese partner names -> ISO codes, thousands separators" "$W/ga.got" "$W/ga.want"
tp_check "gacc: the error message is UTF-8 Chinese" \
    grep -q 'gacc_export_gbk.csv:6: 贸易伙伴名称: partner "火星"' "$W/err"
t="$(tp_topic gacc.rmb)"
tp_produce --source gacc --release 2024-02-20 --flow import --fx "$D/fx.csv" --topic "$t" \
    "$D/gacc_import_rmb_gbk.csv"
tp_eq "gacc RMB: 2 published" "$(dump "$t" | wc -l)" 2
tp_check "gacc RMB: 7,000,000 CNY x 0.1390 = 973000.00 USD" \
    bash -c "'$DUMP' -t '$t' | grep -q '|973000.00|'"

# --- --strict with --rejects-topic: the file's transaction is aborted, its
# rejects are not published either.
t="$(tp_topic strict)"
dl="$(tp_topic strict.rejects)"
tp_produce --source comtrade --hs-level total --release 2024-03-15 --strict --topic "$t" \
    --rejects-topic "$dl" "$D/comtrade_monthly.csv"
tp_eq "--strict: exit 3" "$rc" 3
tp_eq "--strict: nothing published" "$(dump "$t" | wc -l)" 0
tp_eq "--strict: no rejects visible either" "$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$dl" -e -q \
    -X isolation.level=read_committed -f '%s\n' 2>/dev/null | wc -l)" 0

# --- --rejects-topic with the plain layout.
t="$(tp_topic plain)"
dl="$(tp_topic plain.rejects)"
printf 'record_id,reporter,partner,flow,period,value_usd\nA,CHN,USA,export,2024-01,1\nB,CHN,USA,sideways,2024-01,1\n' >"$W/plain.csv"
tp_produce --kind customs --topic "$t" --rejects-topic "$dl" "$W/plain.csv"
tp_eq "plain: exit 1" "$rc" 1
tp_check "plain: the reject in the topic" bash -c "kcat -C -b '$TRADEFLOW_BROKERS' -t '$dl' -e -q \
    -f '%h %s\n' 2>/dev/null | grep -q 'line=3,column=flow,reason=bad flow .*source=plain B,CHN,USA,sideways'"

# --- usage and input errors ---------------------------------------------------
tp_produce --source comtrade --release 2024-03-15 --topic x "$D/comtrade_monthly.csv"
tp_eq "comtrade without --hs-level: exit 64" "$rc" 64
tp_check "  says why" grep -q "needs --hs-level" "$W/err"
tp_produce --source comext --topic x "$D/comext_full.dat"
tp_eq "a source without --release: exit 64" "$rc" 64
tp_produce --kind customs --release 2024-03-15 --topic x "$W/plain.csv"
tp_eq "--release without --source: exit 64" "$rc" 64
tp_produce --source comext --release 2024-02-30 --topic x "$D/comext_full.dat"
tp_eq "an impossible --release: exit 64" "$rc" 64
printf 'period,currency,usd_per_unit\n2024-01,EUR,x\n' >"$W/badfx.csv"
tp_produce --source comext --release 2024-03-15 --fx "$W/badfx.csv" --topic x "$D/comext_full.dat"
tp_eq "a bad --fx table: exit 65" "$rc" 65
tp_check "  with FILE:LINE" grep -q "badfx.csv:2: usd_per_unit: not a decimal number" "$W/err"
tp_produce --source gacc --release 2024-03-15 --topic x "$D/gacc_import_rmb_gbk.csv"
tp_eq "gacc without a flow: exit 65 (unusable header)" "$rc" 65
tp_produce --source comext --kind investment --release 2024-03-15 --topic x "$D/comext_full.dat"
tp_eq "--source with --kind investment: exit 64" "$rc" 64

tp_report
