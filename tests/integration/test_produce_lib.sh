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

if [ -z "${TRADEFLOW_BROKERS:-}" ]; then
    tf_fail "no broker: set TRADEFLOW_BROKERS (eval \"\$(deploy/stack.sh env)\")"
fi
for _b in "$PRODUCE" "$DUMP"; do
    [ -x "$_b" ] || tf_fail "$_b is not built"
done

tf_new_workdir W

# A topic name no other test or run uses, deleted when the test exits.
tp_topic() { tf_topic "produce.$1"; }

# The checks are lib.sh's soft checks (tp_* are the names these tests use):
#   tp_check DESC CMD...    tf_check
#   tp_eq DESC GOT WANT     tf_check_eq
#   tp_report               tf_report (fails when a check failed or none ran)
tp_check() { tf_check "$@"; }
tp_eq() { tf_check_eq "$@"; }
tp_report() { tf_report; }

# tp_same_file DESC GOT_FILE WANT_FILE: equal after sorting.
tp_same_file() {
    if diff <(sort "$2") <(sort "$3") >"$W/diff.out"; then
        tf_check "$1" true
    else
        cat "$W/diff.out" >&2
        tf_check "$1" false
    fi
}

# Runs tradeflow-produce, keeping its exit status in $rc and stderr in $W/err.
tp_produce() {
    rc=0
    "$PRODUCE" "$@" 2>"$W/err" || rc=$?
    sed 's/^/  produce: /' "$W/err" >&2
}
