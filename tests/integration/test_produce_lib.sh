# tests/integration/test_produce_lib.sh - shared by the test_produce_*.sh
# integration tests (sourced). Needs a broker (no PostgreSQL): TRADEFLOW_BROKERS
# from `eval "$(deploy/stack.sh env)"`. Each test uses its own fresh topics.
set -euo pipefail

# The project's test library: TF_SOURCE_DIR/TF_BUILD_DIR, TF_PYTHON, tf_topic
# (unique names, deleted at exit), tf_timeout.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PRODUCE="$TF_BUILD_DIR/bin/tradeflow-produce"
DUMP="$TF_BUILD_DIR/tests/test_produce_dump"
PYREAD="$TF_SOURCE_DIR/tests/integration/test_produce_pyread.py"

tp_passed=0
tp_failed=0

if [ -z "${TRADEFLOW_BROKERS:-}" ]; then
    echo "no broker: set TRADEFLOW_BROKERS (eval \"\$(deploy/stack.sh env)\")" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
for _b in "$PRODUCE" "$DUMP"; do
    [ -x "$_b" ] || { echo "$_b is not built" >&2; echo "0 passed, 1 failed"; exit 1; }
done

W="$(mktemp -d "${TMPDIR:-/tmp}/test_produce.XXXXXX")"
trap 'rm -rf "$W"' EXIT

# A topic name no other test or run uses, deleted when the test exits.
tp_topic() { tf_topic "produce.$1"; }

# ok CONDITION-DESCRIPTION: records a result of the last command's status.
tp_check() {
    local desc="$1"
    shift
    if "$@"; then
        tp_passed=$((tp_passed + 1))
        echo "ok   $desc"
    else
        tp_failed=$((tp_failed + 1))
        echo "FAIL $desc" >&2
    fi
}

# tp_eq DESC GOT WANT
tp_eq() {
    if [ "$2" = "$3" ]; then
        tp_passed=$((tp_passed + 1))
        echo "ok   $1"
    else
        tp_failed=$((tp_failed + 1))
        echo "FAIL $1: got [$2], want [$3]" >&2
    fi
}

# tp_same_file DESC GOT_FILE WANT_FILE: equal after sorting.
tp_same_file() {
    if diff <(sort "$2") <(sort "$3") >"$W/diff.out"; then
        tp_passed=$((tp_passed + 1))
        echo "ok   $1"
    else
        tp_failed=$((tp_failed + 1))
        echo "FAIL $1:" >&2
        cat "$W/diff.out" >&2
    fi
}

# Runs tradeflow-produce, keeping its exit status in $rc and stderr in $W/err.
tp_produce() {
    rc=0
    "$PRODUCE" "$@" 2>"$W/err" || rc=$?
    sed 's/^/  produce: /' "$W/err" >&2
}

tp_report() {
    echo "$tp_passed passed, $tp_failed failed"
    [ "$tp_failed" -eq 0 ]
}
