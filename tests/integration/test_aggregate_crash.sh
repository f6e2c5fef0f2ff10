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
tf_new_workdir W
CYCLES="${TF_CRASH_CYCLES:-20}"
TC="$(tf_topic crash)"
GEN="$TF_SOURCE_DIR/producers/tradeflow-genfeed"

"$GEN" --kind customs --format csv --scale 1 --seed 7 --out "$W/feed.csv"
split_feed "$W/feed.csv" 2 "$W/part"
produce customs "$TC" "$W/part1.csv"
( sleep 3; produce customs "$TC" "$W/part2.csv" ) &
producer=$!

AGG="$(tf_bin tradeflow-aggregate)"
for i in $(seq 1 "$CYCLES"); do
    # Static membership: the restarted member takes its predecessor's
    # partitions at once instead of waiting for its session to time out.
    "$AGG" -g "grp-$TC" -t "$TC" --batch-size 700 --log-level warning \
        -X "group.instance.id=crash-$TC" 2>>"$W/agg.log" &
    pid=$!
    # Random instant: 0.3 .. 2.3 s (after start-up, mid-batch or between).
    sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 2 }')"
    kill -9 "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    # 137: killed by us; anything else: it had already stopped on its own.
    [ "$rc" = 137 ] || { tail -20 "$W/agg.log" >&2; fail "cycle $i: the consumer exited $rc before it was killed"; }
    printf '%s ' "$(q "select count(*) from tradeflow.facts")"
done
echo
wait "$producer" || fail "background producer failed"
echo "ok: $CYCLES SIGKILL cycles; facts so far: $(q "select count(*) from tradeflow.facts")"

[ "$(q "select count(*) from tradeflow.facts")" -gt 0 ] || fail "the killed consumers applied nothing"
aggregate "grp-$TC" "$TC" -- -X "group.instance.id=crash-$TC"
check_oracle "$W" --customs "$W/part1.csv" --customs "$W/part2.csv"
echo "1 passed, 0 failed"
