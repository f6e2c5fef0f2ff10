#!/usr/bin/env bash
# tradeflow-produce in live mode (standard input, no transaction) serves /metrics, /healthz and /readyz: the
# delivered and rejected counters follow the records written into its pipe,
# and readiness follows the broker connection: the test stops the stack's
# broker (deploy/stack.sh kill-broker), /readyz must turn 503 while /healthz
# stays 200; records written meanwhile are delivered once the broker is back
# (deploy/stack.sh start-broker) and /readyz is 200 again. The run ends with
# exit status 1 (a record was rejected), nothing else.
#
# Stops the shared stack's broker: RUN_SERIAL in tests/metrics.cmake.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
tf_require_stack
STACK="$TF_SOURCE_DIR/deploy/stack.sh"
[ -n "${TRADEFLOW_STACK_DIR:-}" ] ||
    tf_fail "TRADEFLOW_STACK_DIR is not set: this test stops and restarts the stack's broker (eval \"\$(deploy/stack.sh env)\")"
tf_new_workdir W
T="$(tf_topic pmetrics)"
mkfifo "$W/in"
"$(tf_bin tradeflow-produce)" --kind customs --format csv --topic "$T" --partitions 2 \
    --metrics-addr :0 -X statistics.interval.ms=500 --log-level notice - <"$W/in" 2>"$W/log" &
pid=$!
exec 3>"$W/in"
# Whatever happens, the broker is running again when the test ends.
tf_on_exit '"$STACK" status >/dev/null 2>&1 || "$STACK" start-broker 1 >/dev/null 2>&1 3>&-'
echo "record_id,revision,reporter,partner,flow,period,value_usd" >&3
for i in $(seq 1 10); do echo "m$i,0,CHN,USA,export,2020-0$((i % 9 + 1)),$i.00" >&3; done
echo "bad,0,CHN,USA,sideways,2020-01,1.00" >&3
port=""
for _ in $(seq 1 50); do
    port="$(grep -o 'on port [0-9]*' "$W/log" | awk '{print $3}')" && [ -n "$port" ] && break
    sleep 0.2
done
[ -n "$port" ] || { cat "$W/log" >&2; tf_fail "no metrics port in the log"; }
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/$1"; }
state() {
    echo "delivered=$(metric tradeflow_producer_delivered_total) rejected=$(metric tradeflow_producer_rejected_total) failed=$(metric tradeflow_producer_failed_total) readyz=$(code readyz) $(curl -s "http://127.0.0.1:$port/readyz")"
}
alive() { kill -0 "$pid" 2>/dev/null || tf_fail "tradeflow-produce exited: $(tail -5 "$W/log")"; }
# wait_state SECONDS DELIVERED REJECTED READYZ: polls /metrics and /readyz.
wait_state() {
    local end=$((SECONDS + $(tf_timeout "$1")))
    while :; do
        alive
        [ "$(metric tradeflow_producer_delivered_total)" = "$2" ] &&
            [ "$(metric tradeflow_producer_rejected_total)" = "$3" ] &&
            [ "$(code readyz)" = "$4" ] && return 0
        [ "$SECONDS" -lt "$end" ] ||
            tf_fail "after $1 s: want delivered=$2 rejected=$3 readyz=$4, have $(state)"
        sleep 0.2
    done
}
wait_state 20 10 1 200
tf_expect "/healthz with the broker up" "$(code healthz)" 200
tf_expect "failed deliveries with the broker up" "$(metric tradeflow_producer_failed_total)" 0

# The broker goes away: not ready (and says why), still alive.
"$STACK" kill-broker 1 TERM 3>&-
wait_state 30 10 1 503
reason="$(curl -s "http://127.0.0.1:$port/readyz")"
tf_expect "/readyz reason with the broker down" "$reason" "no broker up"
tf_expect "/healthz with the broker down" "$(code healthz)" 200
# Records written while it is away wait in the producer.
for i in $(seq 11 15); do echo "m$i,0,CHN,USA,import,2020-0$((i % 9 + 1)),$i.00" >&3; done
sleep 1
tf_expect "delivered while the broker is down" "$(metric tradeflow_producer_delivered_total)" 10

# The broker returns: ready again, and the waiting records are delivered.
# (3>&-: the broker must not inherit the pipe's write end, or the pipe never
# ends.)
"$STACK" start-broker 1 3>&-
wait_state 90 15 1 200
tf_expect "failed deliveries after the outage" "$(metric tradeflow_producer_failed_total)" 0
echo "ok: /readyz 200 -> 503 (broker down) -> 200 (broker back); 5 records held and delivered"

# End of input: the run ends by itself.
exec 3>&-
end=$((SECONDS + $(tf_timeout 60)))
while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$end" ] || { tail -20 "$W/log" >&2; tf_fail "tradeflow-produce still running $(tf_timeout 60) s after the end of its input"; }
    sleep 0.2
done
rc=0
wait "$pid" || rc=$?
tf_expect "exit status with one rejected record" "$rc" 1
grep -q "rejected 1," "$W/log" || tf_fail "no summary with 'rejected 1': $(tail -3 "$W/log")"
n="$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$T" -e -q -f 'x\n' | wc -l)"
tf_expect "records in the topic" "$n" 15
tf_report
