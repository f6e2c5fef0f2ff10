#!/usr/bin/env bash
# deploy/stack.sh itself, on a second, private stack (its own directory and
# free ports; the suite's stack is not touched): up, env, status, idempotent
# up, refusals (another broker count, a port in use), kill-broker and
# start-broker, restart-pg immediate, down keeping the data.
#
# The scripts are the same in every build, so a sanitizer build skips this
# test (exit 77, reported by ctest as skipped, not passed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ "$TF_TIMEOUT_SCALE" = 1 ] || { echo "sanitizer build: stack.sh is tested by the plain build"; exit 77; }
STACK="$TF_SOURCE_DIR/deploy/stack.sh"
check() { tf_check "$@"; }
not() { ! "$@"; }
alive() { kill -0 "$1" 2>/dev/null; }
# The checks pipe into grep -q, which may close the pipe before the writer
# is done; the verdict is grep's.
set +o pipefail
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Free ports: broker, controller and PostgreSQL.
# Below the ephemeral range (32768-60999), which outgoing connections use.
for ((base = 22000 + RANDOM % 10000; ; base += 7)); do
    if ! port_open "$base" && ! port_open $((base + 1)) && ! port_open $((base + 2)); then break; fi
done
tf_new_workdir W
export TRADEFLOW_STACK_DIR="$W/stack" TRADEFLOW_KAFKA_PORT="$base" TRADEFLOW_PG_PORT=$((base + 2))
unset TRADEFLOW_BROKERS PGHOST PGPORT PGUSER PGDATABASE
tf_on_exit '"$STACK" down >/dev/null 2>&1'

t0=$SECONDS
check "up on fresh ports" "$STACK" up
echo "     (took $((SECONDS - t0)) s)"
want="export TRADEFLOW_BROKERS=127.0.0.1:$base PGHOST=127.0.0.1 PGPORT=$((base + 2)) PGUSER=tradeflow PGDATABASE=tradeflow TRADEFLOW_STACK_DIR=$TRADEFLOW_STACK_DIR"
check "env prints the exports" [ "$("$STACK" env)" = "$want" ]
eval "$("$STACK" env)"
check "kcat reaches the broker with the exported TRADEFLOW_BROKERS" \
    eval 'kcat -L -b "$TRADEFLOW_BROKERS" -m 10 | grep -q "^ 1 brokers:"'
check "psql reaches database tradeflow with no flags" \
    eval '[ "$(psql -X -tAc "select current_database() || current_user")" = tradeflowtradeflow ]'
check "status exits 0 and shows the broker's pid" \
    eval '"$STACK" status | grep -q "broker 1: running, pid $(cat "$TRADEFLOW_STACK_DIR/kafka/1/kafka.pid")"'

pid="$(cat "$TRADEFLOW_STACK_DIR/kafka/1/kafka.pid")"
t0=$SECONDS
check "a second up reuses the running stack" "$STACK" up
check "... quickly and with the same broker" eval '[ $((SECONDS - t0)) -le 5 ] && [ "$(cat "$TRADEFLOW_STACK_DIR/kafka/1/kafka.pid")" = "$pid" ]'

"$TF_BUILD_DIR/tests/tf_admin" create-topic tft.stack.kept 2 >/dev/null
psql -X -q -c "create table kept (x int); insert into kept values (42)"

out="$W/out"
check "up --brokers 3 on a 1-broker stack is refused" not "$STACK" up --brokers 3 2>"$out"
check "... saying why" grep -q "created with 1 broker" "$out"
check "a second stack on the same ports is refused" \
    not env TRADEFLOW_STACK_DIR="$W/other" "$STACK" up 2>"$out"
check "... naming the port in use" grep -q "port $base (Kafka broker 1) is already in use" "$out"
check "... without touching the running broker" alive "$pid"

check "kill-broker 1" "$STACK" kill-broker 1
check "... the broker is gone" not alive "$pid"
check "... status says stopped and exits 3" eval '"$STACK" status >"$out"; [ $? = 3 ] && grep -q "broker 1: stopped" "$out"'
check "start-broker 1" "$STACK" start-broker 1
check "... the topic survived the crash" eval 'kcat -L -b "$TRADEFLOW_BROKERS" -m 10 | grep -q "topic \"tft.stack.kept\" with 2 partitions"'

check "restart-pg immediate" "$STACK" restart-pg immediate
check "... the row survived" eval '[ "$(psql -X -tAc "select x from kept")" = 42 ]'

pid="$(cat "$TRADEFLOW_STACK_DIR/kafka/1/kafka.pid")"
check "down" "$STACK" down
check "... the broker process is gone" not alive "$pid"
check "... both ports are closed" eval '! port_open "$base" && ! port_open $((base + 2))'
check "... the data directories are kept" [ -d "$TRADEFLOW_STACK_DIR/kafka/1/data" ]
check "up after down" "$STACK" up
check "... keeps the topic" eval 'kcat -L -b "$TRADEFLOW_BROKERS" -m 10 | grep -q "topic \"tft.stack.kept\""'
check "... and the table" eval '[ "$(psql -X -tAc "select x from kept")" = 42 ]'
check "up --fresh wipes both" eval '"$STACK" up --fresh 2>/dev/null && ! kcat -L -b "$TRADEFLOW_BROKERS" -m 10 | grep -q tft.stack.kept && ! psql -X -tAc "select 1 from kept" 2>/dev/null'

tf_report
