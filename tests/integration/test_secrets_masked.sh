#!/usr/bin/env bash
# Issue 14 item 3: secrets masked wherever a URL or conninfo is printed, and
# --print-config refuses an unknown key exactly as the real run does.
#  1. --print-config of every program with secrets in URL userinfo (registry
#     and PostgreSQL URIs), ?password= in a URI, password= in a conninfo,
#     and secret keys the tables do not know (kafka.ssl.keystore.password,
#     pg.sslpassword, kafka.ssl.key.password): no secret in
#     the output, the masks are there.
#  2. A misspelled secret key (kafka.sasl.pasword) in a -c file: every
#     program's --print-config and its real run exit 64 with the same
#     message, which does not hold the value.
#  3. A failed registry call (producer: registering; aggregator: looking up
#     an unknown schema id) prints the URL with the password masked, on
#     stderr and in the dead letter's reason.
# A control run proves the search finds a secret that is printed.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db secrets_masked
tf_new_workdir W
S="tfS3cr3t$RANDOM$RANDOM" # every secret below contains this
PROGS=(produce aggregate relay alerts report)
leaks() { grep -l -- "$S" "$@" 2>/dev/null || true; }

# Control: the search finds a printed secret.
echo "x$S-control" >"$W/control.txt"
[ -n "$(leaks "$W/control.txt")" ] || fail "the search does not find a secret"

# ---- 1. --print-config ------------------------------------------------------
cat >"$W/secrets.conf" <<CONF
kafka.ssl.keystore.password = ks-$S
kafka.ssl.key.password = kp-$S
pg.sslpassword = sp-$S
CONF
for p in "${PROGS[@]}"; do
    args=(-c "$W/secrets.conf" --print-config)
    case $p in produce | aggregate | relay) args+=(--registry-url "http://reg:r1-$S@127.0.0.1:1/") ;; esac
    case $p in
    produce) ;;
    *) args+=(--pg "postgresql://app:p1-$S@127.0.0.1:$PGPORT/$PGDATABASE?password=p2-$S&sslmode=disable") ;;
    esac
    "$(tf_bin "tradeflow-$p")" "${args[@]}" >"$W/print-$p.out" 2>"$W/print-$p.err" ||
        fail "tradeflow-$p --print-config exited $?: $(cat "$W/print-$p.err")"
    [ -z "$(leaks "$W/print-$p.out" "$W/print-$p.err")" ] ||
        fail "tradeflow-$p --print-config shows a secret: $(grep -- "$S" "$W/print-$p.out")"
    grep -q '^kafka.ssl.keystore.password = \*\*\*\*\*\*\*\*' "$W/print-$p.out" || fail "$p: keystore password not masked"
    grep -q '^pg.sslpassword = \*\*\*\*\*\*\*\*' "$W/print-$p.out" || fail "$p: pg.sslpassword not masked"
    case $p in produce | aggregate | relay)
        grep -q '^registry.url = http://reg:\*\*\*\*\*\*\*\*@127.0.0.1:1/' "$W/print-$p.out" ||
            fail "$p: registry URL not shown masked: $(grep registry.url "$W/print-$p.out")" ;;
    esac
    case $p in produce) ;; *)
        grep -q "^pg = postgresql://app:\*\*\*\*\*\*\*\*@127.0.0.1:$PGPORT/$PGDATABASE?password=\*\*\*\*\*\*\*\*&sslmode=disable" \
            "$W/print-$p.out" || fail "$p: pg URI not shown masked: $(grep '^pg =' "$W/print-$p.out")" ;;
    esac
    echo "ok: tradeflow-$p --print-config: every secret masked"
done
# A conninfo with password= (tradeflow-report).
"$(tf_bin tradeflow-report)" --print-config --pg "host=127.0.0.1 password=c-$S user=app" \
    >"$W/conninfo.out" 2>&1 || fail "report --print-config (conninfo)"
[ -z "$(leaks "$W/conninfo.out")" ] || fail "conninfo password shown: $(cat "$W/conninfo.out")"
grep -q "^pg = host=127.0.0.1 password=\*\*\*\*\*\*\*\* user=app" "$W/conninfo.out" || fail "conninfo not masked"
echo "ok: password= in a conninfo masked"

