# shellcheck shell=bash
# deliver_lib.sh - helpers for the HTTP delivery tests (issue 19): a local
# receiver (deliver_receiver.py), Debian's Alertmanager on loopback, the
# relay's /metrics. Source after lib.sh, agg_lib.sh and alerts_lib.sh.

TF_RECEIVER="$TF_SOURCE_DIR/tests/integration/deliver_receiver.py"
AM_BIN="${TF_ALERTMANAGER:-$(command -v prometheus-alertmanager || command -v alertmanager || true)}"

# free_port: a free TCP port on 127.0.0.1 (the kernel's choice).
free_port() {
    "$TF_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_receiver VAR LOG PORT [serve options...]: starts deliver_receiver.py
# on 127.0.0.1:PORT (0 = any), waits until it listens, sets VAR_PID and
# VAR_PORT.
start_receiver() {
    local var="$1" log="$2" port="$3" ready
    shift 3
    ready="$(mktemp -u "${TMPDIR:-/tmp}/tfrecv.XXXXXX")"
    "$TF_PYTHON" "$TF_RECEIVER" serve --log "$log" --ready "$ready" --port "$port" "$@" &
    local pid=$!
    wait_for "the receiver $var" 30 test -e "$ready"
    printf -v "${var}_PID" %s "$pid"
    printf -v "${var}_PORT" %s "$(cat "$ready")"
    rm -f "$ready"
}

# stop_pid PID: SIGTERM and reap (no error if already gone).
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# start_alertmanager DIR WEBHOOK_URL [CONFIG]: Alertmanager on a free
# loopback port (AM_PORT, AM_PID), clustering off, its data in DIR. Without
# CONFIG: every alert its own group (group_by ['...']), notified after 1 s,
# repeated only after an hour, resolved alerts notified too, all to
# WEBHOOK_URL.
start_alertmanager() {
    local dir="$1" url="$2" config="${3:-}"
    [ -n "$AM_BIN" ] && [ -x "$AM_BIN" ] ||
        fail "no prometheus-alertmanager binary (apt-get install prometheus-alertmanager, or deploy/install-deps.sh)"
    AM_PORT="$(free_port)"
    mkdir -p "$dir/am-data"
    if [ -n "$config" ]; then
        cp "$config" "$dir/alertmanager.yml"
    else
        cat >"$dir/alertmanager.yml" <<EOF
route:
  receiver: hook
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: '$url'
        send_resolved: true
EOF
    fi
    "$AM_BIN" --config.file="$dir/alertmanager.yml" --storage.path="$dir/am-data" \
        --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
        --log.level=warn >"$dir/am.log" 2>&1 &
    AM_PID=$!
    local end=$((SECONDS + $(tf_timeout 60)))
    until curl -fsS --max-time 2 "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null 2>&1; do
        kill -0 "$AM_PID" 2>/dev/null || fail "alertmanager exited: $(tail -5 "$dir/am.log")"
        [ $SECONDS -lt $end ] || fail "alertmanager not ready: $(tail -5 "$dir/am.log")"
        sleep 0.3
    done
    echo "alertmanager $("$AM_BIN" --version 2>&1 | head -1 | awk '{print $3}') ready on 127.0.0.1:$AM_PORT"
}

# am_alerts FILTER...: Alertmanager's alerts (GET /api/v2/alerts with the
# given query parameters) as "alert_id state" lines, sorted.
am_alerts() {
    local qs="" p
    for p in "$@"; do qs="$qs&$p"; done
    curl -fsS --max-time 5 "http://127.0.0.1:$AM_PORT/api/v2/alerts?${qs#&}" | "$TF_PYTHON" -c '
import json, sys
for a in sorted(json.load(sys.stdin), key=lambda a: int(a["annotations"]["alert_id"])):
    print(a["annotations"]["alert_id"], a["status"]["state"])'
}

# metric URL NAME_AND_LABELS: the value of one series of a /metrics page
# (empty when absent), e.g. metric "$M" 'tradeflow_delivery_parked_total{destination="bad"}'.
metric() {
    curl -fsS --max-time 5 "$1" | awk -v k="$2" '$1 == k { print $2 }'
}

# metric0 URL NAME_AND_LABELS: the same, 0 for a series not (yet) created.
metric0() {
    local v
    v="$(metric "$@")"
    echo "${v:-0}"
}

# metric_gt URL NAME_AND_LABELS N: true when the series exceeds N.
metric_gt() {
    local v
    v="$(metric "$1" "$2")"
    [ -n "$v" ] && awk -v v="$v" -v n="$3" 'BEGIN { exit !(v > n) }'
}

# caught_up DEST...: true when each destination's cursor stands at the
# newest alert (reporting.delivery_status).
caught_up() {
    local d list=""
    for d in "$@"; do list="$list,'$d'"; done
    [ "$(psql -X -At -c "select count(*) from reporting.delivery_status
        where destination in (${list#,}) and last_alert_id =
            (select coalesce(max(alert_id), 0) from tradeflow.alerts)")" = "$#" ]
}

# received LOG PATH: "TOTAL DISTINCT ids..." of the 2xx answers on PATH.
received() {
    "$TF_PYTHON" "$TF_RECEIVER" count "$1" "$2" || fail "receiver log $1 $2"
}

# ids_of SQL-WHERE: the matching alert ids, space-separated, ascending.
ids_of() {
    q "select coalesce(string_agg(alert_id::text, ' ' order by alert_id), '')
       from reporting.ranking_alerts where $1"
}
