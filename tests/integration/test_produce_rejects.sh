#!/usr/bin/env bash
# The bad-input catalogue, reason by reason: every bad record is reported as
# FILE:LINE: column: reason and written to --rejects, none is published, the
# good ones of the same file are; --strict publishes nothing and exits 3;
# unusable headers exit 65.
. "$(dirname "$0")/test_produce_lib.sh"

F="$W/bad.csv"
{
    echo "record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit"
    echo "G-1,0,CHN,VNM,export,2020-01,85,100.00,,"                    # 2 good
    echo "B-empty,0,CHN,,export,2020-01,85,1.00,,"                      # 3 empty required
    echo "B-month,0,CHN,VNM,export,2020-13,85,1.00,,"                   # 4 impossible period
    echo "B-short,0,CHN,VNM,export,2020-1,85,1.00,,"                    # 5 malformed period
    echo "B-nonnum,0,CHN,VNM,export,2020-01,85,abc,,"                   # 6 non-numeric
    echo "B-neg,0,CHN,VNM,export,2020-01,85,-1.00,,"                    # 7 negative
    echo "B-nan,0,CHN,VNM,export,2020-01,85,NaN,,"                      # 8 NaN
    echo "B-over,0,CHN,VNM,export,2020-01,85,99999999999999999999.00,," # 9 overflow
    echo "B-prec,0,CHN,VNM,export,2020-01,85,1.001,,"                   # 10 over-precise
    echo "B-flow,0,CHN,VNM,outward,2020-01,85,1.00,,"                   # 11 bad flow
    echo "B-code,0,CHN,vnm,export,2020-01,85,1.00,,"                    # 12 bad economy code
    echo "B-long,0,CHN,VNM,export,2020-01,85,1.00,1,unitunitunitunit1"  # 13 overlong field
    printf 'B-utf8-\xff,0,CHN,VNM,export,2020-01,85,1.00,,\n'           # 14 invalid UTF-8
    echo "B-fields,0,CHN,VNM,export,2020-01"                            # 15 field count
    echo "B-qty,0,CHN,VNM,export,2020-01,85,1.00,1.0001,kg"             # 16 over-precise qty
    echo "B-rev,x,CHN,VNM,export,2020-01,85,1.00,,"                     # 17 bad revision
    echo "B-hs,0,CHN,VNM,export,2020-01,8A,1.00,,"                      # 18 bad HS code
    echo "G-2,0,CHN,MYS,import,2020-02,,200.00,,"                       # 19 good
} >"$F"
# line:column expected for each bad record.
expect="3:partner 4:period 5:period 6:value_usd 7:value_usd 8:value_usd 9:value_usd
10:value_usd 11:flow 12:partner 13:unit 14:record_id 15:- 16:quantity 17:revision 18:hs_code"
nbad=16

t="$(tp_topic rejects)"
tp_produce --kind customs --topic "$t" --rejects "$W/rejects.csv" "$F"
tp_eq "some rejected: exit 1" "$rc" 1
for lc in $expect; do
    line="${lc%%:*}"
    col="${lc#*:}"
    tp_check "line $line reported as $F:$line: $col: <reason>" \
        grep -Eq "^$(printf '%s' "$F" | sed 's/[.[\*^$/]/\\&/g'):$line: $col: .+" "$W/err"
done
got="$(grep -c "^$F:[0-9]*: " "$W/err" || true)"
tp_eq "exactly $nbad rejects reported" "$got" "$nbad"
tp_check "summary counts" grep -q "read 18, published 2, rejected $nbad, failed 0" "$W/err"

"$DUMP" -t "$t" | cut -f2 | cut -d'|' -f2 | sort >"$W/ids"
tp_check "only the good records are published" cmp -s "$W/ids" <(printf 'G-1\nG-2\n')

# The rejects file: the input's header plus `reason`, each bad row once.
"$TF_PYTHON" - "$W/rejects.csv" >"$W/rej.out" <<'PY'
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8", errors="surrogateescape") as f:
    rows = list(csv.reader(f))
assert rows[0][-1] == "reason", rows[0]
assert rows[0][:-1][:6] == ["record_id", "revision", "reporter", "partner", "flow", "period"], rows[0]
for r in rows[1:]:
    assert r[-1].strip(), r
    print(r[0].split("-utf8-")[0] + ("-utf8" if "-utf8-" in r[0] else ""))
PY
printf '%s\n' B-empty B-month B-short B-nonnum B-neg B-nan B-over B-prec B-flow B-code B-long \
    B-utf8 B-fields B-qty B-rev B-hs >"$W/rej.want"
tp_same_file "--rejects holds every bad record with a reason" "$W/rej.out" "$W/rej.want"