# ---- 2. a misspelled secret key ----------------------------------------------
printf 'kafka.sasl.pasword = typo-%s\n' "$S" >"$W/typo.conf"
for p in "${PROGS[@]}"; do
    B="$(tf_bin "tradeflow-$p")"
    rc1=0 rc2=0
    "$B" -c "$W/typo.conf" --print-config >"$W/typo-$p.print" 2>&1 || rc1=$?
    case $p in
    produce) run=("$B" -c "$W/typo.conf" --kind customs -t x "$TF_SOURCE_DIR/tests/integration/agg/semantics1.csv") ;;
    aggregate) run=("$B" -c "$W/typo.conf" --exit-at-end) ;;
    relay) run=("$B" -c "$W/typo.conf" --exit-when-idle) ;;
    *) run=("$B" -c "$W/typo.conf" --reporter CHN) ;;
    esac
    timeout 60 "${run[@]}" >"$W/typo-$p.run" 2>&1 </dev/null || rc2=$?
    expect "tradeflow-$p --print-config with kafka.sasl.pasword: exit" "$rc1" 64
    expect "tradeflow-$p real run with kafka.sasl.pasword: exit" "$rc2" 64
    grep -q 'kafka.sasl.pasword: No such configuration property' "$W/typo-$p.print" ||
        fail "$p: no clear message: $(cat "$W/typo-$p.print")"
    cmp -s "$W/typo-$p.print" "$W/typo-$p.run" ||
        fail "$p: --print-config and the run say different things: $(cat "$W/typo-$p.print" "$W/typo-$p.run")"
    [ -z "$(leaks "$W/typo-$p.print" "$W/typo-$p.run")" ] || fail "$p: the misspelled key's value shown"
done
echo "ok: a misspelled key is refused alike by --print-config and the run, value not shown"
printf 'pg.pasword = typo-%s\n' "$S" >"$W/pgtypo.conf"
for p in aggregate relay alerts report; do
    B="$(tf_bin "tradeflow-$p")"
    rc1=0 rc2=0
    "$B" -c "$W/pgtypo.conf" --print-config >"$W/pgtypo-$p.print" 2>&1 || rc1=$?
    case $p in
    aggregate) run=("$B" -c "$W/pgtypo.conf" --exit-at-end) ;;
    relay) run=("$B" -c "$W/pgtypo.conf" --exit-when-idle) ;;
    *) run=("$B" -c "$W/pgtypo.conf" --reporter CHN) ;;
    esac
    timeout 60 "${run[@]}" >"$W/pgtypo-$p.run" 2>&1 </dev/null || rc2=$?
    expect "tradeflow-$p with pg.pasword: --print-config and run exit" "$rc1 $rc2" "64 64"
    grep -q 'invalid connection option "pasword"' "$W/pgtypo-$p.print" ||
        fail "$p: no clear message: $(cat "$W/pgtypo-$p.print")"
    cmp -s "$W/pgtypo-$p.print" "$W/pgtypo-$p.run" || fail "$p: --print-config and the run differ"
    [ -z "$(leaks "$W/pgtypo-$p.print" "$W/pgtypo-$p.run")" ] || fail "$p: pg.pasword's value shown"
done
echo "ok: a misspelled pg.* key likewise (libpq's parser)"

# ---- 3. failed registry calls -----------------------------------------------
T="$(tf_topic secrets_masked)"
DLQ="$(tf_topic secrets_masked_dlq)"
tf_create_topic "$T" 1
rc=0
timeout 60 "$(tf_bin tradeflow-produce)" --kind customs -t "$T" \
    --registry-url "http://reg:r2-$S@127.0.0.1:1" \
    "$TF_SOURCE_DIR/tests/integration/agg/semantics1.csv" >"$W/reg-produce.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "produce with an unreachable registry exited 0"
[ -z "$(leaks "$W/reg-produce.log")" ] || fail "produce shows the registry password: $(grep -- "$S" "$W/reg-produce.log")"
grep -q 'http://reg:\*\*\*\*\*\*\*\*@127.0.0.1:1' "$W/reg-produce.log" ||
    fail "produce's registry error does not show the masked URL: $(cat "$W/reg-produce.log")"
echo "ok: produce: failed registry call, URL shown masked (exit $rc)"
# A registry-framed message with an unknown schema id, for the aggregator.
"$TF_PYTHON" -c "import sys; sys.stdout.buffer.write(bytes.fromhex('0000000007020a'))" >"$W/reg.bin"
kcat -P -b "$TRADEFLOW_BROKERS" -t "$T" -p 0 -k "CHN|USA" "$W/reg.bin" || fail "kcat"
timeout 120 "$(tf_bin tradeflow-aggregate)" --exit-at-end -g "g-$T" -t "$T" --dlq-topic "$DLQ" \
    --registry-url "http://reg:r3-$S@127.0.0.1:1" --log-level debug >"$W/reg-agg.log" 2>&1 ||
    fail "aggregate exited $?: $(tail -5 "$W/reg-agg.log")"
kcat -C -b "$TRADEFLOW_BROKERS" -t "$DLQ" -e -q -f '%h\n' >"$W/reg-dlq.txt"
[ -z "$(leaks "$W/reg-agg.log" "$W/reg-dlq.txt")" ] ||
    fail "aggregate shows the registry password: $(grep -h -- "$S" "$W/reg-agg.log" "$W/reg-dlq.txt" | head -3)"
grep -q 'unknown schema id 7: registry GET http://reg:\*\*\*\*\*\*\*\*@127.0.0.1:1/schemas/ids/7' "$W/reg-dlq.txt" ||
    fail "the dead letter's reason does not show the masked URL: $(cat "$W/reg-dlq.txt")"
echo "ok: aggregate: failed registry lookup, URL masked in the log and the dead letter"
echo "1 passed, 0 failed"
