#!/usr/bin/env bash
# HTTP delivery of ranking-shift alerts (issue 19) on real parts: the stack's
# Kafka and PostgreSQL, Debian's Alertmanager on loopback, and a local HTTP
# receiver (deliver_receiver.py) behind Alertmanager's webhook receiver and
# as the direct webhook target of every kind (JSON, CloudEvents, Slack,
# Teams), over plain HTTP and over TLS with a self-signed CA (ca_file).
#
# The feed is test_alerts_exact.sh's (tests/integration/alerts/): in China's
# total trade, YTD, group level, ASEAN goes 3 -> 2 (2019-11) and 2 -> 1
# (2020-11); a revision then withdraws the 2020 shifts (two retractions).
# Every destination must receive each alert of its filter once or more
# (distinct idempotency keys = the expected ids: no loss, nothing else), in
# spite of:
#   - the relay SIGKILLed while a request is in flight (receiver holds it):
#     that alert arrives twice, with the same idempotency key, and nothing is
#     lost;
#   - a destination answering 400: every alert parked (table, metrics), and
#     the other destinations not blocked;
#   - a TLS destination without the CA: retried (reason tls), never parked;
#   - destinations answering 503, or too slowly (timeout): retried, then
#     delivered once they answer;
#   - the receiver down for a while, then up on the same port;
#   - PostgreSQL dropping every delivery connection, then restarted.
# (It restarts the stack's PostgreSQL: RUN_SERIAL, label faults.)
# Alertmanager fires each shift once (its webhook counts by alert_id) and the
# retractions resolve the alerts they withdraw.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/alerts_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/deliver_lib.sh"
tf_require_stack
tf_new_db alerts_deliver
tf_new_workdir W # (background jobs are killed at exit; TF_KEEP=1 keeps W)
D="$TF_ALERTS_DATA"
TC="$(tf_topic deliver_in)"
TA="$(tf_topic deliver_out)"
RELAY="$(tf_bin tradeflow-relay)"
"$(tf_bin tradeflow-aggregate)" migrate --log-level warning || fail "migrate"
passed=0
ok() { passed=$((passed + 1)); }
# insert_shifts PERIOD: two shifts in the scope (ASEAN 3 -> 2, 2 -> 1), each
# in its own transaction, inserted as settle_alerts() would.
insert_shifts() {
    local p
    for p in 3 2; do
        q "insert into tradeflow.alerts (dataset, reporter, flow, basis, level, period, partner,
            old_rank, new_rank, value_usd, kind) values ('customs', 'CHN', 'total', 'ytd',
            'group', '$1', 'ASEAN', $p, $((p - 1)), 1.00, 'shift')" >/dev/null
    done
}

# ---- the parts: receivers (plain and TLS), Alertmanager, the relay
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 ||
    fail "openssl could not make a self-signed certificate"
R1LOG="$W/r1.jsonl"
R2LOG="$W/r2.jsonl"
HOLD="$W/hold"
FLAGS="$W/flags"
mkdir -p "$FLAGS"
touch "$FLAGS/d503" "$FLAGS/dtmo" # 503 and stalling answers until removed
start_receiver R1 "$R1LOG" 0 --hold-file "$HOLD" --flag-dir "$FLAGS"
start_receiver R2 "$R2LOG" 0 --cert "$W/cert.pem" --key "$W/key.pem" --auth "Bearer t0ps3cret"
start_alertmanager "$W" "http://127.0.0.1:$R1_PORT/am"
# A second Alertmanager with the documented example routes
# (deploy/alertmanager/alertmanager.yml): its Slack receiver and its webhook
# receiver point at the local receiver, its waits are shortened to 1 s.
mkdir -p "$W/am2"
echo "http://127.0.0.1:$R1_PORT/amslack" >"$W/am2/slack.url"
sed -e "s|api_url_file: .*|api_url_file: $W/am2/slack.url|" \
    -e "s|url: 'http://127.0.0.1:8080/tradeflow-alerts'|url: 'http://127.0.0.1:$R1_PORT/amarchive'|" \
    -e "s|group_wait: 10s|group_wait: 1s|; s|group_interval: 1m|group_interval: 1s|" \
    "$TF_SOURCE_DIR/deploy/alertmanager/alertmanager.yml" >"$W/am2/example.yml"
