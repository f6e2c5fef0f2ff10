# shellcheck shell=bash
# tests/integration/lib.sh - sourced by the shell integration tests.
#
#   . "$TF_SOURCE_DIR/tests/integration/lib.sh"
#   tf_require_stack               # exit 1, loudly, unless Kafka and PostgreSQL answer
#   tf_new_db NAME                 # own database, exported as PGDATABASE, dropped at exit
#   T="$(tf_topic NAME)"           # own topic name, deleted at exit
#   tf_create_topic "$T" 6 [RF]    # created through the Admin API, ready when this returns
#   "$(tf_bin tradeflow-produce)"  # a program of the build under test
#   "$TF_PYTHON"                   # the project's virtualenv (deploy/install-deps.sh)
#   timeout "$(tf_timeout 60)" ... # 60 s, or 180 s in a sanitizer build
#
# Servers come from `eval "$(deploy/stack.sh env)"` (TRADEFLOW_BROKERS, PG*);
# ctest passes TF_BUILD_DIR, TF_SOURCE_DIR and TF_SANITIZE.
#
# Clean-up: databases and topics made here are removed when the test exits,
# however it exits (TF_KEEP=1 keeps them for a post-mortem). Tests may set
# their own `trap ... EXIT`: lib.sh wraps the trap builtin so that the test's
# EXIT action runs first and lib.sh's clean-up still runs after it. (The
# action is evaluated inside a function: $1, $2... there are not the
# script's arguments; expand them when setting the trap.)
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

tf_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# tf_timeout SECONDS: SECONDS scaled for sanitizer builds.
tf_timeout() { echo $(($1 * TF_TIMEOUT_SCALE)); }

# ---------------------------------------------------------------- clean-up

_tf_dbs=()
_tf_topics=()
_tf_user_exit=""
_tf_topic_file=""

_tf_cleanup() {
    local rc=$?
    # Clean-up must run to the end whatever the test's options or its EXIT
    # action do.
    set +eu
    if [ -n "$_tf_user_exit" ]; then
        eval "$_tf_user_exit"
    fi
    local t
    if [ -f "$_tf_topic_file" ]; then
        while read -r t; do [ -n "$t" ] && _tf_topics+=("$t"); done < <(sort -u "$_tf_topic_file")
        rm -f "$_tf_topic_file"
    fi
    if [ "${TF_KEEP:-0}" = 1 ]; then
        if [ ${#_tf_dbs[@]} -gt 0 ] || [ ${#_tf_topics[@]} -gt 0 ]; then
            echo "TF_KEEP=1: kept databases: ${_tf_dbs[*]:-none}; topics: ${_tf_topics[*]:-none}" >&2
        fi
        return $rc
    fi
    local db
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
# shellcheck disable=SC2218
builtin trap _tf_cleanup EXIT

# The test's own EXIT action is kept and run by _tf_cleanup; every other
# use of trap goes to the builtin unchanged.
# shellcheck disable=SC2064
trap() {
    local action sigs=() s has_exit=0
    if [ $# -ge 2 ] && [ "$1" != "-p" ] && [ "$1" != "-l" ]; then
        action="$1"
        shift
        for s in "$@"; do
            case "$s" in
                EXIT | 0 | SIGEXIT) has_exit=1 ;;
                *) sigs+=("$s") ;;
            esac
        done
        if [ $has_exit = 1 ]; then
            if [ "$action" = "-" ]; then _tf_user_exit=""; else _tf_user_exit="$action"; fi
        fi
        [ ${#sigs[@]} -eq 0 ] || builtin trap "$action" "${sigs[@]}"
        return 0
    fi
    builtin trap "$@"
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
