#!/usr/bin/env bash
# A REAL Prometheus server (Debian's `prometheus` package) scrapes a running
# tradeflow consumer on 127.0.0.1 every second, and its HTTP API answers
# PromQL queries on tradeflow metrics with the values we know to be true:
# the number of messages in the topic, the lag left when the consumer stops
# short of the end, then zero lag on every partition, a histogram usable by histogram_quantile(), and a healthy target
# (which also proves Prometheus parsed our exposition text without error).
#
# The consumer is tradeflow-aggregate when it has --metrics-addr, otherwise
# tests/integration/metrics_serve.c (a small real Kafka consumer wired with
# the same modules). TF_PROM_TARGET=aggregate|serve forces one.
#
# Prometheus's configuration and data live in a temporary directory; it
# listens on 127.0.0.1 on a free port and is killed at the end.
set -euo pipefail
TF_SOURCE_DIR="${TF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
tf_require_stack

PROM="${TF_PROMETHEUS:-$(command -v prometheus || true)}"
[ -n "$PROM" ] && [ -x "$PROM" ] ||
    tf_fail "no prometheus binary (apt-get install prometheus, or deploy/install-deps.sh)"

W="$(mktemp -d)"
PROM_PID=""
TGT_PID=""
cleanup() {
    # The target first (it leaves its consumer group), then Prometheus.
    [ -n "$TGT_PID" ] && kill "$TGT_PID" 2>/dev/null && wait "$TGT_PID" 2>/dev/null
    [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    if [ "${TF_KEEP:-0}" = 1 ]; then
        echo "TF_KEEP=1: kept $W" >&2
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1 (the kernel's choice; released at once).
free_port() {
    "$TF_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# prom_query PROMQL: prints the value of the first sample of an instant
# query, or nothing when the result is empty.
prom_query() {
    curl -fsS --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/query" \
        --data-urlencode "query=$1" 2>/dev/null |
        "$TF_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
r = d.get("data", {}).get("result", []) if d.get("status") == "success" else []
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}

# wait_query PROMQL EXPECTED SECONDS: waits until the query returns EXPECTED.
wait_query() {
    local q="$1" want="$2" deadline=$((SECONDS + $(tf_timeout "$3"))) got=""
    while [ $SECONDS -lt $deadline ]; do
        got="$(prom_query "$q")"
        [ "$got" = "$want" ] && {
            echo "ok: $q = $got"
            return 0
        }
        sleep 1
    done
    tf_fail "PromQL $q: got '${got}', want '$want' (Prometheus log: $W/prom.log, target log: $W/target.log)"
}

# --------------------------------------------------------------- the target

mode="${TF_PROM_TARGET:-auto}"
if [ "$mode" = auto ]; then
    mode=serve
    agg="$TF_BUILD_DIR/bin/tradeflow-aggregate"
    if [ -x "$agg" ] && "$agg" --help 2>&1 | grep -q -- '--metrics-addr'; then
        mode=aggregate
    fi
fi
echo "target: $mode"

T="$(tf_topic prom)"
tf_create_topic "$T" 3
TPORT="$(free_port)"

if [ "$mode" = aggregate ]; then
    tf_new_db prom
    "$(tf_bin tradeflow-produce)" --kind customs --topic "$T" --partitions 3 --quiet \
        "$TF_SOURCE_DIR/tests/integration/agg/semantics1.csv" ||
        tf_fail "tradeflow-produce exited $?"
    "$(tf_bin tradeflow-aggregate)" -g "grp-$T" -t "$T" --metrics-addr "127.0.0.1:$TPORT" \
        --log-level notice >"$W/target.log" 2>&1 &
    TGT_PID=$!
else
    SERVE="$TF_BUILD_DIR/tests/metrics_serve"
    [ -x "$SERVE" ] || tf_fail "$SERVE is not built (cmake --build $TF_BUILD_DIR --target metrics_serve)"
    # 300 keyed messages, spread over the 3 partitions by their keys.
    seq 1 300 | sed 's/.*/k&:v&/' | kcat -P -b "$TRADEFLOW_BROKERS" -t "$T" -K: -z none ||
        tf_fail "kcat could not produce to $T"
fi

# Messages in the topic, counted by an independent client (kcat).
N="$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$T" -e -q -f 'x\n' | wc -l)"
[ "$N" -gt 0 ] || tf_fail "no message in $T"
echo "messages in $T: $N"

# metrics_serve stops 100 messages short of the end (and pauses) until
# SIGUSR1: a known non-zero lag for Prometheus to report first.
PAUSED=0
if [ "$mode" = serve ]; then
    PAUSED=100
    "$SERVE" --addr "127.0.0.1:$TPORT" -t "$T" -g "grp-$T" --pause-after $((N - PAUSED)) \
        >"$W/target.log" 2>&1 &
    TGT_PID=$!
fi

# The endpoint answers before Prometheus is involved.
deadline=$((SECONDS + $(tf_timeout 30)))
until curl -fsS --max-time 2 "http://127.0.0.1:$TPORT/healthz" >/dev/null 2>&1; do
    kill -0 "$TGT_PID" 2>/dev/null || tf_fail "the target exited: $(tail -5 "$W/target.log")"
    [ $SECONDS -lt $deadline ] || tf_fail "no /healthz on 127.0.0.1:$TPORT"
    sleep 0.2
done
ctype="$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$TPORT/metrics")"
[ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] || tf_fail "Content-Type: $ctype"

# ---------------------------------------------------------------- Prometheus

PROM_PORT="$(free_port)"
cat >"$W/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tradeflow
    static_configs:
      - targets: ['127.0.0.1:$TPORT']
EOF
"$PROM" --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$W/prom.log" 2>&1 &
PROM_PID=$!
deadline=$((SECONDS + $(tf_timeout 60)))
until curl -fsS --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1; do
    kill -0 "$PROM_PID" 2>/dev/null || tf_fail "prometheus exited: $(tail -5 "$W/prom.log")"
    [ $SECONDS -lt $deadline ] || tf_fail "prometheus not ready: $(tail -5 "$W/prom.log")"
    sleep 0.5
done
echo "prometheus $("$PROM" --version 2>&1 | head -1 | awk '{print $3}') ready on 127.0.0.1:$PROM_PORT"

J='job="tradeflow"'
wait_query "up{$J}" 1 30
wait_query "tradeflow_up{$J}" 1 10
if [ "$PAUSED" -gt 0 ]; then
    # Stopped short: the lag Prometheus reports is exactly what is left, and
    # the target says it is not ready, with the reason.
    wait_query "tradeflow_records_consumed_total{$J}" "$((N - PAUSED))" 60
    # Every partition has its series, also one this group never committed
    # (librdkafka says -1 there; tf_rdstats counts from its start).
    wait_query "count(tradeflow_consumer_lag{$J,topic=\"$T\"})" 3 30
    wait_query "sum(tradeflow_consumer_lag{$J,topic=\"$T\"})" "$PAUSED" 30
    code="$(curl -s -o "$W/readyz" -w '%{http_code}' "http://127.0.0.1:$TPORT/readyz")"
    [ "$code" = 503 ] && grep -q '^lagging: ' "$W/readyz" ||
        tf_fail "/readyz while lagging answered $code: $(cat "$W/readyz")"
    echo "ok: /readyz 503 ($(cat "$W/readyz"))"
    kill -USR1 "$TGT_PID"
fi
wait_query "tradeflow_records_consumed_total{$J}" "$N" 90
# Lag: one series per partition of the topic, all zero once caught up.
wait_query "count(tradeflow_consumer_lag{$J,topic=\"$T\"})" 3 30
wait_query "sum(tradeflow_consumer_lag{$J,topic=\"$T\"})" 0 30
wait_query "tradeflow_consumer_assigned_partitions{$J}" 3 30
if [ "$mode" = aggregate ]; then
    # Every message consumed is accounted for once committed: applied,
    # duplicate, dead-lettered, or a revision replaced within its batch
    # (counted in superseded, with the revisions replacing stored ones):
    #   applied + duplicate + dead <= consumed <= that + superseded
    # (docs/metrics.md).
    acc="tradeflow_records_applied_total{$J} + tradeflow_records_duplicate_total{$J} + tradeflow_records_dead_lettered_total{$J}"
    wait_query "($acc) <= bool $N" 1 30
    wait_query "($acc + tradeflow_records_superseded_total{$J}) >= bool $N" 1 10
    wait_query "tradeflow_records_applied_total{$J} > bool 0" 1 10
fi
# The histogram's buckets reach Prometheus: its count equals the number of
# batches, and histogram_quantile() gives a finite number of records.
q50="$(prom_query "histogram_quantile(0.5, tradeflow_batch_records_bucket{$J})")"
case "$q50" in
    "" | NaN | +Inf) tf_fail "histogram_quantile over tradeflow_batch_records: '$q50'" ;;
esac
echo "ok: median batch size estimate $q50 records"
# Caught up, so a settle point committed (rankings as of then) within the
# last minute.
wait_query "(time() - tradeflow_last_settle_timestamp_seconds{$J}) < bool 60" 1 30
wait_query "count(tradeflow_build_info{$J})" 1 10

# Prometheus's own view of the target: healthy, no scrape error.
curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/targets" | "$TF_PYTHON" -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
assert len(t) == 1, t
assert t[0]["health"] == "up" and t[0]["lastError"] == "", t[0]
print("ok: target", t[0]["scrapeUrl"], "up, no scrape error")' || tf_fail "target not healthy"

# For the record: how long Prometheus's scrapes of the target take.
echo "info: scrape_duration_seconds $(prom_query "scrape_duration_seconds{$J}"), samples $(prom_query "scrape_samples_scraped{$J}")"

# Caught up: /readyz says so.
code="$(curl -s -o "$W/readyz" -w '%{http_code}' "http://127.0.0.1:$TPORT/readyz")"
[ "$code" = 200 ] || tf_fail "/readyz answered $code: $(cat "$W/readyz")"
echo "ok: /readyz 200 ($(cat "$W/readyz"))"

# A negative control: a metric that nobody exports gives an empty answer, so
# the checks above can fail.
[ -z "$(prom_query "tradeflow_no_such_metric{$J}")" ] || tf_fail "empty query answered"
# The target stops cleanly on SIGTERM (and a sanitizer build says nothing).
kill "$TGT_PID"
rc=0
wait "$TGT_PID" || rc=$?
TGT_PID=""
[ "$rc" = 0 ] || tf_fail "the target exited $rc after SIGTERM: $(tail -5 "$W/target.log")"
if grep -E 'Sanitizer|runtime error' "$W/target.log"; then tf_fail "sanitizer report in the target's log"; fi
echo "PASS"
