#!/usr/bin/env bash
# tradeflow-produce in live mode serves /metrics, /healthz and /readyz: the
# delivered and rejected counters follow the records written into its pipe,
# readiness follows the broker connection.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
tf_require_stack
W="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
T="$(tf_topic pmetrics)"
mkfifo "$W/in"
"$(tf_bin tradeflow-produce)" --kind customs --format csv --topic "$T" --partitions 2 \
    --metrics-addr :0 -X statistics.interval.ms=500 --log-level notice "$W/in" 2>"$W/log" &
pid=$!
exec 3>"$W/in"
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
ok=0
for _ in $(seq 1 100); do
    if [ "$(metric tradeflow_producer_delivered_total)" = 10 ] &&
        [ "$(metric tradeflow_producer_rejected_total)" = 1 ] &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ]; then
        ok=1
        break
    fi
    sleep 0.2
done
[ $ok = 1 ] || tf_fail "metrics: delivered=$(metric tradeflow_producer_delivered_total) rejected=$(metric tradeflow_producer_rejected_total) readyz=$(curl -s "http://127.0.0.1:$port/readyz")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] ||
    tf_fail "/healthz is not 200"
[ "$(metric tradeflow_producer_failed_total)" = 0 ] || tf_fail "failed deliveries counted"
echo "ok: delivered 10, rejected 1, failed 0; /readyz and /healthz 200"
exec 3>&-
wait "$pid" || [ $? = 1 ] || tf_fail "tradeflow-produce exited badly" # 1 = some rejected
echo "1 passed, 0 failed"
