#!/usr/bin/env bash
# deploy/test.sh - the whole test suite, as CI runs it (.ci/run):
#
#   1. deploy/install-deps.sh (nothing to do when everything is present)
#   2. builds build/ (RelWithDebInfo) and build-asan/ (-DTF_SANITIZE=ON)
#   3. starts a private, fresh stack for the tests (its own directory and
#      ports, so a developer's demo stack is left alone)
#   4. ctest -L unit and -L integration in build/ against the stack's
#      default Kafka (4.x); then a second stack with the other Kafka line
#      (3.9) for the tests that depend most on the broker (TF_OTHER_KAFKA_TESTS);
#      then unit and integration in build-asan/ (leak detection on, timeouts
#      x3) against the default stack
#   5. the fuzzers, briefly, unless ctest already ran them
#   6. stops the test stacks (also on failure or Ctrl-C) and prints a summary
#      with the wall time of each phase; exits non-zero if anything failed.
#
#   deploy/test.sh [--quick] [--keep-stack] [--no-deps] [-j N]
#
#   --quick        skip the sanitizer build and pass, and the other Kafka
#                  line (unless TF_OTHER_KAFKA is set)
#   --keep-stack   leave the test stack running afterwards (for debugging:
#                  eval "$(TRADEFLOW_STACK_DIR=.stack-test deploy/stack.sh env)")
#   --no-deps      do not run deploy/install-deps.sh
#   -j N           build jobs (default: number of CPUs)
#
# Environment: TF_TEST_STACK_DIR (default <repo>/.stack-test),
# TF_TEST_KAFKA_PORT / TF_TEST_PG_PORT (default: first free of 19192/15532,
# 19292/15632, ...), TF_FUZZ_SECONDS (default 10), TF_CTEST_ARGS (extra
# ctest arguments, e.g. "-R harness"), TF_CTEST_JOBS (integration tests run
# at once; default 3, and 2 in the sanitizer pass), TRADEFLOW_KAFKA_VERSION
# (the main stack's Kafka; default stack.sh's, 4.4.0), TF_OTHER_KAFKA (the
# second line; default 3.9, or 4 when the main one is 3.x; "none" skips it), TF_OTHER_KAFKA_TESTS (its ctest
# -R regex), TF_TEST_OTHER_KAFKA_PORT / TF_TEST_OTHER_PG_PORT (its ports).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
quick=0
keep=0
deps=1
jobs="$(nproc 2>/dev/null || echo 2)"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --keep-stack) keep=1 ;;
        --no-deps) deps=0 ;;
        -j) jobs="${2:?-j needs a number}"; shift ;;
        -j*) jobs="${1#-j}" ;;
        -h | --help) sed -n '2,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        *) echo "test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

export TRADEFLOW_STACK_DIR="${TF_TEST_STACK_DIR:-$REPO/.stack-test}"
LOGS="$REPO/build/test-logs"
mkdir -p "$LOGS"
# One run at a time per tree: a second run would rebuild build/ and wipe the
# first one's test stack under its feet.
exec 7>"$REPO/build/.test.lock"
if ! flock -n 7; then
    echo "test.sh: another deploy/test.sh is running in $REPO (it holds build/.test.lock); wait for it to finish" >&2
    exit 1
fi
export TF_PYTHON="${TF_PYTHON:-$REPO/.venv/bin/python}"
read -r -a ctest_extra <<<"${TF_CTEST_ARGS:-}"
# Integration tests run several at a time: each has its own topics and
# database, and most of their time is spent waiting on the servers (measured
# here: 341 s with 3 at a time, 426-479 s with 2). The sanitizer pass, which
# is CPU-bound, runs 2 at a time. A test that stops or restarts a server of
# the shared stack (stack.sh kill-broker / restart-pg) must say RUN_SERIAL ON
# in its tests/*.cmake declaration.
itjobs="${TF_CTEST_JOBS:-3}"
asan_itjobs="${TF_CTEST_JOBS:-2}"
# The second Kafka line: the producer, the consumer (groups, crashes, faults,
# poison, rebuild), the alerts, the security tests (each on a private
# secured stack of that line), the 3-broker failover and the platform probe.
# (4.4.0 when the main line is 3.x.)
case "${TRADEFLOW_KAFKA_VERSION:-}" in 3 | 3.*) other_kafka="${TF_OTHER_KAFKA:-4}" ;; *) other_kafka="${TF_OTHER_KAFKA:-3.9}" ;; esac
[ "$quick" = 1 ] && [ -z "${TF_OTHER_KAFKA:-}" ] && other_kafka=none
other_tests="${TF_OTHER_KAFKA_TESTS:-^(produce_|aggregate_|alerts_|security_|cluster_failover|platform_kafka|harness_roundtrip)}"
OTHER_STACK_DIR="$TRADEFLOW_STACK_DIR-kafka$other_kafka"

T_START=$SECONDS
phases=()
failures=0
failed_tests=()

