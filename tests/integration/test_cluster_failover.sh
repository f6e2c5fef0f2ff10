#!/usr/bin/env bash
# A 3-broker KRaft cluster on loopback (replication factor 3,
# min.insync.replicas 2): one broker is killed with SIGKILL and restarted
# while files are being published and consumed. Every file is published
# (a file whose transaction failed is sent again) and the final tables equal
# the independently computed truth to the cent.
#
# This test starts its own cluster and PostgreSQL in a private stack
# directory on free ports, and removes them at the end.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
STACK="$TF_SOURCE_DIR/deploy/stack.sh"
tf_new_workdir W
chmod 755 "$W" # PostgreSQL runs as the postgres user and must reach its data
export TRADEFLOW_STACK_DIR="$W/stack"
# Seven consecutive free ports: 3 brokers (+ controllers) and PostgreSQL.
read -r KP PP < <("$TF_PYTHON" - <<'PY'
import socket
def free(n):
    for base in range(21000, 32000, 10):
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base
k = free(7)  # below the ephemeral range (32768-60999), which outgoing connections use
print(k, k + 6)
PY
)
export TRADEFLOW_KAFKA_PORT="$KP" TRADEFLOW_PG_PORT="$PP"
# At exit (after the background jobs are gone): the private stack is stopped
# (its data go with $W); lib.sh need not drop its databases and topics.
tf_on_exit 'tf_kill_jobs KILL; "$STACK" down >/dev/null 2>&1'
tf_forget_resources
"$STACK" up --fresh --brokers 3 || fail "cannot start the 3-broker cluster"
eval "$("$STACK" env)"
tf_require_stack
tf_new_db cluster

TC="$(tf_topic cluster)"
"$TF_SOURCE_DIR/producers/tradeflow-genfeed" --kind customs --format csv --scale 1 --seed 3 \
    --out "$W/feed.csv"
split_feed "$W/feed.csv" 4 "$W/f"
AGG="$(tf_bin tradeflow-aggregate)"

feed_files "$W/produce.log" "$TC" "--replication-factor 3 -X message.timeout.ms=60000" \
    "$W/f1.csv" "$W/f2.csv" "$W/f3.csv" "$W/f4.csv" &
feeder=$!
"$AGG" -g "grp-$TC" -t "$TC" --batch-size 1000 --log-level warning 2>>"$W/agg.log" &
consumer=$!

sleep 4
echo "-- SIGKILL broker 2"
"$STACK" kill-broker 2 KILL
sleep 6
echo "-- restart broker 2"
"$STACK" start-broker 2
wait "$feeder" || fail "the feed failed"
echo "re-sent files: $(grep -c re-sending "$W/produce.log" || true)"
kill -TERM "$consumer"
wait "$consumer" || { tail -20 "$W/agg.log" >&2; fail "the consumer did not stop cleanly"; }

# The topic really is replicated 3 ways.
kcat -L -b "$TRADEFLOW_BROKERS" -t "$TC" | grep -q "replicas: [0-9],[0-9],[0-9]" ||
    fail "topic $TC is not replicated 3 ways: $(kcat -L -b "$TRADEFLOW_BROKERS" -t "$TC")"

aggregate "grp-$TC" "$TC"
check_oracle "$W" --customs "$W/f1.csv" --customs "$W/f2.csv" --customs "$W/f3.csv" \
    --customs "$W/f4.csv"
echo "1 passed, 0 failed"
