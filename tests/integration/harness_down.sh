#!/usr/bin/env bash
# A test against a server that is down must fail: with a non-zero status, a
# message naming the missing server, and within a bounded time (no hang).
# Runs test_harness (argument 1) with Kafka, then PostgreSQL, then both
# pointed at closed loopback ports; the other server is the real stack.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tf_require_stack
HARNESS="${1:?usage: harness_down.sh PATH-TO-test_harness}"

# A loopback port nothing listens on (checked just before use).
closed_port() {
    local p
    for ((p = 20000 + RANDOM % 20000; ; p++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

# expect_down NAME PATTERN ENV...: runs the harness with ENV and checks.
expect_down() {
    local name="$1" pattern="$2" out rc t0 secs limit
    shift 2
    limit="$(tf_timeout 25)"
    out="$(mktemp)"
    t0=$(date +%s%N)
    set +e
    env "$@" timeout $((limit * 2)) "$HARNESS" -T 3 -n 10 >"$out" 2>&1
    rc=$?
    set -e
    secs=$((($(date +%s%N) - t0) / 1000000000))
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "$pattern" "$out" && [ "$secs" -le "$limit" ]; then
        tf_check "$name: exit $rc after ${secs}s: $(grep -m1 FAIL "$out")" true
    else
        sed 's/^/    /' "$out" >&2
        tf_check "$name: exit $rc after ${secs}s (limit ${limit}s, want a message matching '$pattern')" false
    fi
    rm -f "$out"
}

kp="$(closed_port)"
pp="$(closed_port)"
expect_down "kafka down" "Kafka at 127.0.0.1:$kp is unreachable" TRADEFLOW_BROKERS="127.0.0.1:$kp"
expect_down "postgresql down" "PostgreSQL at .*:$pp is unreachable" PGPORT="$pp"
expect_down "both down" "Kafka .*unreachable.*PostgreSQL .*unreachable" \
    TRADEFLOW_BROKERS="127.0.0.1:$kp" PGPORT="$pp"
expect_down "no broker configured" "TRADEFLOW_BROKERS is not set" TRADEFLOW_BROKERS=
tf_report
