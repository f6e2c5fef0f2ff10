#!/usr/bin/env bash
# Faults during a continuous feed with duplicates and revisions: PostgreSQL
# restarted (immediate, then fast shutdown, then down for 8 s while a file
# arrives and a member joins), the Kafka broker restarted, and consumers
# joining and leaving the group while files keep arriving. The final
# tables must equal the independently computed truth to the cent.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_faults
tf_new_workdir W
STACK="$TF_SOURCE_DIR/deploy/stack.sh"
TC="$(tf_topic faults)"
GEN="$TF_SOURCE_DIR/producers/tradeflow-genfeed"
AGG="$(tf_bin tradeflow-aggregate)"
"$GEN" --kind customs --format csv --scale 1 --seed 5 --out "$W/feed.csv"
split_feed "$W/feed.csv" 5 "$W/f"
FILES=("$W/f1.csv" "$W/f2.csv" "$W/f3.csv" "$W/f4.csv")  # f5: during the outage

feed_files "$W/produce.log" "$TC" "" "${FILES[@]}" &
feeder=$!

"$AGG" -g "grp-$TC" -t "$TC" --batch-size 800 --log-level notice 2>>"$W/c1.log" &
c1=$!
sleep 3
echo "-- PostgreSQL: immediate shutdown and restart"
"$STACK" restart-pg immediate
sleep 2
echo "-- a second consumer joins"
"$AGG" -g "grp-$TC" -t "$TC" --batch-size 800 --log-level notice 2>>"$W/c2.log" &
c2=$!
sleep 3
echo "-- Kafka broker restarted"
"$STACK" kill-broker 1 TERM
sleep 2
"$STACK" start-broker 1
sleep 3
echo "-- PostgreSQL: fast shutdown and restart"
"$STACK" restart-pg fast
sleep 2
echo "-- PostgreSQL down for 8 s while a file arrives and a third consumer joins:"
echo "   batches fail and stay in flight, members revoke partitions with a failed"
echo "   batch, the newcomer waits for its offsets"
"$AGG" -g "grp-$TC" -t "$TC" --batch-size 800 --log-level notice 2>>"$W/c3.log" &
c3=$!
sleep 0.5
"$STACK" restart-pg immediate 8 &
pgdown=$!
sleep 1
feed_files "$W/produce.log" "$TC" "" "$W/f5.csv"
wait "$pgdown" || fail "restart-pg failed"
sleep 3
kill -TERM "$c3"
wait "$c3" || { tail -20 "$W/c3.log" >&2; fail "consumer 3 did not shut down cleanly"; }
echo "-- the first consumer leaves"
kill -TERM "$c1"
wait "$c1" || { tail -20 "$W/c1.log" >&2; fail "consumer 1 did not shut down cleanly"; }
wait "$feeder" || fail "the feed failed"
kill -TERM "$c2"
wait "$c2" || { tail -20 "$W/c2.log" >&2; fail "consumer 2 did not shut down cleanly"; }
grep -c "re-sending" "$W/produce.log" || true

aggregate "grp-$TC" "$TC"
check_oracle "$W" $(for f in "${FILES[@]}" "$W/f5.csv"; do printf -- '--customs %s ' "$f"; done)
echo "1 passed, 0 failed"
