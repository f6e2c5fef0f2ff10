#!/usr/bin/env bash
# Alerts under crashes: two consumers of one group (so alerts of two
# reporters are inserted by concurrent transactions, exercising the gap-free
# cursor) and the relay are SIGKILLed again and again while they ingest
# synthetic feeds (tradeflow-genfeed, CHN and USA, duplicates and revisions
# included), settling every second. Then one consumer and the relay run to
# the end. Required:
#   - the active shifts of the table equal the alerts oracle (no shift
#     active twice, none missing, every retraction withdraws one shift);
#   - the Kafka topic holds every deliverable alert exactly once, in
#     alert_id order (the relay was killed between commits and UPDATEs);
#   - NOTIFY delivered each deliverable alert exactly once (killed batches
#     notify nothing);
#   - tradeflow-alerts printed each exactly once, in alert_id order.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/alerts_lib.sh"
tf_require_stack
tf_new_db alerts_crash
tf_new_workdir W
CYCLES="${TF_CRASH_CYCLES:-8}"
TC="$(tf_topic alerts_crash_in)"
TA="$(tf_topic alerts_crash_out)"
GEN="$TF_SOURCE_DIR/producers/tradeflow-genfeed"
FOLLOW="$(tf_bin tradeflow-alerts)"
RELAY="$(tf_bin tradeflow-relay)"
AGG="$(tf_bin tradeflow-aggregate)"

"$GEN" --kind customs --scale 1 --seed 21 --years 2019-2020 --out "$W/chn.csv" -q
"$GEN" --kind customs --scale 1 --seed 22 --years 2019-2020 --reporter USA --out "$W/usa.csv" -q
"$AGG" migrate --log-level warning || fail "migrate"
"$TF_PYTHON" "$TF_ALERTS_PEER" listen --ready "$W/listen.ready" >"$W/notify.jsonl" &
listener=$!
"$FOLLOW" --json --after-id 0 >"$W/follow.jsonl" 2>"$W/follow.err" &
follower=$!
wait_for "the LISTEN client" 30 test -e "$W/listen.ready"
produce customs "$TC" "$W/chn.csv" "$W/usa.csv"

rnd() { awk -v s="$RANDOM" -v a="$1" -v b="$2" 'BEGIN { srand(s); printf "%.2f", a + rand() * (b - a) }'; }
for i in $(seq 1 "$CYCLES"); do
    "$AGG" -g "grp-$TC" -t "$TC" --batch-size 1000 --settle-interval 1 --log-level warning \
        2>>"$W/agg.log" &
    a1=$!
    "$AGG" -g "grp-$TC" -t "$TC" --batch-size 1000 --settle-interval 1 --log-level warning \
        2>>"$W/agg.log" &
    a2=$!
    "$RELAY" -t "$TA" --log-level warning 2>>"$W/relay.log" &
    rl=$!
    sleep "$(rnd 1.5 4)"
    kill -9 "$rl" 2>/dev/null || true
    sleep "$(rnd 0 1)"
    kill -9 "$a1" "$a2" 2>/dev/null || true
    # 137: killed by us; anything else: it had already stopped on its own.
    for p in "$a1" "$a2" "$rl"; do
        rc=0
        wait "$p" 2>/dev/null || rc=$?
        [ "$rc" = 137 ] || { tail -n 20 "$W/agg.log" "$W/relay.log" >&2; fail "cycle $i: pid $p exited $rc before it was killed"; }
    done
done
echo "ok: $CYCLES SIGKILL cycles; alerts so far: $(q "select count(*) from tradeflow.alerts"), published: $(q "select count(*) from tradeflow.alerts where published_at is not null")"

aggregate "grp-$TC" "$TC" -- --batch-size 1000 --settle-interval 1
# The consumer must have read everything before alerts can be judged (if
# not, that is tradeflow-aggregate's --exit-at-end, not the alerts). The
# files were produced in transactions, so each partition ends with a commit
# marker: a stored next offset of end - 1 is complete.
for p in 0 1 2 3 4 5; do
    end="$(kcat -Q -b "$TRADEFLOW_BROKERS" -t "$TC:$p:-1" 2>/dev/null | awk '{print $NF}')"
    stored="$(q "select coalesce(max(next_offset), -1) from tradeflow.consumer_offsets
                 where topic = '$TC' and partition = $p")"
    [ -n "$end" ] && [ "$stored" -ge $((end - 1)) ] ||
        fail "tradeflow-aggregate --exit-at-end exited with $TC [$p] at stored offset $stored, end $end"
done
"$RELAY" -t "$TA" --exit-when-idle --log-level warning || fail "relay exited $?"
sleep 1.5
kill -TERM "$follower" "$listener"
wait "$follower" || fail "the follower exited $?"
wait "$listener" || fail "the LISTEN client exited $? on SIGTERM"

check_alerts_oracle "$W" 10 --customs "$W/chn.csv" --customs "$W/usa.csv"
deliverable_ids >"$W/ids.txt"
[ -s "$W/ids.txt" ] || fail "no alerts"
dump_topic "$TA" "$W/topic.csv"
cut -d, -f2 "$W/topic.csv" | diff - "$W/ids.txt" >"$W/topic.diff" ||
    { head "$W/topic.diff" >&2; fail "topic ids differ from the table (duplicates, gaps or order)"; }
echo "ok: the topic holds the $(wc -l <"$W/ids.txt") alerts once each, in alert_id order"
json_ids "$W/notify.jsonl" | sort -n | diff - "$W/ids.txt" >"$W/notify.diff" ||
    { head "$W/notify.diff" >&2; fail "NOTIFY ids differ from the table"; }
echo "ok: NOTIFY delivered each alert once"
json_ids "$W/follow.jsonl" | diff - "$W/ids.txt" >"$W/follow.diff" ||
    { head "$W/follow.diff" >&2; fail "follower ids differ from the table"; }
echo "ok: tradeflow-alerts printed each alert once, in order"
echo "ok: retractions: $(q "select count(*) from tradeflow.alerts where kind = 'retraction'"), alert_id holes (rolled back): $(q "select max(alert_id) - count(*) from tradeflow.alerts")"
echo "5 passed, 0 failed"
