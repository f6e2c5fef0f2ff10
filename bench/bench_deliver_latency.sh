#!/usr/bin/env bash
# bench/bench_deliver_latency.sh [SECONDS] - HTTP delivery latency of
# tradeflow-relay (issue 19): from an alert row's creation (detected_at, the
# start of the transaction that writes it - a settle point's) to its arrival
# at a local receiver:
#   - direct: a `json` destination (deliver_receiver.py);
#   - through Alertmanager: an `alertmanager` destination, Alertmanager
#     (group_wait 0s, every alert its own group) and its webhook receiver.
# A fresh database; tradeflow-relay --no-kafka runs as a daemon; one alert per
# transaction is inserted every PACE_MS (default 100) for SECONDS (default
# 20) by one psql session, like settle_alerts() does; then p50/p90/p99/max
# per path. The relay wakes on NOTIFY (tradeflow_alerts), which a plain
# INSERT does not send: NOTIFY=1 (default) sends it as settle_alerts() does.
# Needs the stack (eval "$(deploy/stack.sh env)"), a build, the project's
# .venv and prometheus-alertmanager. KEEP=1 keeps the work directory.
set -euo pipefail
SECS="${1:-20}"
PACE_MS="${PACE_MS:-100}"
NOTIFY="${NOTIFY:-1}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${TF_BUILD_DIR:-$REPO/build}"
PY="${TF_PYTHON:-$REPO/.venv/bin/python}"
RECV="$REPO/tests/integration/deliver_receiver.py"
AM="$(command -v prometheus-alertmanager || command -v alertmanager)"
: "${PGPORT:?set PG* (eval \"\$(deploy/stack.sh env)\")}"
W="$(mktemp -d)"
DB="tfbench_deliver_$$"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    [ "${KEEP:-0}" = 1 ] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

psql -X -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
export PGDATABASE="$DB"
"$BUILD/bin/tradeflow-aggregate" migrate --log-level warning
RP="$(port)"
"$PY" "$RECV" serve --log "$W/r.jsonl" --ready "$W/r.port" --port "$RP" &
pids+=($!)
AP="$(port)"
cat >"$W/am.yml" <<EOF
route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: 'http://127.0.0.1:$RP/am'
EOF
"$AM" --config.file="$W/am.yml" --storage.path="$W/am" --web.listen-address="127.0.0.1:$AP" \
    --cluster.listen-address= --log.level=warn 2>"$W/am.log" &
pids+=($!)
for _ in $(seq 100); do
    [ -e "$W/r.port" ] && curl -fs "http://127.0.0.1:$AP/-/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
"$BUILD/bin/tradeflow-relay" --no-kafka --log-level warning \
    -D hook.kind=json -D "hook.url=http://127.0.0.1:$RP/json" \
    -D am.kind=alertmanager -D "am.url=http://127.0.0.1:$AP" 2>"$W/relay.log" &
pids+=($!)
sleep 1
n=$(awk -v s="$SECS" -v p="$PACE_MS" 'BEGIN { printf "%d", s * 1000 / p }')
echo "load: $(uptime | sed 's/.*load average/load average/'); $n alerts, one every $PACE_MS ms"
{
    for i in $(seq "$n"); do
        echo "BEGIN;"
        echo "INSERT INTO tradeflow.alerts (dataset, reporter, flow, basis, level, period, partner,
              old_rank, new_rank, value_usd, kind) VALUES ('customs', 'CHN', 'total', 'ytd',
              'group', '2021-01-01', 'P$i', 2, 1, 1.00, 'shift');"
        [ "$NOTIFY" = 1 ] && echo "SELECT pg_notify('tradeflow_alerts', '');"
        echo "COMMIT;"
        echo "SELECT pg_sleep($PACE_MS / 1000.0);"
    done
} | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
for _ in $(seq 150); do
    [ "$(psql -XAt -c "select count(*) from reporting.delivery_status where last_alert_id = $n")" = 2 ] &&
        [ "$("$PY" "$RECV" count "$W/r.jsonl" /am --am | cut -d' ' -f2)" = "$n" ] && break
    sleep 0.2
done
echo "direct webhook (json):  $("$PY" "$RECV" latency "$W/r.jsonl" /json)"
echo "through Alertmanager:   $("$PY" "$RECV" latency "$W/r.jsonl" /am --am)"
