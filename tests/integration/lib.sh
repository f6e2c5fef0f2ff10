# shellcheck shell=bash
# tests/integration/lib.sh - sourced by every shell integration test, first.
#
#   set -euo pipefail
#   . "$TF_SOURCE_DIR/tests/integration/lib.sh"
#
# ------------------------------------------------------------- the helper API
#
# Failing and checking (the only ways; agg_lib.sh's `fail`/`expect` and
# test_produce_lib.sh's `tp_check`/`tp_eq`/`tp_report` are aliases of these):
#   tf_fail MSG...               "FAIL: MSG" on stderr, exit 1 (clean-up runs)
#   tf_expect DESC GOT WANT      GOT must equal WANT, else tf_fail; "ok: DESC = WANT"
#   tf_check DESC CMD...         soft check: runs CMD, counts a pass or a failure,
#                                goes on ("ok   DESC" / "FAIL DESC")
#   tf_check_eq DESC GOT WANT    soft check of GOT = WANT
#   tf_report                    "N passed, M failed" (hard checks counted too);
#                                returns 1 when a check failed OR when no check
#                                ran at all (a test that checked nothing failed)
#   tf_wait_for DESC SECS CMD... polls CMD (every 0.2 s) until it succeeds, else
#                                tf_fail "timed out waiting for DESC"
#
# Clean-up (one EXIT trap, set here; tests must not call `trap ... EXIT`
# after sourcing this file: tests/integration/lint_tests.sh rejects it, and
# lib.sh stops a test whose trap replaced its own at the next tf_on_exit,
# tf_new_db or tf_report; an EXIT trap set BEFORE sourcing is kept and run
# last):
#   tf_on_exit CMD               CMD (a string, eval'd) runs at exit, however the
#                                test exits (also SIGINT/SIGTERM/SIGHUP); the last
#                                registered runs first; a failing CMD does not
#                                stop the others; the exit status is kept
#   tf_new_workdir VAR           a fresh temporary directory in $VAR, removed at
#                                exit (kept with TF_KEEP=1)
#   tf_kill_jobs [SIGNAL]        signals the test's background jobs (default KILL)
#                                and reaps them
#   tf_forget_resources          the stack itself is removed at exit (a private
#                                stack): do not drop databases/topics
# At exit, in this order: the tf_on_exit commands (last first), then every
# background job still running is killed (SIGKILL) and reaped, then the
# databases and topics made below are dropped (TF_KEEP=1 keeps them and the
# work directories, for a post-mortem).
#
# The stack and the build:
#   tf_require_stack               exit 1, loudly, unless Kafka and PostgreSQL answer
#   tf_new_db NAME                 own database, exported as PGDATABASE, dropped at exit
#   T="$(tf_topic NAME)"           own topic name, deleted at exit
#   tf_create_topic "$T" 6 [RF]    created through the Admin API, ready when this returns
#   "$(tf_bin tradeflow-produce)"  a program of the build under test (tf_fail if absent)
#   "$TF_PYTHON"                   the project's virtualenv (deploy/install-deps.sh)
#   timeout "$(tf_timeout 60)" ... # 60 s, or 180 s in a sanitizer build
#
# Servers come from `eval "$(deploy/stack.sh env)"` (TRADEFLOW_BROKERS, PG*);
# ctest passes TF_BUILD_DIR, TF_SOURCE_DIR and TF_SANITIZE.
#
# Adapting an older test: `trap 'kill $(jobs -p); rm -rf "$W"' EXIT` becomes
# `tf_new_workdir W` (jobs are killed at exit anyway); any other EXIT action
# becomes `tf_on_exit 'ACTION'`; `fail`/`expect`/`tp_check` keep working.
# Background jobs (`cmd &`, `( ... ) &`) do not run the clean-up: only the
# test's own shell does. Check a value (read into a variable) before using it
# in $((...)): an arithmetic expansion with an empty operand aborts only that
# one command, and bash goes on even under set -e (a check that never ran).
#
# Topics are created explicitly with tf_admin (tests/integration/tf_admin.c,
# built into $TF_BUILD_DIR/tests): the broker's auto-creation would give one
# partition and hide a producer that forgot to create its topic, and
# kafka-topics.sh costs a JVM start (~2 s) per call.

TF_SOURCE_DIR="${TF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TF_BUILD_DIR="${TF_BUILD_DIR:-$TF_SOURCE_DIR/build}"
export TF_SOURCE_DIR TF_BUILD_DIR
export TRADEFLOW_SCHEMA_DIR="${TRADEFLOW_SCHEMA_DIR:-$TF_SOURCE_DIR/schemas}"
if [ -z "${TF_PYTHON:-}" ]; then
    if [ -x "$TF_SOURCE_DIR/.venv/bin/python" ]; then
        TF_PYTHON="$TF_SOURCE_DIR/.venv/bin/python"
    else
        TF_PYTHON="$(command -v python3 || echo python3)"
    fi
fi
export TF_PYTHON

case "${TF_SANITIZE:-OFF}" in
    ON | on | 1 | TRUE | true | YES | yes) TF_TIMEOUT_SCALE=3 ;;
    *) TF_TIMEOUT_SCALE=1 ;;