AM1_PORT="$AM_PORT"
AM1_PID="$AM_PID"
start_alertmanager "$W/am2" - "$W/am2/example.yml"
AM2_PORT="$AM_PORT"
AM_PORT="$AM1_PORT"
AM_PID="$AM1_PID"
MPORT="$(free_port)"
M="http://127.0.0.1:$MPORT/metrics"
SECRET_URL="http://127.0.0.1:$R1_PORT/slack/T000/B000/XXXXSECRETXXXX"
scope() { # the filter keys of China's total trade, YTD, group level
    printf 'deliver.%s.filter.%s\n' "$1" "reporter = CHN" "$1" "flow = total" "$1" "basis = ytd" \
        "$1" "level = group" "$1" "max_rank = 3"
}
{
    echo "topic = $TA"
    echo "metrics.addr = 127.0.0.1:$MPORT"
    echo "deliver.am.kind = alertmanager"
    echo "deliver.am.url = http://127.0.0.1:$AM_PORT/"
    echo "deliver.am2.kind = alertmanager"
    echo "deliver.am2.url = http://127.0.0.1:$AM2_PORT"
    echo "deliver.hook.kind = json"
    echo "deliver.hook.url = http://127.0.0.1:$R1_PORT/json"
    echo "deliver.ce.kind = cloudevents"
    echo "deliver.ce.url = http://127.0.0.1:$R1_PORT/ce"
    echo "deliver.ce.filter.partner = ASEAN"
    echo "deliver.slack.kind = slack"
    echo "deliver.slack.url = $SECRET_URL"
    echo "deliver.teams.kind = teams"
    echo "deliver.teams.url = http://127.0.0.1:$R1_PORT/teams"
    echo "deliver.tls.kind = json"
    echo "deliver.tls.url = https://127.0.0.1:$R2_PORT/tls"
    echo "deliver.tls.ca_file = $W/cert.pem"
    echo "deliver.tls.auth_header = Authorization: Bearer t0ps3cret"
    echo "deliver.tlsbad.kind = json"
    echo "deliver.tlsbad.url = https://127.0.0.1:$R2_PORT/tlsbad"
    echo "deliver.tlsbad.timeout_ms = 2000"
    echo "deliver.tlsbad.backoff_max_ms = 1000"
    echo "deliver.bad.kind = json"
    echo "deliver.bad.url = http://127.0.0.1:$R1_PORT/status/400"
    echo "deliver.slow.kind = json"
    echo "deliver.slow.url = http://127.0.0.1:$R1_PORT/slow"
    echo "deliver.d503.kind = json"
    echo "deliver.d503.url = http://127.0.0.1:$R1_PORT/flaky/d503"
    echo "deliver.d503.backoff_max_ms = 1000"
    echo "deliver.dtmo.kind = json"
    echo "deliver.dtmo.url = http://127.0.0.1:$R1_PORT/stall/dtmo"
    echo "deliver.dtmo.timeout_ms = 500"
    echo "deliver.dtmo.backoff_max_ms = 1000"
    for d in am am2 hook ce slack teams tls tlsbad bad slow d503 dtmo; do scope $d; done
} >"$W/relay.conf"
GOOD=(am am2 hook ce slack teams tls bad slow)

# --print-config masks the auth header and the webhook URL's token.
"$RELAY" -c "$W/relay.conf" --print-config >"$W/print.txt" || fail "--print-config exited $?"
grep -q 't0ps3cret\|XXXXSECRETXXXX' "$W/print.txt" && fail "--print-config shows a secret"
grep -q "deliver.slack.url = http://127.0.0.1:$R1_PORT/\*\*\*\*\*\*\*\*" "$W/print.txt" ||
    fail "--print-config: $(grep slack.url "$W/print.txt")"
set +e
"$RELAY" -D x.kind=pager -D x.url=http://127.0.0.1:1/ --print-config >/dev/null 2>"$W/usage.err"
expect "exit status of an unknown destination kind" "$?" 64
set -e
grep -q 'deliver.x.kind: unknown kind "pager"' "$W/usage.err" || fail "$(cat "$W/usage.err")"
# The documented example routes are a valid Alertmanager configuration.
AMTOOL="$(dirname "$AM_BIN")/amtool"
[ -x "$AMTOOL" ] || AMTOOL="$(command -v amtool)" || fail "no amtool (package prometheus-alertmanager)"
"$AMTOOL" check-config "$TF_SOURCE_DIR/deploy/alertmanager/alertmanager.yml" >/dev/null ||
    fail "deploy/alertmanager/alertmanager.yml: $("$AMTOOL" check-config "$TF_SOURCE_DIR/deploy/alertmanager/alertmanager.yml" 2>&1 | tail -3)"
