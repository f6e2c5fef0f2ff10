#!/usr/bin/env bash
# bench/bench_realistic.sh - tradeflow-aggregate on the realistic shape
# (issue 15): backfill records/s at several feed sizes against the sample
# shape in the same run, then a live feed with old-period revisions on top of
# the largest history, with ranking-shift alert latency.
#
#   bench/bench_realistic.sh [--lines "1000000 4000000"] [--sample 1000000]
#                            [--live SECONDS] [--keep]
#
# 1. Feeds: `tradeflow-genfeed --realistic` (4 reporters, 220 partners,
#    2015-2024, one line per HS chapter, 3% revisions reaching back up to 24
#    releases, 1% duplicates; SYNTHETIC) cut to exactly N lines each, and a
#    sample-shape feed of --sample lines (bench/lib.sh gen_feed); each
#    published once to its own 6-partition topic.
# 2. Backfill: for each feed, `tradeflow-aggregate --exit-at-end` into a
#    fresh database under /usr/bin/time: wall, records/s, user+sys CPU, peak
#    RSS; from its debug log the longest batch transaction and the longest
#    settle point; the server time per PL/pgSQL function
#    (pg_stat_user_functions) and, when pg_stat_statements is loaded, the
#    top statements of that database (bench/README.md says how to load it).
# 3. Live (--live S > 0, default 60): on the database of the largest
#    realistic feed, tradeflow-aggregate as a daemon and tradeflow-alerts
#    --json as the LISTENing client; bench/live_feed.py writes LIVE_RATE
#    records/s (default 2000) for S seconds into `tradeflow-produce -`: new
#    records of the next periods and LIVE_REVISIONS (default 0.02) revisions
#    of stored records of old periods, and every EVENT_EVERY s (default 1)
#    one revision that moves a partner ranked 11-20 in an old period to the
#    top (a certain shift). Latency = produce write -> NOTIFY at the client
#    (p50/p99/max), and -> detected_at (start of the detecting transaction);
#    the longest batch and settle point of the daemon; consumer lag at the end.
# Environment: TF_BUILD_DIR (default build/), TRADEFLOW_SCHEMA_DIR (default
# schemas/; point both at an older build to measure it), BATCH_MS (daemon
# --batch-ms, default 100), and the stack's TRADEFLOW_BROKERS, PG*.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${TF_BUILD_DIR:-$REPO/build}"
AGG="$BUILD/bin/tradeflow-aggregate"
PRODUCE="$BUILD/bin/tradeflow-produce"
ALERTS="$BUILD/bin/tradeflow-alerts"
PYTHON="${TF_PYTHON:-python3}"
GENFEED="$REPO/producers/tradeflow-genfeed"
export TRADEFLOW_SCHEMA_DIR="${TRADEFLOW_SCHEMA_DIR:-$REPO/schemas}"
LINES="1000000 4000000"
SAMPLE=1000000
LIVE=60
KEEP=0
LIVE_RATE="${LIVE_RATE:-2000}"
LIVE_REV="${LIVE_REVISIONS:-0.02}"
EVENT_EVERY="${EVENT_EVERY:-1}"
BATCH_MS="${BATCH_MS:-100}"
PARTS=6
while [ $# -gt 0 ]; do
    case "$1" in
    --lines) LINES="${2:?}"; shift 2 ;;
    --sample) SAMPLE="${2:?}"; shift 2 ;;
    --live) LIVE="${2:?}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d' >&2; exit 64 ;;
    esac
done
die() { echo "bench_realistic: $*" >&2; exit 1; }
say() { echo "bench_realistic: $*" >&2; }
. "$REPO/bench/lib.sh"
: "${TRADEFLOW_BROKERS:?set TRADEFLOW_BROKERS (eval \"\$(deploy/stack.sh env)\")}"
B="$TRADEFLOW_BROKERS"
for x in "$AGG" "$PRODUCE" "$ALERTS"; do [ -x "$x" ] || die "$x not built (TF_BUILD_DIR=$BUILD)"; done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench_realistic.XXXXXX")"
TAG="$(date +%Y%m%d%H%M%S)_$$"
DBS=()
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "$KEEP" = 0 ]; then
        for d in "${DBS[@]}"; do psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS $d" || true; done
        rm -rf "$WORK"
    else
        say "kept $WORK and databases ${DBS[*]}"
    fi
}
trap cleanup EXIT
HAVE_PGSS="$(sql postgres "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")"

