#!/usr/bin/env bash
# bench/load.sh - a sustained feed at a fixed rate for a bounded time, on the
# running stack (eval "$(deploy/stack.sh env)"): tradeflow-produce in live
# mode from a pipe fed at RATE records/s, tradeflow-aggregate as a daemon.
# Every SAMPLE seconds it records the consumer's lag (records published but
# not yet committed to PostgreSQL), its throughput and its RSS; at the end it
# checks the tables against the oracle and prints the figures.
#
#   bench/load.sh [--rate N (1000)] [--seconds S (600)] [--sample S (5)]
#                 [--build DIR (build)] [--check [--no-rss-check]] [--out FILE]
#
# --check turns the figures into assertions (used by the test suite): the
# second half's peak RSS is at most the first half's + max(25%, 16 MiB) (the
# bounded prefetch fills while a lag builds up; growth with time is what
# fails), the lag drains within 120 s of the feed's end, and the tables are
# exact.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RATE=1000 SECONDS_=600 SAMPLE=5 BUILD="$REPO/build" CHECK=0 OUT="" RSS_CHECK=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rate) RATE="$2"; shift 2 ;;
    --seconds) SECONDS_="$2"; shift 2 ;;
    --sample) SAMPLE="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --check) CHECK=1; shift ;;
    --no-rss-check) RSS_CHECK=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h | --help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "load.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
: "${TRADEFLOW_BROKERS:?run eval \"\$(deploy/stack.sh env)\" first}"
PY="${TF_PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
W="$(mktemp -d)"
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
RUN="load$$"
TOPIC="tft.$RUN.customs"
GROUP="grp-$RUN"
DB="${TF_LOAD_DB:-tft_$RUN}"
own_db=0
if [ -z "${TF_LOAD_DB:-}" ]; then
    psql -X -q -d postgres -c "CREATE DATABASE $DB" && own_db=1
fi
export PGDATABASE="$DB"

need=$((RATE * SECONDS_ + 1000))
scale=$(awk -v n="$need" 'BEGIN { s = n / 19000; if (s < 1) s = 1; printf "%.2f", s * 1.05 }')
"$REPO/producers/tradeflow-genfeed" --kind customs --format csv --scale "$scale" --seed 42 \
    --out "$W/all.csv" -q
head -n "$((need + 1))" "$W/all.csv" >"$W/feed.csv"

"$BUILD/bin/tradeflow-aggregate" -g "$GROUP" -t "$TOPIC" --settle-interval 5 \
    --log-level warning 2>"$W/agg.log" &
agg=$!
"$PY" "$REPO/bench/pace.py" "$W/feed.csv" "$RATE" "$SECONDS_" 2>"$W/sent" |
    "$BUILD/bin/tradeflow-produce" --kind customs --format csv --topic "$TOPIC" --partitions 6 \
        --quiet - 2>"$W/produce.log" &
feeder=$!

published() { # records in the topic (end offsets summed; includes no markers in live mode)
    kcat -Q -b "$TRADEFLOW_BROKERS" -t "$TOPIC:0:-1" -t "$TOPIC:1:-1" -t "$TOPIC:2:-1" \
        -t "$TOPIC:3:-1" -t "$TOPIC:4:-1" -t "$TOPIC:5:-1" 2>/dev/null |
        awk '/offset/ { s += $NF } END { print s + 0 }'
}
committed() {
    psql -X -At -c "SELECT coalesce(sum(next_offset), 0) FROM tradeflow.consumer_offsets
                    WHERE group_id = '$GROUP'" 2>/dev/null || echo 0
}
rss() { awk '/VmRSS/ { print $2 }' "/proc/$agg/status" 2>/dev/null || echo 0; }

echo "t_s published committed lag rss_kb" >"$W/samples"
t0=$SECONDS
while kill -0 "$feeder" 2>/dev/null; do
    sleep "$SAMPLE"
    p=$(published) c=$(committed)
    echo "$((SECONDS - t0)) $p $c $((p - c)) $(rss)" >>"$W/samples"
