#!/usr/bin/env bash
# Checks tests/integration/lib.sh on the real stack: unique databases and
# topics and their removal at exit, the clean-up registry (tf_on_exit: last
# first, every command run even when one fails, the exit status kept, also
# on SIGTERM; background jobs killed), TF_KEEP=1, the guard against a test's
# own EXIT trap, tf_fail/tf_expect/tf_check/tf_report, trap left a builtin,
# and a loud failure (exit 1, clear message) without a stack.
set -euo pipefail
LIB="$(cd "$(dirname "$0")" && pwd)/lib.sh"
. "$LIB"
tf_require_stack
check() { tf_check "$@"; }
not() { ! "$@"; }
db_exists() { [ "$(psql -X -d postgres -tAc "SELECT count(*) FROM pg_database WHERE datname='$1'")" = 1 ]; }
# Lists all topics: asking for one topic by name would make the broker
# auto-create it (auto.create.topics.enable stays true in the stack).
topic_partitions() {
    kcat -L -b "$TRADEFLOW_BROKERS" -m 10 2>/dev/null |
        sed -n "s/.*topic \"$1\" with \([0-9]*\) partitions.*/\1/p"
}
tf_new_workdir W

check "trap is bash's builtin (lib.sh does not override it)" [ "$(type -t trap)" = builtin ]

# A child test: makes a database and a topic and a work directory, registers
# three clean-up commands (the second fails) and a background job, writes
# the names for us, then ends as asked: exit N, or SIGTERM to itself.
cat >"$W/child.sh" <<CHILD
set -euo pipefail
. "$LIB"
tf_require_stack
tf_new_db lib_child
T="\$(tf_topic libchild)"
tf_create_topic "\$T" 4
tf_new_workdir CW
tf_on_exit "echo one >>'$W/order.\$1'"
tf_on_exit "false"
tf_on_exit "echo three >>'$W/order.\$1'"
sleep 300 &
echo "\$PGDATABASE \$T \$CW \$!" >"$W/names.\$1"
psql -X -q -c "CREATE TABLE t (x int)"
if [ "\$2" = TERM ]; then kill -TERM \$\$; sleep 5; fi
exit "\$2"
CHILD

for status in 0 3 TERM; do
    rc=0
    bash "$W/child.sh" "s$status" "$status" || rc=$?
    read -r db topic cw job <"$W/names.s$status"
    want="$status"
    [ "$status" = TERM ] && want=143
    check "child exit status $want kept" [ "$rc" = "$want" ]
    check "database name is unique and prefixed ($db)" eval '[[ "$db" == tft_lib_child_* ]]'
    check "topic name is unique and prefixed ($topic)" eval '[[ "$topic" == tft.libchild.* ]]'
    check "tf_on_exit commands ran last first, past a failing one ($status)" \
        [ "$(tr '\n' ' ' <"$W/order.s$status" 2>/dev/null)" = "three one " ]
    check "the background job was killed ($status)" not kill -0 "$job" 2>/dev/null
    check "the work directory was removed ($status)" [ ! -e "$cw" ]
    check "database $db dropped at exit" not db_exists "$db"
    check "topic $topic deleted at exit" [ -z "$(topic_partitions "$topic")" ]
done

# A test that sets its own EXIT trap is stopped at its next tf_* call that
# checks, with a message saying what to use instead.
cat >"$W/trapper.sh" <<TRAPPER
set -euo pipefail
. "$LIB"
trap 'echo own' EXIT # lint: ok (this child must be caught by lib.sh's guard)
tf_on_exit 'true'
echo "not reached"
TRAPPER
rc=0
bash "$W/trapper.sh" >"$W/trapper.out" 2>&1 || rc=$?
check "own EXIT trap: exit 1" [ "$rc" = 1 ]
check "own EXIT trap: says to use tf_on_exit" grep -q "use tf_on_exit CMD instead of trap" "$W/trapper.out"
check "own EXIT trap: stops the test" not grep -q "not reached" "$W/trapper.out"

# An EXIT trap set before lib.sh is sourced is kept, and runs last.
cat >"$W/pretrap.sh" <<PRETRAP
trap "echo pre >>'$W/pretrap.order'" EXIT # lint: ok (set before lib.sh on purpose)
. "$LIB"
tf_on_exit "echo post >>'$W/pretrap.order'"
exit 5
PRETRAP
rc=0
bash "$W/pretrap.sh" >/dev/null 2>&1 || rc=$?
check "an EXIT trap set before lib.sh: kept, run last, status kept" \
    eval '[ "$rc" = 5 ] && [ "$(tr "\n" " " <"$W/pretrap.order")" = "post pre " ]'

# The checks themselves.
out="$W/checks"
rc=0
(tf_fail "some reason") >"$out" 2>&1 || rc=$?
check "tf_fail: exit 1 with 'FAIL: reason'" eval '[ "$rc" = 1 ] && grep -qx "FAIL: some reason" "$out"'
rc=0
(tf_expect "x" 1 2) >"$out" 2>&1 || rc=$?
check "tf_expect of different values: exit 1, both shown" eval '[ "$rc" = 1 ] && grep -q "x: got .1., expected .2." "$out"'
rc=0
(tf_expect "x" 2 2) >"$out" 2>&1 || rc=$?
check "tf_expect of equal values: ok" eval '[ "$rc" = 0 ] && grep -q "ok: x = 2" "$out"'
rc=0
(tf_expect "missing argument" 2) >"$out" 2>&1 || rc=$?
check "tf_expect with a missing argument fails" [ "$rc" = 1 ]
rc=0
(_tf_passed=0 _tf_failed=0; tf_check "a failing check" false; tf_check "a passing check" true; tf_report) >"$out" 2>&1 || rc=$?
check "tf_report after a failed soft check: status 1, '1 passed, 1 failed'" \
    eval '[ "$rc" = 1 ] && grep -q "^1 passed, 1 failed$" "$out"'
rc=0
(_tf_passed=0 _tf_failed=0; tf_report) >"$out" 2>&1 || rc=$?
check "tf_report with no check at all: status 1" eval '[ "$rc" = 1 ] && grep -q "no check ran" "$out"'
rc=0
(tf_check_eq "eq" a b) >"$out" 2>&1 || rc=$?
check "tf_check_eq of different values says FAIL but goes on" eval '[ "$rc" = 0 ] && grep -q "FAIL eq: got \[a\], want \[b\]" "$out"'

# Two names from the same test differ.
a="$(tf_topic same)"
b="$(tf_topic same)"
check "two tf_topic names differ" [ "$a" != "$b" ]

# TF_KEEP=1 keeps all three; we then remove them ourselves.
TF_KEEP=1 bash "$W/child.sh" keep 0 2>/dev/null
read -r db topic cw job <"$W/names.keep"
check "TF_KEEP=1 keeps the database" db_exists "$db"
check "TF_KEEP=1 keeps the topic with its 4 partitions" [ "$(topic_partitions "$topic")" = 4 ]
check "TF_KEEP=1 keeps the work directory" [ -d "$cw" ]
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
"$TF_BUILD_DIR/tests/tf_admin" delete-topic "$topic"
rm -rf "$cw"

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

tf_report
