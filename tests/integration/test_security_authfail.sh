#!/usr/bin/env bash
# A wrong SCRAM password is a configuration error, not an outage: every
# program that talks to Kafka must stop with a clear error and a non-zero
# exit within a bounded time (issue 7, item 4), instead of retrying forever.
# Checked for tradeflow-produce, tradeflow-aggregate and tradeflow-relay
# (all three log librdkafka's "SASL authentication error ... invalid
# credentials"; the bound is SEC_AUTH_BOUND seconds, default 30).
#
# Private stack: deploy/stack.sh up --secure on free ports, removed at exit.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/sec_lib.sh"

sec_stack_up
W="$SEC_W"
BOUND="${SEC_AUTH_BOUND:-30}"
tf_new_db authfail
TC="$(tf_topic authfail)"
"$(tf_bin tradeflow-aggregate)" migrate >"$W/migrate.log" 2>&1 || fail "migrate"
PG_PW="$(cat "$TRADEFLOW_PG_PASSWORD_FILE")"
APP="host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=$TRADEFLOW_PG_APP_USER sslmode=require"
BAD=(-b "$TRADEFLOW_SASL_BROKERS" -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-512
    -X sasl.username="$TRADEFLOW_SCRAM_USER" -X sasl.password="wrong-$RANDOM-$RANDOM")

# All three at once; each is judged on its own.
check() { # NAME CMD...
    local name="$1" rc=0 t0=$SECONDS
    shift
    timeout -k 2 "$BOUND" "$@" >"$W/$name.log" 2>&1 </dev/null || rc=$?
    echo "$rc $((SECONDS - t0))" >"$W/$name.res"
}
check produce "$(tf_bin tradeflow-produce)" --kind customs --topic "$TC" "${BAD[@]}" \
    "$TF_SOURCE_DIR/tests/integration/agg/semantics1.csv" &
check aggregate env PGPASSWORD="$PG_PW" "$(tf_bin tradeflow-aggregate)" --no-migrate -g "g-$TC" \
    -t "$TC" --pg "$APP" "${BAD[@]}" &
check relay env PGPASSWORD="$PG_PW" "$(tf_bin tradeflow-relay)" -t "$TC.alerts" --pg "$APP" \
    "${BAD[@]}" &
wait

failed=0 passed=0
for p in produce aggregate relay; do
    read -r rc secs <"$W/$p.res"
    if ! grep -q "SASL authentication error.*invalid credentials" "$W/$p.log"; then
        echo "FAIL: tradeflow-$p: no clear SASL authentication error in its log" >&2
        failed=$((failed + 1))
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "FAIL: tradeflow-$p still running after $BOUND s with a wrong SCRAM password (logs the error and retries forever)" >&2
        failed=$((failed + 1))
    elif [ "$rc" = 0 ]; then
        echo "FAIL: tradeflow-$p exited 0 with a wrong SCRAM password" >&2
        failed=$((failed + 1))
    else
        echo "ok: tradeflow-$p: exit $rc after $secs s with 'SASL authentication error ... invalid credentials'"
        passed=$((passed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