done
feed_end=$((SECONDS - t0))
# Drain: wait until everything published is committed (bounded).
for _ in $(seq 1 120); do
    p=$(published) c=$(committed)
    echo "$((SECONDS - t0)) $p $c $((p - c)) $(rss)" >>"$W/samples"
    [ "$c" -ge "$p" ] && break
    sleep 1
done
drain=$((SECONDS - t0 - feed_end))
kill -TERM "$agg"
agg_rc=0
wait "$agg" || agg_rc=$?
sent=$(cat "$W/sent")

report="$(awk -v rate="$RATE" -v sent="$sent" -v fe="$feed_end" -v drain="$drain" '
    NR == 1 { next }
    { n++; t[n] = $1; lag[n] = $4; r[n] = $5; if ($4 > maxlag) maxlag = $4
      if ($1 <= fe) { last = n } }
    END {
        half = int(last / 2); p1 = 0; p2 = 0
        for (i = 1; i <= half; i++) if (r[i] > p1) p1 = r[i]
        for (i = half + 1; i <= last; i++) if (r[i] > p2) p2 = r[i]
        printf "feed: %d records at %d/s for %d s; drained %d s after the feed ended\n", sent, rate, fe, drain
        printf "throughput (consumer): %.0f records/s\n", sent / (fe + drain)
        printf "lag: max %d records (%.1f s of feed), at feed end %d\n", maxlag, maxlag / rate, lag[last]
        printf "RSS: peak %d KiB in the first half, %d KiB in the second half (%+.1f%%)\n", p1, p2, (p2 - p1) * 100 / (p1 ? p1 : 1)
        printf "RSSCHECK %d %d\n", p1, p2
    }' "$W/samples")"
echo "$report" | grep -v RSSCHECK
[ -z "$OUT" ] || { echo "$report" | grep -v RSSCHECK; echo; cat "$W/samples"; } >"$OUT"

status=0
if [ "$CHECK" = 1 ]; then
    read -r _ p1 p2 < <(echo "$report" | grep RSSCHECK)
    slack=$((p1 / 4 > 16384 ? p1 / 4 : 16384))
    if [ "$RSS_CHECK" = 1 ] && [ "$p2" -gt $((p1 + slack)) ]; then
        echo "FAIL: RSS grew from $p1 to $p2 KiB" >&2; status=1
    fi
    # (Nothing sent, published and committed would also "drain": not a pass.)
    [ "$sent" -gt 0 ] || { echo "FAIL: no record was sent" >&2; status=1; }
    [ "$(published)" = "$sent" ] || { echo "FAIL: $sent records sent, $(published) published" >&2; status=1; }
    [ "$(committed)" -ge "$(published)" ] || { echo "FAIL: lag did not drain" >&2; status=1; }
    [ "$agg_rc" = 0 ] || { echo "FAIL: tradeflow-aggregate exited $agg_rc after SIGTERM" >&2; status=1; }
    # Only the records actually sent count: rebuild the expected set from them.
    head -n "$((sent + 1))" "$W/feed.csv" >"$W/sent.csv"
    "$PY" "$REPO/tests/oracle/tf_oracle.py" -q --customs "$W/sent.csv" --ranking-out "$W/exp.csv"
    psql -X -At -c "copy (select dataset, reporter, flow, basis, to_char(period, 'YYYY-MM-DD'),
        level, partner, rank, value_usd, share_pct, prev_year_value_usd, yoy_pct, share_change_pp
        from reporting.partner_ranking) to stdout with (format csv)" >"$W/act.csv"
    [ -s "$W/exp.csv" ] || { echo "FAIL: the oracle computed no rows" >&2; status=1; }
    "$PY" "$REPO/tests/oracle/compare.py" "$W/exp.csv" "$W/act.csv" || status=1
fi
[ "$own_db" = 1 ] && psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
exit $status