ok

# ---- 1. Load the feed while the relay runs; the relay is SIGKILLed while
# the receiver holds the "slow" destination's first request.
touch "$HOLD"
"$RELAY" -c "$W/relay.conf" 2>"$W/relayA.log" &
relayA=$!
produce customs "$TC" "$D/gacc_2018_2020.csv"
aggregate "g1-$TC" "$TC" -- --alert-top 3
SCOPE="dataset='customs' and reporter='CHN' and flow='total' and basis='ytd' and level='group'"
E1="$(ids_of "$SCOPE")"
EA="$(ids_of "$SCOPE and partner = 'ASEAN'")"
expect "alerts in the scope (2019: ASEAN 3->2, USA 2->3; 2020: ASEAN 2->1, EU 1->2)" \
    "$(q "select string_agg(format('%s %s %s->%s', to_char(period, 'YYYY'), partner, old_rank,
        new_rank), ', ' order by alert_id) from reporting.ranking_alerts where $SCOPE")" \
    "2019 ASEAN 3->2, 2019 USA 2->3, 2020 ASEAN 2->1, 2020 EU 1->2"
wait_for "the held request on /slow" "$(tf_timeout 60)" grep -q '"path": "/slow".*"status": 0' "$R1LOG"
kill -KILL "$relayA"
wait "$relayA" 2>/dev/null || true
rm -f "$HOLD"
echo "ok: relay SIGKILLed while /slow held its first request"
parked0="$(q "select count(*) from reporting.delivery_parked where destination = 'bad'")"
"$RELAY" -c "$W/relay.conf" 2>"$W/relayB.log" &
relayB=$!
wait_for "every destination to catch up" "$(tf_timeout 90)" caught_up "${GOOD[@]}"
n4=$(echo "$E1" | wc -w)
for p in /json /teams /slack/T000/B000/XXXXSECRETXXXX; do
    set -- $(received "$R1LOG" "$p")
    expect "distinct alerts at $p (total $1)" "${*:3}" "$E1"
done
set -- $(received "$R2LOG" /tls)
expect "distinct alerts over TLS with the CA file (total $1)" "${*:3}" "$E1"
"$TF_PYTHON" - "$R2LOG" <<'PY' || fail "a /tls request without the auth header"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"/tls"' in l]
sys.exit(0 if recs and all(r["auth"] for r in recs) else 1)
PY
set -- $(received "$R1LOG" /ce)
expect "distinct CloudEvents (ASEAN only; total $1)" "${*:3}" "$EA"
set -- $(received "$R1LOG" /slow)
expect "distinct alerts at /slow" "${*:3}" "$E1"
[ "$1" -gt "$2" ] || fail "/slow: the request cut by the SIGKILL was not sent again ($1 total, $2 distinct)"
echo "ok: /slow got $1 requests for $2 alerts: the one cut by the crash was repeated, same key"
ok
expect "parked alerts of the 400 destination" \
    "$(q "select coalesce(string_agg(alert_id::text, ' ' order by alert_id), '') from
        reporting.delivery_parked where destination = 'bad' and http_status = 400")" "$E1"
expect "2xx answers on /status/400" "$(received "$R1LOG" /status/400 | cut -d' ' -f1)" 0
# (the counter counts this process's parkings: relay B's)
expect "tradeflow_delivery_parked_total of bad" \
    "$(metric0 "$M" 'tradeflow_delivery_parked_total{destination="bad"}')" \
    "$((n4 - parked0))"
ok
wait_for "TLS failures of the destination without the CA" "$(tf_timeout 30)" metric_gt "$M" \
    "tradeflow_delivery_failures_total{destination=\"tlsbad\",reason=\"tls\"}" 0
expect "alerts delivered to tlsbad" "$(q "select last_alert_id || '/' || delivered || '/' || parked
    from reporting.delivery_status where destination = 'tlsbad'")" "0/0/0"
expect "tradeflow_delivery_up of tlsbad" "$(metric "$M" 'tradeflow_delivery_up{destination="tlsbad"}')" 0
echo "ok: no CA file: TLS verification fails, retried, never parked"
ok
# 503 and timeouts: retried, nothing parked, and delivered once the receiver
# answers again.
for d in "d503 http_5xx" "dtmo timeout"; do
    set -- $d
    wait_for "$2 failures of $1" "$(tf_timeout 30)" metric_gt "$M" \
        "tradeflow_delivery_failures_total{destination=\"$1\",reason=\"$2\"}" 0
    expect "cursor and parked alerts of $1 while failing" "$(q "select last_alert_id || '/' || parked
        from reporting.delivery_status where destination = '$1'")" "0/0"
