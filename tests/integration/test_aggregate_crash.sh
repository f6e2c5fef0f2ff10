#!/usr/bin/env bash
# Crash safety: SIGKILL the consumer at random instants, again and again,
# while it ingests a feed with duplicates and revisions (and while a second
# file is still being published); restart it each time. The final tables
# must equal the independently computed truth to the cent.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_crash
W="$(mktemp -d)"
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
CYCLES="${TF_CRASH_CYCLES:-20}"
TC="$(tf_topic crash)"
GEN="$TF_SOURCE_DIR/producers/tradeflow-genfeed"

"$GEN" --kind customs --format csv --scale 1 --seed 7 --out "$W/a.csv"
"$GEN" --kind customs --format csv --scale 1 --seed 8 --out "$W/b.csv"
# b.csv re-sends a's records with other values at higher revisions too.
produce customs "$TC" "$W/a.csv"
( sleep 3; produce customs "$TC" "$W/b.csv" ) &
producer=$!

AGG="$(tf_bin tradeflow-aggregate)"
for i in $(seq 1 "$CYCLES"); do
    "$AGG" -g "grp-$TC" -t "$TC" --batch-size 700 --log-level warning 2>>"$W/agg.log" &
    pid=$!
    # Random instant: 0.3 .. 2.3 s (after start-up, mid-batch or between).
    sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 2 }')"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
wait "$producer" || fail "background producer failed"
echo "ok: $CYCLES SIGKILL cycles; facts so far: $(q "select count(*) from tradeflow.facts")"

aggregate "grp-$TC" "$TC"
check_oracle "$W" --customs "$W/a.csv" --customs "$W/b.csv"
echo "1 passed, 0 failed"
