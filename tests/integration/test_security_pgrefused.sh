#!/usr/bin/env bash
# Issue 14 item 4: a wrong PostgreSQL password is a configuration error, not
# an outage: tradeflow-aggregate, -relay, -alerts and -report exit 77
# (EX_NOPERM) at once with PostgreSQL's reason (before issue 14 the relay
# retried it for ever). A generous bound (`timeout 60`) turns a program that
# retries into a failure (124) without timing anything.
#
# Private stack: deploy/stack.sh up --secure (SCRAM passwords for PostgreSQL).
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/sec_lib.sh"

sec_stack_up
W="$SEC_W"
tf_new_db pgrefused
TC="$(tf_topic pgrefused)"
"$(tf_bin tradeflow-aggregate)" migrate >"$W/migrate.log" 2>&1 || fail "migrate"
APP="host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=$TRADEFLOW_PG_APP_USER sslmode=require"
BADPW="wrong-$RANDOM-$RANDOM"
failed=0 passed=0
for p in aggregate relay alerts report; do
    case $p in
    aggregate) args=(--exit-at-end -t "$TC" -b "$TRADEFLOW_BROKERS") ;;
    relay) args=(--exit-when-idle -t "$TC.alerts" -b "$TRADEFLOW_BROKERS") ;;
    *) args=(--reporter CHN) ;;
    esac
    rc=0
    env PGPASSWORD="$BADPW" timeout -k 5 60 "$(tf_bin "tradeflow-$p")" --pg "$APP" "${args[@]}" \
        >"$W/$p.log" 2>&1 </dev/null || rc=$?
    if [ "$rc" != 77 ]; then
        echo "FAIL: tradeflow-$p: exit $rc with a wrong PostgreSQL password, expected 77" >&2
        cat "$W/$p.log" >&2
        failed=$((failed + 1))
    elif ! grep -q 'PostgreSQL refused the connection: .*password authentication failed' "$W/$p.log"; then
        echo "FAIL: tradeflow-$p: no clear reason in its log" >&2
        failed=$((failed + 1))
    elif grep -q -- "$BADPW" "$W/$p.log"; then
        echo "FAIL: tradeflow-$p printed the password" >&2
        failed=$((failed + 1))
    else
        echo "ok: tradeflow-$p: exit 77, 'password authentication failed'"
        passed=$((passed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
