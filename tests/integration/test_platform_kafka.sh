#!/usr/bin/env bash
# The KIP-848 decision against the test stack's real broker (issue 17):
#   1. kafka_probe asks the broker for its ApiVersions: a Kafka 4.x broker
#      (consumer protocol on by default) lists ConsumerGroupHeartbeat (68),
#      a 3.9 one does not (its consumer protocol is off by default);
#   2. the decision kafka_probe prints matches the linked librdkafka: the
#      consumer protocol only from librdkafka 2.12 on and only where offered;
#   3. tradeflow-aggregate logs the same decision at start, and a user's
#      -X group.protocol=classic wins;
#   4. the probe against the secured stack's TLS listener is not fooled
#      (that is the security tests' stack; here: a closed port fails fast).
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack

PROBE="$TF_BUILD_DIR/tests/kafka_probe"
AGG="$(tf_bin tradeflow-aggregate)"
tf_new_workdir W

# The broker's version, as the stack recorded it.
kv="$(sed -n 's/^KAFKA_VERSION=//p' "$TRADEFLOW_STACK_DIR/stack.conf")"
[ -n "$kv" ] || fail "no KAFKA_VERSION in $TRADEFLOW_STACK_DIR/stack.conf"
"$PROBE" "${TRADEFLOW_BROKERS%%,*}" >"$W/probe.out" 2>&1 || { cat "$W/probe.out" >&2; fail "kafka_probe failed"; }
cat "$W/probe.out"
if [ "${kv%%.*}" -ge 4 ]; then want=yes; else want=no; fi
expect "ConsumerGroupHeartbeat offered by Kafka $kv" \
    "$(sed -n 's/^consumer-group-heartbeat: //p' "$W/probe.out")" "$want"

# librdkafka >= 2.12 (0x020c0000) and offered: consumer; else classic.
rv="$(sed -n 's/^librdkafka: //p' "$W/probe.out")"
IFS=. read -r ma mi _ <<<"${rv%%-*}"
if [ "$want" = yes ] && { [ "$ma" -gt 2 ] || { [ "$ma" -eq 2 ] && [ "$mi" -ge 12 ]; }; }; then
    proto=consumer
else
    proto=classic
fi
expect "group.protocol chosen (librdkafka $rv, Kafka $kv)" \
    "$(sed -n 's/^group.protocol: \([a-z]*\).*/\1/p' "$W/probe.out")" "$proto"
echo "ok: the probe and the decision for librdkafka $rv against Kafka $kv: $proto"

# The consumer logs the decision at start (it exits at once on an empty,
# fresh topic with --exit-at-end; --help-config is not enough, it does not
# reach Kafka).
tf_new_db platform
T="$(tf_topic platform)"
tf_create_topic "$T" 1
# agg_run ARGS...: the consumer until caught up; its status in AGG_RC.
agg_run() {
    AGG_RC=0
    timeout "$(tf_timeout 60)" "$AGG" -g "grp-$T" -t "$T" --exit-at-end --log-level info "$@" \
        >"$W/agg.log" 2>&1 || AGG_RC=$?
}
agg_run
[ "$AGG_RC" -eq 0 ] || { cat "$W/agg.log" >&2; fail "tradeflow-aggregate --exit-at-end exited $AGG_RC"; }
grep -q "consumer group protocol: $proto (librdkafka $rv" "$W/agg.log" ||
    { cat "$W/agg.log" >&2; fail "tradeflow-aggregate did not log 'consumer group protocol: $proto'"; }
echo "ok: tradeflow-aggregate: $(grep -o 'consumer group protocol: .*' "$W/agg.log" | head -1)"
# The user's setting wins. librdkafka before 2.4 has no group.protocol
# property at all: then the consumer must refuse it clearly.
# (The kafka.* keys are checked against librdkafka while the command line
# is parsed, so that refusal comes before any decision is logged.)
agg_run -X group.protocol=classic
if [ "$ma" -eq 2 ] && [ "$mi" -lt 4 ]; then
    [ "$AGG_RC" -ne 0 ] && grep -qi "group.protocol.*no such configuration property\|no such configuration property.*group.protocol" "$W/agg.log" ||
        { cat "$W/agg.log" >&2; fail "librdkafka $rv: -X group.protocol=classic was not refused clearly"; }
    echo "ok: -X group.protocol=classic wins (and librdkafka $rv, which lacks the property, refuses it: exit $AGG_RC)"
else
    [ "$AGG_RC" -eq 0 ] || { cat "$W/agg.log" >&2; fail "-X group.protocol=classic: exit $AGG_RC"; }
    grep -q "consumer group protocol: classic (librdkafka $rv: group.protocol set by the user" "$W/agg.log" ||
        { cat "$W/agg.log" >&2; fail "a user's group.protocol=classic did not win"; }
    echo "ok: -X group.protocol=classic wins"
fi

# A closed port: a clear failure, not a hang.
port="$("$TF_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
t0=$SECONDS
if "$PROBE" "127.0.0.1:$port" >"$W/closed.out" 2>&1; then fail "the probe of a closed port succeeded"; fi
grep -q "refused" "$W/closed.out" || { cat "$W/closed.out" >&2; fail "no 'refused' from the probe of a closed port"; }
[ $((SECONDS - t0)) -le 6 ] || fail "the probe of a closed port took $((SECONDS - t0)) s"
echo "ok: a closed port: $(cat "$W/closed.out")"
echo "4 passed, 0 failed"
