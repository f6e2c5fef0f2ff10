#!/usr/bin/env bash
# tradeflow-report on the real stack: a small SYNTHETIC feed (calibrated so
# that ASEAN is China's #3 partner in 2018, #2 in 2019 and #1 in Jan-Nov
# 2020) goes through tradeflow-produce -> Kafka -> tradeflow-aggregate ->
# PostgreSQL; then tradeflow-report, as the read-only role tradeflow_reader,
# writes CSV (compared with the view, exactly), text (compared with the view
# rounded for display) and HTML, which headless Chromium renders: the DOM it
# parsed must hold the table rows, the bump-chart series (ASEAN 3,2,1) and
# the share series as in the views, and the screenshot must show the charts.
# Exit statuses 0/1/2/64 are checked too.
#
# Artifacts (kept after the run): $TF_BUILD_DIR/tests/report-artifacts/
# report-CHN-2020-11.html, .png (the screenshot) and .dom.html.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
CHROMIUM="${TF_CHROMIUM:-$(command -v chromium || true)}"
[ -n "$CHROMIUM" ] || tf_fail "chromium is not installed (deploy/install-deps.sh installs it)"
tf_new_db report
tf_new_workdir W
ART="$TF_BUILD_DIR/tests/report-artifacts"
mkdir -p "$ART"
CHECK="$TF_SOURCE_DIR/tests/integration/report_check.py"
REPORT="$(tf_bin tradeflow-report)"
NOTE="SYNTHETIC data <b>calibrated</b> to GACC's \"published\" figures & more"

# ------------------------------------------------------------ the pipeline
TC="$(tf_topic report_customs)"
TI="$(tf_topic report_investment)"
GEN="$TF_SOURCE_DIR/producers/tradeflow-genfeed"
"$GEN" --kind customs --scale 0.1 --years 2018-2020 --out "$W/customs.csv" -q
"$GEN" --kind investment --scale 0.1 --years 2018-2020 --out "$W/investment.jsonl" -q
produce customs "$TC" "$W/customs.csv"
produce investment "$TI" "$W/investment.jsonl"
aggregate "grp-$TC" "$TC" "$TI"
echo "ok: pipeline loaded $(($(wc -l <"$W/customs.csv") - 1)) customs and $(wc -l <"$W/investment.jsonl") investment lines"

# Every report below runs as the read-only role: it may read the reporting
# views and nothing else (the check right here proves the role is in force).
as_reader() { PGOPTIONS="-c role=tradeflow_reader" "$@"; }
if as_reader psql -X -q -c "SELECT 1 FROM tradeflow.ranking LIMIT 1" >/dev/null 2>&1; then
    fail "tradeflow_reader can read the internal tables: the role is not in force"
fi
echo "ok: tradeflow_reader cannot read tradeflow.ranking"

# ------------------------------------------------------------------- CSV
# csv_case DATASET FLOW BASIS LEVEL PERIOD TOP: the report's CSV equals the
# view's rows (exact decimal text), WLD included.
csv_case() {
    local ds="$1" flow="$2" basis="$3" level="$4" per="$5" top="$6"
    as_reader "$REPORT" --reporter CHN --dataset "$ds" --flow "$flow" --basis "$basis" \
        --level "$level" --period "$per" --top "$top" --format csv >"$W/got.csv" ||
        fail "tradeflow-report --format csv ($ds $flow $basis $level $per) exited $?"
    psql -X -At -v ON_ERROR_STOP=1 -c "COPY (SELECT dataset, reporter, flow, basis, level,
        to_char(period, 'YYYY-MM') AS period, rank, partner, value_usd, prev_year_value_usd,
        yoy_pct, share_pct, share_change_pp FROM reporting.partner_ranking
        WHERE dataset = '$ds' AND reporter = 'CHN' AND flow = '$flow' AND basis = '$basis'
          AND level = '$level' AND period = '$per-01' AND (rank <= $top OR partner = 'WLD')
        ORDER BY rank NULLS LAST, partner) TO STDOUT WITH (FORMAT csv, HEADER)" >"$W/want.csv"
    [ "$(wc -l <"$W/want.csv")" -gt 2 ] || fail "the view has no rows for $ds $flow $basis $level $per"
    diff -u "$W/want.csv" "$W/got.csv" >&2 || fail "CSV differs from the view ($ds $flow $basis $level $per)"
    echo "ok: CSV = view for $ds $flow $basis $level $per top $top ($(($(wc -l <"$W/got.csv") - 1)) rows)"
}
csv_case customs total ytd group 2020-11 10
csv_case customs export month partner 2019-06 5
csv_case investment outward ytd group 2020-09 3
# The calibrated headline (DOMAIN.md): Jan-Nov 2020 ASEAN US$609.58 bn, +5.6%, 14.6%.
csv_case customs total ytd group 2020-11 3
expect "CSV headline row ASEAN Jan-Nov 2020" "$(grep ',ASEAN,' "$W/got.csv" | cut -d, -f7-12)" \
    "1,ASEAN,609580000000.00,577253787878.79,5.6000,14.6000"