done
rm -f "$FLAGS/d503" "$FLAGS/dtmo"
GOOD+=(d503 dtmo)
wait_for "the 503 and timeout destinations to catch up" "$(tf_timeout 60)" caught_up "${GOOD[@]}"
for p in /flaky/d503 /stall/dtmo; do
    set -- $(received "$R1LOG" "$p")
    expect "distinct alerts at $p once it answers (total $1)" "${*:3}" "$E1"
done
echo "ok: 503 and timeouts retried with backoff, then delivered"
ok

# Alertmanager: each shift fired once; the labels and the summary.
wait_for "Alertmanager's notifications of the 4 shifts" "$(tf_timeout 60)" \
    sh -c "[ \"\$('$TF_PYTHON' '$TF_RECEIVER' count '$R1LOG' /am --am | cut -d' ' -f2)\" = $n4 ]"
set -- $("$TF_PYTHON" "$TF_RECEIVER" count "$R1LOG" /am --am)
expect "Alertmanager firing notifications (total, distinct)" "$1 $2" "$n4 $n4"
expect "alerts firing in Alertmanager" "$(am_alerts active=true | awk '{print $1}' | tr '\n' ' ')" "$E1 "
A21="$(q "select alert_id from reporting.ranking_alerts where $SCOPE and partner = 'ASEAN' and period = '2020-11-01'")"
curl -fsS "http://127.0.0.1:$AM_PORT/api/v2/alerts" | "$TF_PYTHON" -c '
import json, sys
a = [x for x in json.load(sys.stdin) if x["annotations"]["alert_id"] == sys.argv[1]][0]
want = {"alertname": "TradeflowRankingShift", "dataset": "customs", "reporter": "CHN",
        "partner": "ASEAN", "flow": "total", "basis": "ytd", "level": "group",
        "period": "2020-11", "kind": "shift", "direction": "up", "old_rank": "2", "new_rank": "1"}
assert a["labels"] == want, a["labels"]
s = a["annotations"]["summary"]
assert s == "ASEAN rose to #1 of CHN'"'"'s partners, Jan-Nov 2020 YTD, US$609.58 bn", s
print("ok: Alertmanager holds", s)' "$A21" || fail "Alertmanager's view of alert $A21"
ok

# ---- 2. The receiver is down for a while: the revision's retractions wait,
# retried, and arrive once it is back on the same port.
stop_pid "$R1_PID"
f0="$(metric "$M" 'tradeflow_delivery_failures_total{destination="hook",reason="connect"}')"
produce customs "$TC" "$D/revision_undo_2020.csv"
aggregate "g1-$TC" "$TC" -- --alert-top 3
E2="$(ids_of "$SCOPE")"
expect "retractions in the scope" "$(q "select count(*) from reporting.ranking_alerts where
    $SCOPE and kind = 'retraction'")" 2
wait_for "failed attempts while the receiver is down" "$(tf_timeout 30)" metric_gt "$M" \
    "tradeflow_delivery_failures_total{destination=\"hook\",reason=\"connect\"}" "${f0:-0}"
sleep 3
caught_up hook && fail "hook caught up while its receiver is down"
start_receiver R1 "$R1LOG" "$R1_PORT" --hold-file "$HOLD" --flag-dir "$FLAGS"
wait_for "every destination to catch up after the outage" "$(tf_timeout 90)" caught_up "${GOOD[@]}"
for p in /json /teams /slack/T000/B000/XXXXSECRETXXXX; do
    set -- $(received "$R1LOG" "$p")
    expect "distinct alerts at $p after the outage (total $1)" "${*:3}" "$E2"
done
echo "ok: receiver down then up: nothing lost"
ok
# The two retractions resolve the two 2020 shifts in Alertmanager.
R20="$(q "select string_agg(retracts::text, ' ' order by retracts) from reporting.ranking_alerts
    where $SCOPE and kind = 'retraction'")"
wait_for "Alertmanager's resolved notifications" "$(tf_timeout 60)" \
    sh -c "'$TF_PYTHON' '$TF_RECEIVER' count '$R1LOG' /am --am | grep -q '| $R20\$'"
