#!/usr/bin/env bash
# Checks tests/integration/lib.sh on the real stack: unique databases and
# topics, their removal at exit even when the test sets its own EXIT trap,
# TF_KEEP=1, and a loud failure (exit 1, clear message) without a stack.
set -euo pipefail
LIB="$(cd "$(dirname "$0")" && pwd)/lib.sh"
. "$LIB"
tf_require_stack
passed=0
failed=0
check() {
    local desc="$1"
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   $desc"
    else
        failed=$((failed + 1))
        echo "FAIL $desc" >&2
    fi
}
not() { ! "$@"; }
db_exists() { [ "$(psql -X -d postgres -tAc "SELECT count(*) FROM pg_database WHERE datname='$1'")" = 1 ]; }
# Lists all topics: asking for one topic by name would make the broker
# auto-create it (auto.create.topics.enable stays true in the stack).
topic_partitions() {
    kcat -L -b "$TRADEFLOW_BROKERS" -m 10 2>/dev/null |
        sed -n "s/.*topic \"$1\" with \([0-9]*\) partitions.*/\1/p"
}
W="$(mktemp -d)"
builtin trap 'rm -rf "$W"' EXIT

# A child test: makes a database and a topic, sets its own EXIT trap, writes
# the names for us, then exits with the status it is given.
cat >"$W/child.sh" <<CHILD
set -euo pipefail
. "$LIB"
tf_require_stack
tf_new_db lib_child
T="\$(tf_topic libchild)"
tf_create_topic "\$T" 4
trap "echo user-trap-ran >'$W/trap.\$1'" EXIT
echo "\$PGDATABASE \$T" >"$W/names.\$1"
psql -X -q -c "CREATE TABLE t (x int)"
exit "\$2"
CHILD

for status in 0 3; do
    rc=0
    bash "$W/child.sh" "s$status" "$status" || rc=$?
    read -r db topic <"$W/names.s$status"
    check "child exit status $status kept" [ "$rc" = "$status" ]
    check "database name is unique and prefixed ($db)" eval '[[ "$db" == tft_lib_child_* ]]'
    check "topic name is unique and prefixed ($topic)" eval '[[ "$topic" == tft.libchild.* ]]'
    check "the test's own EXIT trap ran (status $status)" [ -f "$W/trap.s$status" ]
    check "database $db dropped at exit" not db_exists "$db"
    check "topic $topic deleted at exit" [ -z "$(topic_partitions "$topic")" ]
done

# Two names from the same test differ.
a="$(tf_topic same)"
b="$(tf_topic same)"
check "two tf_topic names differ" [ "$a" != "$b" ]

# TF_KEEP=1 keeps both; we then remove them ourselves.
TF_KEEP=1 bash "$W/child.sh" keep 0 2>/dev/null
read -r db topic <"$W/names.keep"
check "TF_KEEP=1 keeps the database" db_exists "$db"
check "TF_KEEP=1 keeps the topic with its 4 partitions" [ "$(topic_partitions "$topic")" = 4 ]
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
"$TF_BUILD_DIR/tests/tf_admin" delete-topic "$topic"

# Without a stack: exit 1 and say what is missing, quickly.
out="$W/nostack"
rc=0
(unset TRADEFLOW_BROKERS; . "$LIB"; tf_require_stack) >"$out" 2>&1 || rc=$?
check "no TRADEFLOW_BROKERS: exit 1" [ "$rc" = 1 ]
check "no TRADEFLOW_BROKERS: says so" grep -q "TRADEFLOW_BROKERS is not set" "$out"
rc=0
(TRADEFLOW_BROKERS=127.0.0.1:1; . "$LIB"; tf_require_stack) >"$out" 2>&1 || rc=$?
check "dead broker: exit 1 naming Kafka" eval '[ "$rc" = 1 ] && grep -q "Kafka at 127.0.0.1:1 does not answer" "$out"'
rc=0
(PGPORT=1; . "$LIB"; tf_require_stack) >"$out" 2>&1 || rc=$?
check "dead PostgreSQL: exit 1 naming it" eval '[ "$rc" = 1 ] && grep -q "PostgreSQL at .*:1 .*does not answer" "$out"'

# tf_bin fails for a program that is not built.
rc=0
(. "$LIB"; tf_bin no-such-program) >"$out" 2>&1 || rc=$?
check "tf_bin of a missing program fails" [ "$rc" = 1 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
