#!/usr/bin/env bash
# Issue 14 item 4: every program gives up clearly when its servers are
# unreachable or refuse it, within its start-up deadline (startup.timeout,
# here 2 s): exit 69 (unreachable), 77 (refused), 66 (--exit-at-end with a
# topic that does not exist), and a message that says which. Bounded by
# `timeout 60`: a program that retries for ever fails the test with 124.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db startup
tf_new_workdir W
"$(tf_bin tradeflow-aggregate)" migrate --log-level warning || fail "migrate"
T="$(tf_topic startup)"
tf_create_topic "$T" 1
passed=0

# case NAME WANT_RC PATTERN CMD...: CMD exits WANT_RC within 60 s and its
# stderr matches PATTERN (grep -E).
case_() {
    local name="$1" want="$2" pat="$3" rc=0
    shift 3
    timeout -k 5 60 "$@" >"$W/$name.out" 2>"$W/$name.err" </dev/null || rc=$?
    [ "$rc" = "$want" ] || { cat "$W/$name.err" >&2; fail "$name: exit $rc, expected $want"; }
    grep -Eq "$pat" "$W/$name.err" || { cat "$W/$name.err" >&2; fail "$name: no '$pat' in stderr"; }
    echo "ok: $name: exit $rc, $(grep -Eo "$pat" "$W/$name.err" | head -1)"
    passed=$((passed + 1))
}
AGG="$(tf_bin tradeflow-aggregate)"
RELAY="$(tf_bin tradeflow-relay)"
ST=(--startup-timeout 2)
case_ agg_broker_refused 69 'Kafka brokers 127.0.0.1:1 unreachable for [0-9.]+ s' \
    "$AGG" --exit-at-end -b 127.0.0.1:1 -t "$T" "${ST[@]}"
case_ agg_broker_unresolvable 69 'Kafka brokers no-such-host.invalid:9092 unreachable' \
    "$AGG" --exit-at-end -b no-such-host.invalid:9092 -t "$T" "${ST[@]}"
case_ agg_no_topic 66 'topic no.such.topic.[0-9]+ does not exist' \
    "$AGG" --exit-at-end -t "no.such.topic.$$" "${ST[@]}"
case_ agg_pg_unreachable 69 'PostgreSQL unreachable: [0-9]+ attempt' \
    "$AGG" --exit-at-end -t "$T" --pg "host=127.0.0.1 port=1" "${ST[@]}"
case_ agg_pg_refused 77 'PostgreSQL refused the connection: .*role "tf_no_such_role" does not exist' \
    "$AGG" --exit-at-end -t "$T" --pg "user=tf_no_such_role" "${ST[@]}"
case_ agg_migrate_pg_unreachable 69 'PostgreSQL unreachable' \
    "$AGG" migrate --pg "host=127.0.0.1 port=1" "${ST[@]}"
case_ relay_broker_refused 69 'Kafka brokers 127.0.0.1:1 unreachable' \
    "$RELAY" --exit-when-idle -b 127.0.0.1:1 -t "$T.alerts" "${ST[@]}"
case_ relay_pg_refused 77 'PostgreSQL refused the connection' \
    "$RELAY" --exit-when-idle -t "$T.alerts" --pg "user=tf_no_such_role" "${ST[@]}"
case_ relay_pg_unreachable 69 'PostgreSQL unreachable' \
    "$RELAY" --exit-when-idle -t "$T.alerts" --pg "host=127.0.0.1 port=1" "${ST[@]}"
for p in alerts report; do
    case_ "${p}_pg_unreachable" 69 'PostgreSQL unreachable' \
        env TRADEFLOW_STARTUP_TIMEOUT=2 "$(tf_bin "tradeflow-$p")" --reporter CHN \
        --pg "host=127.0.0.1 port=1"
    case_ "${p}_pg_refused" 77 'PostgreSQL refused the connection' \
        "$(tf_bin "tradeflow-$p")" --reporter CHN --pg "user=tf_no_such_role"
done
# The producer's deadline for a first answer from the cluster (exit 2: the
# file was not published).
printf 'record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit\nsu1,0,CHN,VNM,export,2019-01,,1.00,,\n' >"$W/one.csv"
case_ produce_broker_refused 2 'no answer from the Kafka cluster within 2000 ms' \
    "$(tf_bin tradeflow-produce)" --kind customs -b 127.0.0.1:1 -t "$T" "${ST[@]}" "$W/one.csv"
# A stream that never ends its CSV header: rejected at the line limit.
case_ produce_dev_zero 65 'header longer than 1048576 bytes' \
    "$(tf_bin tradeflow-produce)" --kind customs --format csv -t "$T" /dev/zero
echo "$passed passed, 0 failed"