# phase NAME CMD...: runs CMD, records its status and wall time.
phase() {
    local name="$1" t0=$SECONDS rc=0
    shift
    echo
    echo "==== $name"
    "$@" || rc=$?
    local dt=$((SECONDS - t0))
    if [ $rc -eq 0 ]; then
        phases+=("$(printf '%-34s ok     %4d s' "$name" "$dt")")
    else
        phases+=("$(printf '%-34s FAILED %4d s  (exit %d)' "$name" "$dt" "$rc")")
        failures=$((failures + 1))
    fi
    return $rc
}

skip() { phases+=("$(printf '%-34s skipped       (%s)' "$1" "$2")"); }

summary() {
    echo
    echo "==== summary ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
    local p
    for p in "${phases[@]}"; do echo "  $p"; done
    [ ${#failed_tests[@]} -eq 0 ] || echo "  failed tests: ${failed_tests[*]}"
    echo "  total wall time: $((SECONDS - T_START)) s; logs in $LOGS"
    if [ "$failures" -gt 0 ]; then
        echo "  RESULT: $failures phase(s) FAILED"
    else
        echo "  RESULT: all passed"
    fi
}

stack_down() {
    if [ "$keep" = 1 ]; then
        echo "test.sh: --keep-stack: the test stack keeps running in $TRADEFLOW_STACK_DIR" >&2
    elif [ -f "$TRADEFLOW_STACK_DIR/stack.conf" ]; then
        local t0=$SECONDS
        deploy/stack.sh down >/dev/null 2>&1 7>&- || echo "test.sh: stack.sh down failed" >&2
        phases+=("$(printf '%-34s ok     %4d s' "stack down" $((SECONDS - t0)))")
    fi
    if [ -f "$OTHER_STACK_DIR/stack.conf" ]; then
        TRADEFLOW_STACK_DIR="$OTHER_STACK_DIR" deploy/stack.sh down >/dev/null 2>&1 7>&- || true
    fi
}

on_exit() {
    local rc=$?
    stack_down
    summary
    if [ "$failures" -gt 0 ] && [ $rc -eq 0 ]; then rc=1; fi
    exit $rc
}
trap on_exit EXIT
trap 'echo "test.sh: interrupted" >&2; failures=$((failures + 1)); exit 130' INT TERM

# build DIR CMAKE-ARGS...: configures and builds; the log is kept, its tail
# shown on failure.
build() {
    local dir="$1" log
    shift
    log="$LOGS/$(basename "$dir").build.log"
    if ! { cmake -S "$REPO" -B "$dir" -DTF_WERROR=ON "$@" &&
        cmake --build "$dir" -j"$jobs"; } >"$log" 2>&1; then
        grep -E 'error|Error|warning' "$log" | head -40 >&2 || true
        tail -n 20 "$log" >&2
        echo "test.sh: build of $dir failed (full log: $log)" >&2
        return 1
    fi
    echo "built $dir ($(grep -c 'Built target' "$log") targets; log: $log)"
}

# run_ctest DIR LABEL [ARGS...]; the names of failed tests are kept for the
# summary (RUN_TAG, if set, marks the JUnit file and the names: the other
# Kafka line's run).
run_ctest() {
    local dir="$1" label="$2" rc=0 t tag="${RUN_TAG:-}"
    shift 2
    rm -f "$dir/Testing/Temporary/LastTestsFailed.log"
    (cd "$dir" && ctest --output-on-failure --no-tests=ignore -L "^$label\$" \
        --output-junit "$LOGS/$(basename "$dir")-$label${tag:+-$tag}.xml" "$@" "${ctest_extra[@]}") 7>&- || rc=$?
    if [ -f "$dir/Testing/Temporary/LastTestsFailed.log" ]; then
        while IFS=: read -r _ t; do
            failed_tests+=("$(basename "$dir")${tag:+[$tag]}/$t")
        done <"$dir/Testing/Temporary/LastTestsFailed.log"
    fi
    return $rc
}

# Picks the first set of ports where the broker, its controller and
# PostgreSQL are all free.
pick_ports() {
    local k p n
    for ((n = 0; n < 20; n++)); do
        k="${TF_TEST_KAFKA_PORT:-$((19192 + 100 * n))}"
        p="${TF_TEST_PG_PORT:-$((15532 + 100 * n))}"
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$k") 2>/dev/null &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$((k + 1))") 2>/dev/null &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            export TRADEFLOW_KAFKA_PORT="$k" TRADEFLOW_PG_PORT="$p"
            return 0
        fi
        [ -z "${TF_TEST_KAFKA_PORT:-}${TF_TEST_PG_PORT:-}" ] || break
    done
    echo "test.sh: no free ports for the test stack (set TF_TEST_KAFKA_PORT / TF_TEST_PG_PORT)" >&2
    return 1
}

stack_up() {
    # A test stack left running by an earlier --keep-stack run is stopped
    # first, so that its ports count as free.
    # The servers must not inherit the run lock (fd 7).
    [ -f "$TRADEFLOW_STACK_DIR/stack.conf" ] && deploy/stack.sh down >/dev/null 2>&1 7>&- || true
    pick_ports || return 1
    deploy/stack.sh up --fresh 7>&- || return 1
    eval "$(deploy/stack.sh env)"
    echo "test stack: TRADEFLOW_BROKERS=$TRADEFLOW_BROKERS PGPORT=$PGPORT ($TRADEFLOW_STACK_DIR)"
}

if [ "$deps" = 1 ]; then
    phase "install deps" deploy/install-deps.sh || exit 1
else
    skip "install deps" "--no-deps"
fi

built=0
phase "build build/ (RelWithDebInfo)" build "$REPO/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTF_SANITIZE=OFF && built=1
asan_built=0
if [ "$quick" = 0 ]; then
    phase "build build-asan/ (ASan+UBSan)" build "$REPO/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTF_SANITIZE=ON && asan_built=1
else
    skip "build build-asan/" "--quick"
fi

phase "stack up (fresh)" stack_up || exit 1

# Do the fuzzers already run as a ctest test (tests/*.cmake)? Then the
# sanitizer pass leaves them out (they are sanitizer builds themselves) and
# there is no separate fuzz phase.
fuzz_in_ctest=0
if [ "$built" = 1 ]; then
    # Captured first: grep -q closing the pipe early would fail the
    # pipeline under pipefail.
    listed="$(cd build && ctest -N 2>/dev/null || true)"
    case "$listed" in *fuzz*) fuzz_in_ctest=1 ;; esac