# ------------------------------------------------------------------ text
as_reader "$REPORT" --reporter CHN --period 2020-11 --format text --alerts 5 >"$W/report.txt" ||
    fail "tradeflow-report --format text exited $?"
cat "$W/report.txt"
# The ranked rows, read back from the terminal table: rank|partner|bn|yoy|share|chg.
awk '/^ +[0-9]+  [A-Z]/ { gsub(",", "", $3); print $1 "|" $2 "|" $3 "|" $4 "|" $5 "|" $6 }' \
    "$W/report.txt" | sed 's/|+/|/g' >"$W/got.txt"
q "SELECT rank || '|' || partner || '|' || round(value_usd / 1e9, 2) || '|' ||
          coalesce(round(yoy_pct, 1)::text, 'n/a') || '|' || coalesce(round(share_pct, 1)::text, 'n/a')
          || '|' || coalesce(round(share_change_pp, 1)::text, 'n/a')
     FROM reporting.partner_ranking
    WHERE dataset = 'customs' AND reporter = 'CHN' AND flow = 'total' AND basis = 'ytd'
      AND level = 'group' AND period = '2020-11-01' AND rank <= 10
    ORDER BY rank, partner" >"$W/want.txt"
[ "$(wc -l <"$W/want.txt")" -eq 10 ] || fail "expected 10 ranked rows in the view"
diff -u "$W/want.txt" "$W/got.txt" >&2 || fail "text table differs from the view"
echo "ok: text table = view rounded (10 rows)"
wld="$(q "SELECT to_char(round(value_usd / 1e9, 2), 'FM999G999G990D00') FROM reporting.partner_ranking
          WHERE dataset = 'customs' AND reporter = 'CHN' AND flow = 'total' AND basis = 'ytd'
            AND level = 'group' AND period = '2020-11-01' AND partner = 'WLD'")"
grep -Eq "^ +WLD \(total\) +$wld " "$W/report.txt" || fail "text: no WLD total line with $wld"
n="$(q "SELECT count(rank) FROM reporting.partner_ranking WHERE dataset = 'customs'
        AND reporter = 'CHN' AND flow = 'total' AND basis = 'ytd' AND level = 'group'
        AND period = '2020-11-01'")"
grep -q "^($n partners ranked)$" "$W/report.txt" || fail "text: partner count is not $n"
grep -Eq '^ +ASEAN +#3 +#2 +#1$' "$W/report.txt" || fail "text: ASEAN's rank history is not #3 #2 #1"
[ "$(grep -c ' -> ' "$W/report.txt")" -eq 5 ] || fail "text: expected 5 alerts (--alerts 5)"
echo "ok: text WLD total, partner count ($n), ASEAN #3 #2 #1, 5 alerts"

# ------------------------------------------------------------------ HTML
# Default file name in the working directory; its path is printed.
path="$(cd "$W" && as_reader "$REPORT" --reporter CHN --period 2020-11 --note "$NOTE")" ||
    fail "tradeflow-report (html) exited $?"
expect "printed path" "$path" "report-CHN-2020-11.html"
H="$W/$path"
[ -s "$H" ] || fail "$H was not written"
ls "$W" | grep -q '\.tmp\.' && fail "a temporary file was left behind"
cp "$H" "$ART/report-CHN-2020-11.html"

# Self-contained: no script, no external reference of any kind (the SVG
# namespace name is an identifier, not a fetch).
grep -qi '<script' "$H" && fail "HTML has a script"
grep -Eqi '<link|<img|<iframe|<object|src=|href=|url\(|@import' "$H" && fail "HTML references something"
ext="$(grep -Eo '(https?|ftp)://[^" ]*' "$H" | grep -vx 'http://www.w3.org/2000/svg' || true)"
[ -z "$ext" ] || fail "HTML names external addresses: $ext"
# The note's markup is escaped, not interpreted.
grep -qF 'SYNTHETIC data &lt;b&gt;calibrated&lt;/b&gt; to GACC&#39;s &quot;published&quot; figures &amp; more' "$H" ||
    fail "the note is not HTML-escaped"