# --strict: the same file publishes nothing and exits 3.
ts="$(tp_topic strict)"
tp_produce --kind customs --topic "$ts" --strict "$F"
tp_eq "--strict: exit 3" "$rc" 3
tp_check "--strict: still reports every bad record" test "$(grep -c "^$F:[0-9]*: " "$W/err")" -eq "$nbad"
tp_check "--strict: summary says refused" grep -q "refused (--strict): nothing published" "$W/err"
n="$("$DUMP" -t "$ts" | wc -l)"
tp_eq "--strict: nothing visible to read_committed" "$n" 0

# --strict with many good records before the bad one: records were sent in
# the file's transaction (they are in the log, read_uncommitted sees them)
# and the abort makes them invisible to read_committed readers.
awk 'BEGIN {
    print "record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit";
    for (i = 1; i <= 150000; i++) printf "S-%06d,0,CHN,VNM,export,2020-01,85,%d.00,,\n", i, i;
    print "S-bad,0,CHN,VNM,export,2020-13,85,1.00,,";
}' >"$W/late.csv"
tl="$(tp_topic strictlate)"
tp_produce --kind customs --topic "$tl" --strict "$W/late.csv"
tp_eq "--strict late bad record: exit 3" "$rc" 3
tp_check "--strict late bad record reported" grep -q "^$W/late.csv:150002: period: " "$W/err"
n="$("$DUMP" -u -t "$tl" | wc -l)"
tp_check "--strict: aborted records reached the log (read_uncommitted: $n)" test "$n" -gt 0
n="$("$DUMP" -t "$tl" | wc -l)"
tp_eq "--strict: none of them visible to read_committed" "$n" 0

# --strict --no-transaction validates first and sends nothing at all.
tn="$(tp_topic strictnotx)"
tp_produce --kind customs --topic "$tn" --strict --no-transaction "$F"
tp_eq "--strict --no-transaction: exit 3" "$rc" 3
# Nothing was sent: the topic was not even created, or it holds nothing
# (read_uncommitted: not even an aborted record).
kcat -L -b "$TRADEFLOW_BROKERS" -m 10 >"$W/meta" 2>/dev/null || tf_fail "kcat -L failed"
if grep -qF "topic \"$tn\" " "$W/meta"; then
    n="$("$DUMP" -u -t "$tn" | wc -l)"
else
    n=0
fi
tp_eq "--strict --no-transaction: nothing sent" "$n" 0

# --strict on a clean file publishes it.
grep -v '^B-' "$F" >"$W/good.csv"
tg="$(tp_topic strictgood)"
tp_produce --kind customs --topic "$tg" --strict --no-transaction "$W/good.csv"
tp_eq "--strict clean file: exit 0" "$rc" 0
tp_eq "--strict clean file: published" "$("$DUMP" -t "$tg" | wc -l)" 2

# Unknown and missing columns in the header make the file unusable.
sed '1s/unit/colour/' "$F" >"$W/unknown.csv"
tp_produce --kind customs --topic "$t" "$W/unknown.csv"
tp_eq "unknown column: exit 65" "$rc" 65
tp_check "unknown column reported at line 1" grep -q "^$W/unknown.csv:1: colour: " "$W/err"
cut -d, -f1-7,9- "$F" >"$W/missing.csv"
tp_produce --kind customs --topic "$t" "$W/missing.csv"
tp_eq "missing column: exit 65" "$rc" 65
tp_check "missing column reported at line 1" grep -q "^$W/missing.csv:1: value_usd: " "$W/err"
tp_eq "unusable files published nothing" "$("$DUMP" -t "$t" | wc -l)" 2

# JSON Lines: unknown key and a line that is not JSON.
cat >"$W/bad.jsonl" <<'JSON'
{"record_id":"J-1","reporter":"CHN","partner":"VNM","flow":"outward","period":"2020-01","value_usd":"1.00"}
{"record_id":"J-2","reporter":"CHN","partner":"VNM","flow":"outward","period":"2020-01","value_usd":"1.00","colour":"red"}
{"record_id":"J-3",
JSON
tj="$(tp_topic jsonl)"
tp_produce --kind investment --topic "$tj" --rejects "$W/rej.jsonl" "$W/bad.jsonl"
tp_eq "jsonl: exit 1" "$rc" 1
tp_check "jsonl unknown key reported" grep -q "^$W/bad.jsonl:2: colour: " "$W/err"
tp_check "jsonl invalid line reported" grep -q "^$W/bad.jsonl:3: " "$W/err"
tp_eq "jsonl: rejects file lines" "$(wc -l <"$W/rej.jsonl")" 2
tp_check "jsonl rejects carry a reason" grep -q '"reason"' "$W/rej.jsonl"
tp_eq "jsonl: good record published" "$("$DUMP" -t "$tj" | cut -f2 | cut -d'|' -f2)" J-1

tp_report