E19="$(ids_of "$SCOPE and kind = 'shift' and period < '2020-01-01'")"
expect "alerts still firing in Alertmanager" "$(am_alerts active=true | awk '{print $1}' | tr '\n' ' ')" "$E19 "
set -- $("$TF_PYTHON" "$TF_RECEIVER" count "$R1LOG" /am --am)
expect "Alertmanager firing notifications after the retractions (total, distinct)" "$1 $2" "$n4 $n4"
echo "ok: the retractions resolved alerts $R20 in Alertmanager"
ok
# The example routes: the desk's Slack receiver got one "Ranking shift"
# message per shift and one "Withdrawn" per retraction, with the summaries;
# the archive webhook every shift.
am_example() { # PATH: "TITLE|TEXT" lines of the Slack messages, sorted
    "$TF_PYTHON" - "$R1LOG" "$1" <<'PY'
import json, sys
out = set()
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["path"] == sys.argv[2] and r["status"] == 200:
        for a in r["body"].get("attachments", []):
            out.add("%s|%s" % (a["title"], a["text"].strip()))
print("\n".join(sorted(out)))
PY
}
example_has() { [ "$(am_example "$1" | grep -c .)" -ge "$2" ]; }
wait_for "the example's Slack messages" "$(tf_timeout 60)" example_has /amslack 6
ids=($E1)
cat >"$W/slack.expected" <<EOF
Ranking shift: CHN / ASEAN|ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD, US\$609.58 bn
Ranking shift: CHN / ASEAN|ASEAN rose to #2 of CHN's partners, Jan-Nov 2019 YTD, US\$577.00 bn
Ranking shift: CHN / EU|EU fell to #2 of CHN's partners, Jan-Nov 2020 YTD, US\$586.00 bn
Ranking shift: CHN / USA|USA fell to #3 of CHN's partners, Jan-Nov 2019 YTD, US\$495.00 bn
Withdrawn: CHN / ASEAN|Withdrawn: ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD - no longer holds (US\$576.58 bn; alert ${ids[2]})
Withdrawn: CHN / EU|Withdrawn: EU fell to #2 of CHN's partners, Jan-Nov 2020 YTD - no longer holds (US\$586.00 bn; alert ${ids[3]})
EOF
am_example /amslack | diff "$W/slack.expected" - || fail "the example's Slack messages differ"
wait_for "the example's archive webhook" "$(tf_timeout 60)" \
    sh -c "'$TF_PYTHON' '$TF_RECEIVER' count '$R1LOG' /amarchive --am | grep -q '| $R20\$'"
set -- $("$TF_PYTHON" "$TF_RECEIVER" count "$R1LOG" /amarchive --am)
expect "the example's archive webhook: firing (total, distinct)" "$1 $2" "$n4 $n4"
echo "ok: the example routes of deploy/alertmanager/alertmanager.yml deliver to Slack and the webhook"
ok


# ---- 3. PostgreSQL drops every delivery connection; two new alerts (inserted
# as the consumer would) still arrive once at every destination.
expect "delivery connections terminated" "$(q "select count(*) from (select pg_terminate_backend(pid)
    from pg_stat_activity where datname = current_database()
    and application_name like 'tradeflow-relay/deliver:%') x")" 12
insert_shifts 2021-01-01
E3="$(ids_of "$SCOPE")"
wait_for "every destination to catch up after the connections dropped" "$(tf_timeout 90)" caught_up "${GOOD[@]}"
set -- $(received "$R1LOG" /json)
expect "distinct alerts at /json after the reconnection (total $1)" "${*:3}" "$E3"
set -- $(received "$R2LOG" /tls)
expect "distinct alerts at /tls after the reconnection (total $1)" "${*:3}" "$E3"
grep -q "reconnecting in" "$W/relayB.log" || fail "the relay did not log its reconnection"
ok
# PostgreSQL itself restarted (immediate shutdown, down 3 s): the relay
# reconnects and the next alerts arrive.
"$TF_SOURCE_DIR/deploy/stack.sh" restart-pg immediate 3 >/dev/null || fail "restart-pg failed"
kill -0 "$relayB" || fail "the relay exited when PostgreSQL restarted"
insert_shifts 2022-01-01
E4="$(ids_of "$SCOPE")"
wait_for "every destination to catch up after PostgreSQL's restart" "$(tf_timeout 90)" caught_up "${GOOD[@]}"
set -- $(received "$R1LOG" /json)
expect "distinct alerts at /json after PostgreSQL's restart (total $1)" "${*:3}" "$E4"
wait_for "Alertmanager's notifications of the new shifts" "$(tf_timeout 60)" \
    sh -c "[ \"\$('$TF_PYTHON' '$TF_RECEIVER' count '$R1LOG' /am --am | cut -d' ' -f2)\" = $((n4 + 4)) ]"