echo "ok: HTML is self-contained and escaped ($(wc -c <"$H") bytes)"

chromium_run() {
    local prof
    prof="$(mktemp -d "$W/chromium.XXXXXX")"
    timeout "$(tf_timeout 90)" "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$prof" "$@" 2>>"$W/chromium.log"
}
chromium_run --dump-dom "file://$H" >"$ART/report-CHN-2020-11.dom.html" ||
    { tail -20 "$W/chromium.log" >&2; fail "chromium --dump-dom failed"; }
rm -f "$ART/report-CHN-2020-11.png"
chromium_run --screenshot="$ART/report-CHN-2020-11.png" --window-size=1280,2000 "file://$H" >/dev/null ||
    { tail -20 "$W/chromium.log" >&2; fail "chromium --screenshot failed"; }
[ -s "$ART/report-CHN-2020-11.png" ] || fail "no screenshot written"
as_reader "$TF_PYTHON" "$CHECK" dom "$ART/report-CHN-2020-11.dom.html" --period 2020-11 \
    --note "$NOTE" --expect-ranks ASEAN=3,2,1 || fail "the rendered DOM does not match the views"
"$TF_PYTHON" "$CHECK" png "$ART/report-CHN-2020-11.png" --width 1280 --height 2000 \
    --min-colour '#4e79a7' --min-colour '#f28e2b' --min-colour '#e15759' ||
    fail "the screenshot does not show the charts"
echo "ok: Chromium rendered the report; screenshot $ART/report-CHN-2020-11.png"

# Another scope: month basis, partners as reported, no alerts section rows.
as_reader "$REPORT" --reporter CHN --basis month --level partner --period 2020-06 --top 5 \
    --alerts 0 --out "$W/month.html" -q || fail "tradeflow-report (month/partner) exited $?"
chromium_run --dump-dom "file://$W/month.html" >"$W/month.dom.html" || fail "chromium --dump-dom failed"
as_reader "$TF_PYTHON" "$CHECK" dom "$W/month.dom.html" --basis month --level partner \
    --period 2020-06 --top 5 --alerts 0 || fail "month/partner DOM does not match the views"
grep -q 'id="no-alerts"' "$W/month.html" || fail "--alerts 0 still lists alerts"

# The default period is the latest with data (2020-12 in this feed); -q
# prints nothing.
out="$(as_reader "$REPORT" --reporter CHN --out "$W/latest.html" -q)" || fail "latest: exited $?"
expect "nothing printed with -q" "$out" ""
grep -q 'data-period="2020-12"' "$W/latest.html" || fail "the default period is not 2020-12"
echo "ok: default period = latest with data (2020-12)"

# ------------------------------------------------------------ exit statuses
status() {
    local rc=0
    as_reader "$REPORT" "$@" >"$W/st.out" 2>"$W/st.err" || rc=$?
    echo "$rc"
}
expect "exit: reporter without data" "$(status --reporter USA --format text)" 2
expect "exit: period without data" "$(status --reporter CHN --period 1999-01 --format text)" 2
grep -q 'no data for customs CHN total ytd group in 1999-01 (nearest with data: 2018-02)' "$W/st.err" ||
    fail "no hint to the nearest period: $(cat "$W/st.err")"
expect "exit: a January (combined Jan-Feb release)" "$(status --reporter CHN --period 2020-01)" 2
grep -q '(nearest with data: 2019-12 2020-02)' "$W/st.err" || fail "no hint: $(cat "$W/st.err")"
expect "exit: no --reporter" "$(status --format text)" 64
expect "exit: unknown format" "$(status --reporter CHN --format pdf)" 64
expect "exit: impossible period" "$(status --reporter CHN --period 2020-13)" 64
expect "exit: flow of the other dataset" "$(status --reporter CHN --flow outward)" 64
expect "exit: --top 0" "$(status --reporter CHN --top 0)" 64
expect "exit: unreachable database (EX_UNAVAILABLE after startup.timeout, issue 14)" \
    "$(TRADEFLOW_STARTUP_TIMEOUT=2 status --reporter CHN --format text --pg "host=127.0.0.1 port=1 connect_timeout=3")" 69
expect "exit: unwritable output" "$(status --reporter CHN --out "$W/no/such/dir/r.html")" 1
[ -z "$(ls "$W/no" 2>/dev/null)" ] || fail "files left behind"
echo "PASS: test_report"