fi

if [ "$built" = 1 ]; then
    phase "build/ unit" run_ctest build unit -j"$jobs" || true
    phase "build/ integration" run_ctest build integration -j"$itjobs" || true
else
    skip "build/ tests" "build failed"
fi

# other_kafka_tests: a second fresh stack with the other Kafka line, on
# the next free ports, for the broker-dependent tests; stopped afterwards.
# The main stack keeps running for the sanitizer pass.
other_kafka_tests() {
    local rc=0 main_dir="$TRADEFLOW_STACK_DIR" save_k="${TF_TEST_KAFKA_PORT:-}" save_p="${TF_TEST_PG_PORT:-}"
    local save_env
    # As "export" lines: "declare -x" would make them local to this function.
    save_env="$(export -p | sed -n -E 's/^declare -x ((TRADEFLOW_[A-Z_]*|PG[A-Z]*)=)/export \1/p')"
    export TRADEFLOW_STACK_DIR="$OTHER_STACK_DIR" TRADEFLOW_KAFKA_VERSION="$other_kafka"
    TF_TEST_KAFKA_PORT="${TF_TEST_OTHER_KAFKA_PORT:-}" TF_TEST_PG_PORT="${TF_TEST_OTHER_PG_PORT:-}"
    [ -n "$TF_TEST_KAFKA_PORT" ] || unset TF_TEST_KAFKA_PORT
    [ -n "$TF_TEST_PG_PORT" ] || unset TF_TEST_PG_PORT
    if stack_up; then
        RUN_TAG="kafka$other_kafka" run_ctest build integration -j"$itjobs" -R "$other_tests" || rc=$?
        deploy/stack.sh down >/dev/null 2>&1 7>&- || echo "test.sh: stack.sh down ($OTHER_STACK_DIR) failed" >&2
    else
        rc=1
    fi
    unset TRADEFLOW_KAFKA_VERSION
    eval "$save_env"
    export TRADEFLOW_STACK_DIR="$main_dir"
    [ -n "$save_k" ] && export TF_TEST_KAFKA_PORT="$save_k"
    [ -n "$save_p" ] && export TF_TEST_PG_PORT="$save_p"
    return $rc
}

if [ "$other_kafka" = none ]; then
    skip "build/ integration, other Kafka" "$([ "$quick" = 1 ] && [ -z "${TF_OTHER_KAFKA:-}" ] && echo --quick || echo TF_OTHER_KAFKA=none)"
elif [ "$built" = 1 ]; then
    phase "build/ integration, Kafka $other_kafka" other_kafka_tests || true
else
    skip "build/ integration, other Kafka" "build failed"
fi

if [ "$asan_built" = 1 ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    exclude=()
    [ "$fuzz_in_ctest" = 1 ] && exclude=(-E fuzz)
    phase "build-asan/ unit" run_ctest build-asan unit -j"$jobs" "${exclude[@]}" || true
    phase "build-asan/ integration" run_ctest build-asan integration -j"$asan_itjobs" "${exclude[@]}" || true
elif [ "$quick" = 0 ]; then
    skip "build-asan/ tests" "build failed"
else
    skip "build-asan/ tests" "--quick"
fi

if [ ! -f tests/fuzz/run-fuzzers.sh ]; then
    skip "fuzzers" "no tests/fuzz/run-fuzzers.sh"
elif [ "$fuzz_in_ctest" = 1 ]; then
    skip "fuzzers" "already run by ctest in build/"
else
    phase "fuzzers (${TF_FUZZ_SECONDS:-10} s each)" bash tests/fuzz/run-fuzzers.sh "$REPO/build-fuzz" "${TF_FUZZ_SECONDS:-10}" || true
fi