ok

# ---- 4. The relay's metrics, Kafka alongside, and a clean stop.
expect "tradeflow_delivery_parked_total of bad (relay B)" \
    "$(metric "$M" 'tradeflow_delivery_parked_total{destination="bad"}')" \
    "$(($(q "select count(*) from reporting.delivery_parked where destination = 'bad'") - parked0))"
expect "tradeflow_delivery_backlog_alerts of hook" "$(metric "$M" 'tradeflow_delivery_backlog_alerts{destination="hook"}')" 0
expect "tradeflow_delivery_lag_seconds of hook" "$(metric "$M" 'tradeflow_delivery_lag_seconds{destination="hook"}')" 0
expect "tradeflow_delivery_up of hook" "$(metric "$M" 'tradeflow_delivery_up{destination="hook"}')" 1
expect "tradeflow_delivery_cursor of hook" "$(metric "$M" 'tradeflow_delivery_cursor{destination="hook"}')" \
    "$(q "select max(alert_id) from tradeflow.alerts")"
[ "$(metric "$M" 'tradeflow_delivery_latency_seconds_count{destination="hook"}')" -ge 1 ] ||
    fail "no tradeflow_delivery_latency_seconds observation"
ok
wait_for "the relay to publish every alert to Kafka" "$(tf_timeout 60)" \
    sh -c "[ \"\$(psql -X -At -c 'select count(*) from reporting.ranking_alerts where not published and not suppressed')\" = 0 ]"
deliverable_ids >"$W/ids.txt"
dump_topic "$TA" "$W/topic.csv"
cut -d, -f2 "$W/topic.csv" | diff - "$W/ids.txt" >/dev/null || fail "the Kafka topic differs from the table"
echo "ok: Kafka got every alert once beside the HTTP destinations"
kill -TERM "$relayB"
wait "$relayB" || fail "relay B exited $? on SIGTERM"
ok

# ---- 5. New destinations, HTTP only, --exit-when-idle: start = earliest
# delivers the history, start = latest nothing before it. This relay runs as
# the least-privilege role of 005_roles.sql (migration 010's grants).
PGOPTIONS="-c role=tradeflow_writer" "$RELAY" --no-kafka --exit-when-idle --log-level warning \
    -D hist.kind=json -D "hist.url=http://127.0.0.1:$R1_PORT/hist" \
    -D late.kind=json -D "late.url=http://127.0.0.1:$R1_PORT/late" -D late.start=latest ||
    fail "relay --no-kafka --exit-when-idle exited $?"
set -- $(received "$R1LOG" /hist)
expect "start = earliest: every alert (total $1)" "${*:3}" "$(deliverable_ids | tr '\n' ' ' | sed 's/ $//')"
expect "start = latest: nothing" "$(received "$R1LOG" /late | cut -d' ' -f1)" 0
# The cursors are durable: the same destinations again send nothing.
"$RELAY" --no-kafka --exit-when-idle --log-level warning \
    -D hist.kind=json -D "hist.url=http://127.0.0.1:$R1_PORT/hist" ||
    fail "relay --no-kafka --exit-when-idle (again) exited $?"
expect "requests at /hist after a second run" "$(received "$R1LOG" /hist | cut -d' ' -f1)" "$1"
expect "start = latest: cursor at the newest alert" \
    "$(q "select last_alert_id from reporting.delivery_status where destination = 'late'")" \
    "$(q "select max(alert_id) from tradeflow.alerts")"
ok

# Once each but for the crash: at most the one request a destination had in
# flight when the relay was SIGKILLed is repeated; the outage, the dropped
# connections and the restarts repeat nothing.
for p in /json /teams /slack/T000/B000/XXXXSECRETXXXX /flaky/d503 /stall/dtmo; do
    set -- $(received "$R1LOG" "$p")
    [ "$1" -le $(($2 + 1)) ] || fail "$p: $1 requests for $2 alerts"
done
set -- $(received "$R2LOG" /tls)
[ "$1" -le $(($2 + 1)) ] || fail "/tls: $1 requests for $2 alerts"
echo "ok: no repeat beyond the request cut by the crash"
ok

echo "latency from detected_at to the receiver, /json (first arrival per alert, includes the
outage and the crash above): $("$TF_PYTHON" "$TF_RECEIVER" latency "$R1LOG" /json)"
echo "$passed passed, 0 failed"