esac
export TF_TIMEOUT_SCALE

# tf_timeout SECONDS: SECONDS scaled for sanitizer builds.
tf_timeout() { echo $(($1 * TF_TIMEOUT_SCALE)); }

# ------------------------------------------------------- failing and checking

_tf_passed=0
_tf_failed=0

tf_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# tf_expect DESC GOT WANT
tf_expect() {
    [ $# -eq 3 ] || tf_fail "tf_expect DESC GOT WANT: called with $# arguments (${1:-})"
    [ "$2" = "$3" ] || tf_fail "$1: got '$2', expected '$3'"
    _tf_passed=$((_tf_passed + 1))
    echo "ok: $1 = $3"
}

# tf_check DESC CMD...: CMD's status decides; the test goes on either way.
tf_check() {
    local desc="$1"
    shift
    [ $# -gt 0 ] || tf_fail "tf_check DESC CMD...: no command for '$desc'"
    if "$@"; then
        _tf_passed=$((_tf_passed + 1))
        echo "ok   $desc"
    else
        _tf_failed=$((_tf_failed + 1))
        echo "FAIL $desc" >&2
    fi
}

# tf_check_eq DESC GOT WANT
tf_check_eq() {
    [ $# -eq 3 ] || tf_fail "tf_check_eq DESC GOT WANT: called with $# arguments (${1:-})"
    if [ "$2" = "$3" ]; then
        _tf_passed=$((_tf_passed + 1))
        echo "ok   $1"
    else
        _tf_failed=$((_tf_failed + 1))
        echo "FAIL $1: got [$2], want [$3]" >&2
    fi
}

# tf_report: the verdict of the soft checks (call it last: `tf_report`).
tf_report() {
    _tf_trap_guard
    echo "$_tf_passed passed, $_tf_failed failed"
    if [ "$_tf_passed" -eq 0 ] && [ "$_tf_failed" -eq 0 ]; then
        echo "FAIL: no check ran" >&2
        return 1
    fi
    [ "$_tf_failed" -eq 0 ]
}

# tf_wait_for DESC SECONDS CMD...: polls until CMD succeeds (SECONDS scaled
# for sanitizer builds).
tf_wait_for() {
    local what="$1" secs="$2"
    shift 2
    local end=$((SECONDS + $(tf_timeout "$secs")))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || tf_fail "timed out waiting for $what"
        sleep 0.2
    done
}

# ---------------------------------------------------------------- clean-up

_tf_exit_cmds=()
_tf_dbs=()
_tf_topics=()
_tf_forget=0
_tf_topic_file=""

tf_on_exit() {
    [ $# -eq 1 ] || tf_fail "tf_on_exit CMD: one string (got $# arguments)"
    _tf_trap_guard
    _tf_exit_cmds+=("$1")
}

tf_kill_jobs() {
    local sig="${1:-KILL}" pids
    pids="$(jobs -p)"
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -"$sig" $pids 2>/dev/null
    # shellcheck disable=SC2086
    wait $pids 2>/dev/null
    return 0
}

tf_new_workdir() {
    local _d
    _d="$(mktemp -d "${TMPDIR:-/tmp}/tft.XXXXXX")" || tf_fail "mktemp -d failed"
    printf -v "${1:?tf_new_workdir VAR}" '%s' "$_d"
    tf_on_exit "_tf_rm_workdir '$_d'"
}
_tf_rm_workdir() {
    if [ "${TF_KEEP:-0}" = 1 ]; then
        echo "TF_KEEP=1: kept $1" >&2
    else
        rm -rf "$1"
    fi
}

tf_forget_resources() { _tf_forget=1; }

_tf_exit() {
    local rc=$? i t db
    # Clean-up runs to the end whatever the test's options or its commands do.
    set +eu
    for ((i = ${#_tf_exit_cmds[@]} - 1; i >= 0; i--)); do
        eval "${_tf_exit_cmds[$i]}"
    done
    tf_kill_jobs KILL
    if [ -f "$_tf_topic_file" ]; then
        while read -r t; do [ -n "$t" ] && _tf_topics+=("$t"); done < <(sort -u "$_tf_topic_file")
        rm -f "$_tf_topic_file"
    fi
    if [ "$_tf_forget" = 1 ]; then
        return $rc
    fi
    if [ "${TF_KEEP:-0}" = 1 ]; then
        if [ ${#_tf_dbs[@]} -gt 0 ] || [ ${#_tf_topics[@]} -gt 0 ]; then
            echo "TF_KEEP=1: kept databases: ${_tf_dbs[*]:-none}; topics: ${_tf_topics[*]:-none}" >&2
        fi
        return $rc
    fi
    for db in "${_tf_dbs[@]}"; do
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "lib.sh: could not drop database $db" >&2
    done
    if [ ${#_tf_topics[@]} -gt 0 ] && [ -x "$TF_BUILD_DIR/tests/tf_admin" ]; then
        "$TF_BUILD_DIR/tests/tf_admin" -T 10 delete-topic "${_tf_topics[@]}" >/dev/null 2>&1 ||
            echo "lib.sh: could not delete topics ${_tf_topics[*]}" >&2
    fi
    return $rc
}
# An EXIT action set before this file was sourced is kept: it becomes the
# first tf_on_exit command (so it runs last).
# (Not lib.sh's own, seen again when a subshell sources this file.)
_tf_adopt_exit() {
    [ "${1:-}" = -- ] && [ -n "${2:-}" ] && [ "$2" != _tf_exit ] && _tf_exit_cmds+=("$2")
    return 0
}
_tf_prev_exit="$(trap -p EXIT)"
[ -z "$_tf_prev_exit" ] || eval "_tf_adopt_exit ${_tf_prev_exit#trap }"
unset _tf_prev_exit
trap _tf_exit EXIT
# A signal ends the test through exit, so the EXIT trap cleans up.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
_tf_exit_trap="$(trap -p EXIT)"

# A test that set its own EXIT trap after sourcing this file has disabled
# the clean-up: stop it, saying what to do instead.
_tf_trap_guard() {
    [ "$(trap -p EXIT)" = "$_tf_exit_trap" ] ||
        tf_fail "the test replaced lib.sh's EXIT trap ($(trap -p EXIT)): use tf_on_exit CMD instead of trap ... EXIT"
}

# ---------------------------------------------------------------- the stack

# Exits 1 with a clear message unless the broker answers a metadata request
# and PostgreSQL accepts a connection. Never skips: a test that needs the
# stack and has none has failed.
tf_require_stack() {
    [ -n "${TRADEFLOW_BROKERS:-}" ] ||
        tf_fail "TRADEFLOW_BROKERS is not set: start the stack and load its environment: deploy/stack.sh up && eval \"\$(deploy/stack.sh env)\""
    [ -n "${PGPORT:-}" ] || [ -n "${PGHOST:-}" ] ||
        tf_fail "PGHOST/PGPORT are not set: eval \"\$(deploy/stack.sh env)\""
    local t
    t="$(tf_timeout 10)"
    if [ -x "$TF_BUILD_DIR/tests/tf_admin" ]; then
        "$TF_BUILD_DIR/tests/tf_admin" -T "$t" ping >/dev/null ||
            tf_fail "Kafka at $TRADEFLOW_BROKERS does not answer (deploy/stack.sh status)"
    else
        kcat -L -b "$TRADEFLOW_BROKERS" -m "$t" >/dev/null 2>&1 ||
            tf_fail "Kafka at $TRADEFLOW_BROKERS does not answer (deploy/stack.sh status)"
    fi
    PGCONNECT_TIMEOUT="$t" psql -X -q -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 ||
        tf_fail "PostgreSQL at ${PGHOST:-local}:${PGPORT:-5432} (user ${PGUSER:-$USER}) does not answer (deploy/stack.sh status)"
}

# tf_new_db NAME: creates database tft_NAME_PID_RANDOM, exports PGDATABASE
# (and TF_DB) so psql and every tradeflow program use it, drops it at exit.
tf_new_db() {
    local name db
    _tf_trap_guard
    name="$(echo "${1:?tf_new_db NAME}" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9_\n' '_')"
    db="tft_${name:0:30}_$$_${RANDOM}"
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null ||
        tf_fail "cannot create database $db"
    _tf_dbs+=("$db")
    export PGDATABASE="$db" TF_DB="$db"
}

# tf_topic NAME: prints a topic name no other test or run uses
# (tft.NAME.PID.RANDOM) and marks it for deletion at exit. It is usually
# called as T="$(tf_topic x)", in a subshell, so the name is recorded in a
# file that the test's own shell reads at exit.
_tf_topic_file="$(mktemp "${TMPDIR:-/tmp}/tft-topics.XXXXXX")"
tf_topic() {
    local t="tft.${1:?tf_topic NAME}.$$.${RANDOM}${RANDOM}"
    echo "$t" >>"$_tf_topic_file"
    echo "$t"
}

# tf_create_topic TOPIC PARTITIONS [RF]: creates TOPIC through the Admin API
# and returns when every partition has a leader.
tf_create_topic() {
    local topic="${1:?tf_create_topic TOPIC PARTITIONS [RF]}" parts="${2:?partitions}"
    [ -x "$TF_BUILD_DIR/tests/tf_admin" ] ||
        tf_fail "$TF_BUILD_DIR/tests/tf_admin is not built (cmake --build $TF_BUILD_DIR --target tf_admin)"
    "$TF_BUILD_DIR/tests/tf_admin" -T "$(tf_timeout 30)" create-topic "$topic" "$parts" ${3:+"$3"} ||
        tf_fail "cannot create topic $topic"
    echo "$topic" >>"$_tf_topic_file"
}

# tf_bin NAME: the path of program NAME of the build under test.
tf_bin() {
    local p="$TF_BUILD_DIR/bin/${1:?tf_bin NAME}"
    [ -x "$p" ] || tf_fail "$p is not built (cmake --build $TF_BUILD_DIR)"
    echo "$p"
}