fresh_db() {
    DBS+=("$1")
    sql postgres "CREATE DATABASE $1"
    sql postgres "ALTER DATABASE $1 SET track_functions = 'pl'"
    "$AGG" migrate --pg "dbname=$1" --log-level warning || die "migrating $1 failed"
}

# Exactly n realistic lines in $2 (genfeed --realistic sizes by --scale,
# about 140,000 lines per unit above a floor; retried with a larger scale
# when short; the cut drops the last releases' tail).
gen_realistic() {
    local n="$1" out="$2" scale got try
    scale="$(awk -v n="$n" 'BEGIN { printf "%.4f", n / 138000 + 0.3 }')"
    for try in 1 2 3 4; do
        "$PYTHON" "$GENFEED" --kind customs --realistic --scale "$scale" --seed 11 -q --out "$out.full"
        got="$(($(wc -l <"$out.full") - 1))"
        [ "$got" -ge "$n" ] && break
        scale="$(awk -v s="$scale" -v n="$n" -v g="$got" 'BEGIN { printf "%.4f", s * n / g * 1.02 }')"
    done
    head -n "$((n + 1))" "$out.full" >"$out"
    rm -f "$out.full"
    [ "$(($(wc -l <"$out") - 1))" -eq "$n" ] || die "genfeed gave fewer than $n lines"
    say "realistic feed: --scale $scale, $got lines cut to $n"
}

publish() { # feed topic
    "$PRODUCE" --kind customs -q --partitions "$PARTS" --topic "$2" "$1" || die "tradeflow-produce $1 failed"
}

# One backfill: name feed-lines topic -> a line of results in $WORK/results.
backfill() {
    local name="$1" n="$2" topic="$3" db="bench_real_${1}_$TAG"
    fresh_db "$db"
    [ "$HAVE_PGSS" = 1 ] && sql postgres "SELECT pg_stat_statements_reset()" >/dev/null
    say "$name: tradeflow-aggregate --exit-at-end ($n messages) into $db"
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/$name.time" \
        "$AGG" --pg "dbname=$db" -b "$B" -t "$topic" -g "bench-real-$name-$TAG" --exit-at-end \
        --log-level debug 2>"$WORK/$name.log" || { tail -20 "$WORK/$name.log" >&2; die "$name failed"; }
    read -r wall usr sys rss <"$WORK/$name.time"
    # "batch committed: N records, X ms[, settle point]"
    local maxb maxs nsettle
    maxb="$(sed -n 's/.*batch committed: [0-9]* records, \([0-9.]*\) ms.*/\1/p' "$WORK/$name.log" | sort -g | tail -1)"
    maxs="$(sed -n 's/.*batch committed: [0-9]* records, \([0-9.]*\) ms, settle point.*/\1/p' "$WORK/$name.log" | sort -g | tail -1)"
    nsettle="$(grep -c 'batch committed:.*settle point' "$WORK/$name.log" || true)"
    local rows alerts
    rows="$(sql "$db" "SELECT count(*) FROM tradeflow.ranking")"
    alerts="$(sql "$db" "SELECT count(*) FROM tradeflow.alerts")"
    awk -v nm="$name" -v n="$n" -v w="$wall" -v u="$usr" -v s="$sys" -v r="$rss" -v mb="${maxb:-0}" \
        -v ms="${maxs:-0}" -v ns="$nsettle" -v rows="$rows" -v al="$alerts" 'BEGIN {
        printf "| %-22s | %9d | %7.1f | %9.0f | %6.1f | %8.1f MB | %8.0f | %8.0f | %4d | %9d | %8d |\n",
               nm, n, w, n / w, u + s, r / 1024, mb, ms, ns, rows, al }' >>"$WORK/results"
    {
        echo "### $name: server time per PL/pgSQL function (total includes callees)"
        sql "$db" "SELECT funcname || ': calls ' || calls || ', total ' || round(total_time::numeric)
                   || ' ms, self ' || round(self_time::numeric) || ' ms'
                   FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 10"
        if [ "$HAVE_PGSS" = 1 ]; then
            echo "### $name: top statements (pg_stat_statements, track = all)"
            sql postgres "SELECT round(total_exec_time::numeric) || ' ms, ' || calls || ' calls, '
                          || rows || ' rows: ' || regexp_replace(left(query, 110), '\s+', ' ', 'g')
                          FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
                          WHERE d.datname = '$db' AND query !~* '^(BEGIN|COMMIT|SELECT .* FROM tradeflow\.(apply_stage|settle_alerts))'
                          ORDER BY total_exec_time DESC LIMIT 14"
        fi
    } >>"$WORK/breakdown"
    eval "DB_$name=$db"
}

