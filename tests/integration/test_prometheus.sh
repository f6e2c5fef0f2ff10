#!/usr/bin/env bash
# A REAL Prometheus server (Debian's `prometheus` package) scrapes a running
# tradeflow consumer on 127.0.0.1 every second, and its HTTP API answers
# PromQL queries on tradeflow metrics with the values we know to be true:
# the number of messages in the topic, the lag left when the consumer stops
# short of the end, then zero lag on every partition, a histogram usable by histogram_quantile(), and a healthy target
# (which also proves Prometheus parsed our exposition text without error).
#
# The target is always the product, tradeflow-aggregate --metrics-addr. A
# known lag is made first: the consumer's role may not insert facts, so no
# batch can commit and the consumer pauses short of the end; Prometheus must then see a lag on the 3 partitions that, with the
# messages consumed, adds up to the N messages an independent client (kcat)
# counts, nothing applied, and /readyz 503 "lagging". Then the
# right is granted and everything must drain to zero lag and /readyz 200.
# (The feed is produced without transactions, so that an end offset is a
# message count.)
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

tf_new_workdir W
PROM_PID=""
TGT_PID=""
# At exit, the target first (it leaves its consumer group), then Prometheus.
tf_on_exit '[ -z "$PROM_PID" ] || kill "$PROM_PID" 2>/dev/null'
tf_on_exit '[ -z "$TGT_PID" ] || { kill "$TGT_PID" 2>/dev/null; wait "$TGT_PID" 2>/dev/null; }'

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

AGG="$(tf_bin tradeflow-aggregate)"
T="$(tf_topic prom)"
tf_create_topic "$T" 3
TPORT="$(free_port)"
tf_new_db prom
"$AGG" migrate --log-level warning || tf_fail "migrate"
# Without transactions (no commit markers): a partition's end offset is its
# message count, so the lag is exactly the messages not yet consumed.
"$TF_SOURCE_DIR/producers/tradeflow-genfeed" --kind customs --scale 0.1 --years 2019-2020 \
    --seed 3 -q --out "$W/feed.csv"
"$(tf_bin tradeflow-produce)" --kind customs --topic "$T" --partitions 3 --quiet \
    --no-transaction "$W/feed.csv" || tf_fail "tradeflow-produce exited $?"

# Messages in the topic, counted by an independent client (kcat), and the
# partitions' end offsets.
N="$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$T" -e -q -f 'x\n' | wc -l)"
[ "$N" -gt 1000 ] || tf_fail "only $N messages in $T"
END=0
for p in 0 1 2; do
    e="$(kcat -Q -b "$TRADEFLOW_BROKERS" -t "$T:$p:-1" | awk '{print $NF}')"
    [[ "$e" =~ ^[0-9]+$ ]] || tf_fail "kcat -Q: no end offset for $T [$p]: '$e'"
    END=$((END + e))
done
tf_expect "end offsets of $T (no transaction: one offset a message)" "$END" "$N"

# The consumer runs as a login role of tradeflow_writer, and that group may
# not insert facts in this database for a while: every batch fails, the
# consumer pauses its partitions and retries with backoff, short of the end.
APP="tft_prom_$$"
psql -X -q -v ON_ERROR_STOP=1 -c "DROP ROLE IF EXISTS $APP" \
    -c "CREATE ROLE $APP LOGIN IN ROLE tradeflow_writer" \
    -c "REVOKE INSERT ON tradeflow.facts FROM tradeflow_writer" >/dev/null ||
    tf_fail "cannot create role $APP"
tf_on_exit "psql -X -q -c 'DROP OWNED BY $APP CASCADE' -c 'DROP ROLE IF EXISTS $APP' >/dev/null 2>&1"

TRADEFLOW_READY_MAX_LAG=0 PGUSER="$APP" "$AGG" -g "grp-$T" -t "$T" --metrics-addr "127.0.0.1:$TPORT" \
    --batch-size 100 --log-level notice >"$W/target.log" 2>&1 &
TGT_PID=$!

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
# Refused: some messages consumed, not all, none applied; the lag
# Prometheus reports is exactly what is left of the N that kcat counted.
C="tradeflow_records_consumed_total{$J}"
L="sum(tradeflow_consumer_lag{$J,topic=\"$T\"})"
wait_query "$C > bool 0" 1 60
wait_query "$C < bool $N" 1 10
# Every partition has its series.
wait_query "count(tradeflow_consumer_lag{$J,topic=\"$T\"})" 3 30
wait_query "$L > bool 0" 1 30
wait_query "$L + on() $C" "$N" 30
wait_query "tradeflow_records_applied_total{$J}" 0 10
echo "info: refused at $(prom_query "$C") of $N messages consumed, lag $(prom_query "$L")"
code="$(curl -s -o "$W/readyz" -w '%{http_code}' "http://127.0.0.1:$TPORT/readyz")"
[ "$code" = 503 ] && grep -q '^lagging: ' "$W/readyz" ||
    tf_fail "/readyz while lagging answered $code: $(cat "$W/readyz")"
echo "ok: /readyz 503 ($(cat "$W/readyz"))"
grep -q "batch not committed: .*permission denied" "$W/target.log" ||
    tf_fail "the batches did not fail for want of INSERT: $(tail -5 "$W/target.log")"
psql -X -q -v ON_ERROR_STOP=1 -c "GRANT INSERT ON tradeflow.facts TO tradeflow_writer" ||
    tf_fail "cannot grant INSERT back"
wait_query "tradeflow_records_consumed_total{$J}" "$N" 90
# Lag: one series per partition of the topic, all zero once caught up.
wait_query "count(tradeflow_consumer_lag{$J,topic=\"$T\"})" 3 30
wait_query "sum(tradeflow_consumer_lag{$J,topic=\"$T\"})" 0 30
wait_query "tradeflow_consumer_assigned_partitions{$J}" 3 30
# Every message consumed is accounted for once committed: applied,
# duplicate, dead-lettered, or a revision replaced within its batch
# (counted in superseded, with the revisions replacing stored ones):
#   applied + duplicate + dead <= consumed <= that + superseded
# (docs/metrics.md).
acc="tradeflow_records_applied_total{$J} + tradeflow_records_duplicate_total{$J} + tradeflow_records_dead_lettered_total{$J}"
wait_query "($acc) <= bool $N" 1 30
wait_query "($acc + tradeflow_records_superseded_total{$J}) >= bool $N" 1 10
wait_query "tradeflow_records_applied_total{$J} > bool 0" 1 10
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