# ---------------------------------------------------------------- feeds
say "machine: $(uptime)"
names=()
for n in $LINES; do
    say "generating $n realistic SYNTHETIC lines"
    gen_realistic "$n" "$WORK/real$n.csv"
    publish "$WORK/real$n.csv" "bench.real.$n.$TAG"
    names+=("real$n")
done
if [ "$SAMPLE" -gt 0 ]; then
    say "generating $SAMPLE sample-shape SYNTHETIC lines"
    gen_feed "$SAMPLE" "$WORK/sample$SAMPLE.csv" 7
    publish "$WORK/sample$SAMPLE.csv" "bench.sample.$SAMPLE.$TAG"
fi

# ---------------------------------------------------------------- backfill
cat >"$WORK/results" <<'EOF'
| feed                   |  messages |  wall s | records/s |  CPU s |  peak RSS   | max batch ms | max settle ms | settle points | ranking rows | alerts |
|------------------------|----------:|--------:|----------:|-------:|------------:|---------:|---------:|-----:|----------:|---------:|
EOF
[ "$SAMPLE" -gt 0 ] && backfill "sample$SAMPLE" "$SAMPLE" "bench.sample.$SAMPLE.$TAG"
last=""
for n in $LINES; do
    backfill "real$n" "$n" "bench.real.$n.$TAG"
    last="real$n"
done
say "machine after the backfills: $(uptime)"
echo
echo "## backfill (records/s = messages / wall time of the whole process; CPU = client user+sys)"
cat "$WORK/results"
echo
cat "$WORK/breakdown"

# ---------------------------------------------------------------- live
[ "$LIVE" -gt 0 ] && [ -n "$last" ] || exit 0
eval "DB=\$DB_$last"
export PGDATABASE="$DB"
LT="bench.live.$TAG"
say "live: $LIVE_RATE records/s for $LIVE s, $LIVE_REV revisions of old periods, a certain shift every $EVENT_EVERY s, on $DB"
"$PYTHON" "$REPO/bench/live_feed.py" prepare --out "$WORK/live.state" --tag "LIVE$TAG" || die "live_feed prepare failed"
# The topic, with one new record, before the consumer subscribes.
"$PYTHON" - "$WORK/live.state" >"$WORK/live_base.csv" <<'EOF2'
import json, sys
s = json.load(open(sys.argv[1]))
print("record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit")
print("SYN-LIVEBASE%s,0,USA,CAN,export,%s,01,1.00,," % (s["tag"], s["next"]))
EOF2
publish "$WORK/live_base.csv" "$LT"
"$AGG" -b "$B" -t "$LT" -g "bench-live-$TAG" --batch-ms "$BATCH_MS" --log-level debug \
    2>"$WORK/live.log" &
agg_pid=$!
"$ALERTS" --json 2>"$WORK/alerts.err" |
    "$PYTHON" "$REPO/tests/integration/alerts_peer.py" stamp >"$WORK/seen.tsv" &
sleep 4 # group join, LISTEN
t0="$(now)"
"$PYTHON" "$REPO/bench/live_feed.py" run --state "$WORK/live.state" --rate "$LIVE_RATE" \
    --seconds "$LIVE" --revisions "$LIVE_REV" --event-every "$EVENT_EVERY" \
    --events-out "$WORK/events.tsv" |
    "$PRODUCE" --kind customs --format csv --topic "$LT" --partitions "$PARTS" --quiet -
t1="$(now)"
# Lag right after the feed ended, then give the last events 5 s.
new_at_end="$(sql "$DB" "SELECT count(*) FROM tradeflow.facts WHERE record_id LIKE 'SYN-LIVELIVE$TAG-%'")"
sleep 5
new_after="$(sql "$DB" "SELECT count(*) FROM tradeflow.facts WHERE record_id LIKE 'SYN-LIVELIVE$TAG-%'")"
kill "$agg_pid" 2>/dev/null || true
wait "$agg_pid" 2>/dev/null || true
echo
echo "## live on $last's history: $LIVE_RATE records/s for $LIVE s (feed wall $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s)"
echo "lines written: $(cat "$WORK/events.tsv.count" 2>/dev/null || echo '?'); new records applied when the feed ended: $new_at_end, 5 s later: $new_after (the difference is the consumer lag at the end, in new records)"
"$PYTHON" "$REPO/bench/live_feed.py" report --events "$WORK/events.tsv" --seen "$WORK/seen.tsv" \
    --log "$WORK/live.log"
say "machine after the live run: $(uptime)"
