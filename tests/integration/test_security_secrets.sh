#!/usr/bin/env bash
# No password ever appears in any output (issue 7, item 4): every program is
# run with passwords given through -X, -F, a configuration file (-c), the
# environment (PGPASSWORD, TRADEFLOW_PG), a conninfo and a URI, at
# --log-level debug, through successes and failures (wrong broker, wrong
# SCRAM password, wrong PostgreSQL password, unreachable registry), plus
# --help, --help-config, --print-config, -X list, librdkafka's own debug=all
# and the consumer's HTTP endpoints (/metrics, /healthz, /readyz); stdout and
# stderr of each run are searched for every password used. A control file
# holding the password proves the search finds one.
#
# Runs on a private stack started with `deploy/stack.sh up --secure`, so the
# real passwords are exercised on successful connections too.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/sec_lib.sh"

sec_stack_up
W="$SEC_W"
O="$W/out"
mkdir -p "$O"
D="$TF_SOURCE_DIR/tests/integration/agg"
PRODUCE="$(tf_bin tradeflow-produce)"
AGG="$(tf_bin tradeflow-aggregate)"
RELAY="$(tf_bin tradeflow-relay)"
ALERTS="$(tf_bin tradeflow-alerts)"
REPORT="$(tf_bin tradeflow-report)"
tf_new_db secrets
TC="$(tf_topic secrets)"
TA="$(tf_topic secalerts)"

SCRAM_PW="$(cat "$TRADEFLOW_SCRAM_PASSWORD_FILE")"
PG_PW="$(cat "$TRADEFLOW_PG_PASSWORD_FILE")"
# Wrong passwords are secrets too: a typo of the real one must not be shown.
BAD_SCRAM="WrongScram${RANDOM}x${RANDOM}"
BAD_PG="WrongPg${RANDOM}x${RANDOM}"
REG_PW="RegistryPw${RANDOM}x${RANDOM}"
SECRETS=("$SCRAM_PW" "$PG_PW" "$BAD_SCRAM" "$BAD_PG" "$REG_PW")
for s in "${SECRETS[@]}"; do [ "${#s}" -ge 12 ] || fail "secret too short to search for"; done

H="host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE"
APP="$H user=$TRADEFLOW_PG_APP_USER sslmode=require sslrootcert=$TRADEFLOW_CA"
KS=(-b "$TRADEFLOW_SASL_SSL_BROKERS" -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512
    -X sasl.username="$TRADEFLOW_SCRAM_USER" -X ssl.ca.location="$TRADEFLOW_CA")
KP=(-b "$TRADEFLOW_SASL_BROKERS" -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-512
    -X sasl.username="$TRADEFLOW_SCRAM_USER")

# A configuration file for tradeflow-aggregate with both passwords in it.
# (Its brokers line yields to $TRADEFLOW_BROKERS, the PLAINTEXT listener:
# the runs that use it unset that variable.)
(
    umask 077
    cat >"$W/agg.conf" <<CONF
brokers = $TRADEFLOW_SASL_SSL_BROKERS
kafka.security.protocol = SASL_SSL
kafka.sasl.mechanisms = SCRAM-SHA-512
kafka.sasl.username = $TRADEFLOW_SCRAM_USER
kafka.sasl.password = $SCRAM_PW
kafka.ssl.ca.location = $TRADEFLOW_CA
pg = $APP
pg.password = $PG_PW
registry.user = someone:$REG_PW
CONF
    sed "s/^kafka.sasl.password = .*/kafka.sasl.password = $BAD_SCRAM/; s/^pg.password = .*/pg.password = $BAD_PG/" \
        "$W/agg.conf" >"$W/agg-wrong.conf"
    sed '/^registry/d' "$W/agg.conf" >"$W/agg-ok.conf"
    cp "$W/agg-ok.conf" "$W/agg-sasl.conf"
)

# The wrong-password runs use the SASL listeners (KS_SASL, KP_SASL,
# agg-sasl.conf). With a librdkafka before 2.6.1 against Kafka 4.x
# (sec_scram_broken) no SCRAM login can succeed, whatever the password: then
# the runs that must succeed go over SSL, with every SASL setting and the
# real password still given (librdkafka parses, keeps and masks them, and
# only warns that SSL does not use them), so their output is searched all
# the same.
KS_SASL=("${KS[@]}")
KP_SASL=("${KP[@]}")
PROPS_OK_SSL="$TRADEFLOW_KAFKA_SASL_SSL_PROPS"
PROPS_OK_PLAIN="$TRADEFLOW_KAFKA_SASL_PLAINTEXT_PROPS"
if sec_scram_broken; then
    echo "librdkafka before 2.6.1 against Kafka 4.x: the runs that must succeed use SSL"
    KS=(-b "$TRADEFLOW_SSL_BROKERS" -X security.protocol=SSL -X sasl.mechanisms=SCRAM-SHA-512
        -X sasl.username="$TRADEFLOW_SCRAM_USER" -X ssl.ca.location="$TRADEFLOW_CA")
    KP=("${KS[@]}")
    sed -i "s|^brokers = .*|brokers = $TRADEFLOW_SSL_BROKERS|; s|^kafka.security.protocol = .*|kafka.security.protocol = SSL|" \
        "$W/agg.conf" "$W/agg-wrong.conf" "$W/agg-ok.conf"
    (
        umask 077
        sed "s|^bootstrap.servers=.*|bootstrap.servers=$TRADEFLOW_SSL_BROKERS|; s|^security.protocol=.*|security.protocol=SSL|" \
            "$TRADEFLOW_KAFKA_SASL_SSL_PROPS" >"$W/kafka-ssl-sasl.properties"
    )
    PROPS_OK_SSL="$W/kafka-ssl-sasl.properties"
    PROPS_OK_PLAIN="$W/kafka-ssl-sasl.properties"
fi

# run CASE SECONDS CMD...: CMD's stdout and stderr into $O/CASE.log, its exit
# status into $O/CASE.rc (124: stopped by the bound, for programs that retry
# forever).
run() {
    local c="$1" secs="$2" rc=0
    shift 2
    timeout -k 2 "$secs" "$@" >"$O/$c.log" 2>&1 </dev/null || rc=$?
    echo "$rc" >"$O/$c.rc"
}
rc_of() { cat "$O/$1.rc"; }
must_succeed() {
    local c
    for c in "$@"; do
        [ "$(rc_of "$c")" = 0 ] || { tail -20 "$O/$c.log" >&2; fail "case $c exited $(rc_of "$c"), expected 0"; }
    done
}
must_fail() {
    local c
    for c in "$@"; do
        [ "$(rc_of "$c")" != 0 ] || { tail -20 "$O/$c.log" >&2; fail "case $c succeeded, expected a failure"; }
    done
}

# ------------------------------------------------- successful runs (in order)
run p_ok_x "$(tf_timeout 60)" "$PRODUCE" --kind customs --topic "$TC" --partitions 3 --log-level debug \
    "${KS[@]}" -X sasl.password="$SCRAM_PW" "$D/semantics1.csv"
run p_ok_f "$(tf_timeout 60)" "$PRODUCE" --kind customs --topic "$TC" --log-level debug \
    -F "$PROPS_OK_SSL" "$D/semantics2.csv"
must_succeed p_ok_x p_ok_f
"$AGG" migrate --pg "$H user=tradeflow" >"$O/migrate.log" 2>&1 || fail "migrate"
run a_ok_conf "$(tf_timeout 90)" env -u TRADEFLOW_BROKERS "$AGG" -c "$W/agg-ok.conf" \
    --no-migrate --exit-at-end -g "g-$TC" -t "$TC" \
    --dlq-topic "$TC.dlq" --log-level debug
must_succeed a_ok_conf
expect "records consumed" "$(q "select count(*) from tradeflow.consumer_offsets where group_id = 'g-$TC'")" 3
run r_ok "$(tf_timeout 60)" env PGPASSWORD="$PG_PW" "$RELAY" --exit-when-idle -t "$TA" --pg "$APP" \
    --log-level debug -F "$PROPS_OK_PLAIN"
run al_ok "$(tf_timeout 30)" env PGPASSWORD="$PG_PW" "$ALERTS" --since 2000-01 --no-follow --pg "$APP" \
    --log-level debug
run rp_ok "$(tf_timeout 30)" "$REPORT" --reporter CHN --format text --out - --log-level debug \
    --pg "$APP password=$PG_PW"
must_succeed r_ok al_ok rp_ok
grep -q "published" "$O/r_ok.log" || { tail "$O/r_ok.log" >&2; fail "the relay published nothing"; }

# The HTTP endpoints of a running consumer (/metrics, /healthz, /readyz).
MPORT="$("$TF_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
env -u TRADEFLOW_BROKERS "$AGG" -c "$W/agg-ok.conf" --no-migrate -g "gm-$TC" -t "$TC" \
    --metrics-addr "127.0.0.1:$MPORT" --log-level debug >"$O/a_metrics.log" 2>&1 </dev/null &
mpid=$!
for i in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$MPORT/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
for path in metrics healthz readyz; do
    curl -s "http://127.0.0.1:$MPORT/$path" >>"$O/a_metrics_http.log" 2>&1 || true
done
kill -TERM "$mpid" 2>/dev/null || true
rc=0
wait "$mpid" || rc=$?
echo "$rc" >"$O/a_metrics.rc"
grep -q '^tradeflow_' "$O/a_metrics_http.log" || fail "no metrics read from the running consumer"
must_succeed a_metrics
echo 0 >"$O/a_metrics_http.rc"

# ------------------------------------------------- help, dumps, failures
# All at once: most of them wait for a timeout.
run p_help 10 "$PRODUCE" -X sasl.password="$SCRAM_PW" --help
run p_list 10 "$PRODUCE" -X sasl.password="$SCRAM_PW" -X list
run p_badprop 10 "$PRODUCE" --kind customs -X sasl.password="$SCRAM_PW" -X no.such.property=1 "$D/semantics1.csv"
run a_help 10 "$AGG" -X sasl.password="$SCRAM_PW" --pg "$APP password=$PG_PW" --help
run a_print_x 10 "$AGG" --print-config -X sasl.password="$SCRAM_PW" --pg "$APP password=$PG_PW" \
    --registry-user "u:$REG_PW"
run a_print_c 10 "$AGG" -c "$W/agg.conf" --print-config
run a_print_uri 10 env TRADEFLOW_PG="postgresql://u:$PG_PW@127.0.0.1:$PGPORT/x" "$AGG" --print-config
run a_print_env 10 env TRADEFLOW_PG="$APP password=$PG_PW" PGPASSWORD="$PG_PW" "$AGG" --print-config
run a_help_config 10 "$AGG" -c "$W/agg.conf" --help-config
run a_version 10 "$AGG" -c "$W/agg.conf" --version
run a_badkey 10 env -u TRADEFLOW_BROKERS "$AGG" -c "$W/agg.conf" -X sasl.password="$SCRAM_PW" \
    -X no.such.property=1 --no-migrate
run r_help 10 "$RELAY" --pg "$APP password=$PG_PW" -X sasl.password="$SCRAM_PW" --help
run al_help 10 "$ALERTS" --pg "$APP password=$PG_PW" --help
run rp_help 10 "$REPORT" --pg "$APP password=$PG_PW" --help
# Wrong SCRAM password, wrong broker, librdkafka debug=all.
run p_bad_scram 60 "$PRODUCE" --kind customs --topic "$TC" --log-level debug "${KS_SASL[@]}" \
    -X sasl.password="$BAD_SCRAM" "$D/semantics1.csv" &
run p_bad_broker 60 "$PRODUCE" --kind customs --topic "$TC" --log-level debug "${KS[@]}" \
    -b 127.0.0.1:1 -X sasl.password="$SCRAM_PW" "$D/semantics1.csv" &
run p_debug_all 60 "$PRODUCE" --kind customs --topic "$TC" --log-level debug "${KS[@]}" \
    -X sasl.password="$SCRAM_PW" -X debug=all "$D/semantics3.csv" &
run a_bad_scram 12 env -u TRADEFLOW_BROKERS "$AGG" -c "$W/agg-sasl.conf" -X sasl.password="$BAD_SCRAM" \
    --no-migrate -g "g2-$TC" -t "$TC" --log-level debug &
run a_bad_scram_x 12 env PGPASSWORD="$PG_PW" "$AGG" --no-migrate -g "g3-$TC" -t "$TC" "${KP_SASL[@]}" -X sasl.password="$BAD_SCRAM" \
    --pg "$APP" --log-level debug &
run a_bad_broker 12 env PGPASSWORD="$PG_PW" "$AGG" --no-migrate -g "g4-$TC" -t "$TC" "${KP[@]}" \
    -b 127.0.0.1:1 -X sasl.password="$SCRAM_PW" --pg "$APP" --log-level debug &
run a_bad_pg 30 env PGPASSWORD="$BAD_PG" "$AGG" --no-migrate -g "g5-$TC" -t "$TC" "${KP[@]}" \
    -X sasl.password="$SCRAM_PW" --pg "$APP" --log-level debug &
run a_bad_pg_conf 30 env -u TRADEFLOW_BROKERS "$AGG" -c "$W/agg-wrong.conf" --no-migrate -g "g6-$TC" -t "$TC" --log-level debug &
run a_bad_pg_uri 30 "$AGG" --no-migrate -g "g7-$TC" -t "$TC" "${KP[@]}" -X sasl.password="$SCRAM_PW" \
    --pg "postgresql://$TRADEFLOW_PG_APP_USER:$BAD_PG@127.0.0.1:$PGPORT/$PGDATABASE?sslmode=require" \
    --log-level debug &
run a_debug_all 12 env PGPASSWORD="$PG_PW" "$AGG" --no-migrate -g "g8-$TC" -t "$TC" "${KP[@]}" \
    -X sasl.password="$SCRAM_PW" -X debug=all --pg "$APP" --log-level debug &
run a_bad_registry 30 env PGPASSWORD="$PG_PW" "$AGG" --no-migrate -g "g9-$TC" -t "$TC" "${KP[@]}" \
    -X sasl.password="$SCRAM_PW" --pg "$APP" --registry-url http://127.0.0.1:1 \
    --registry-user "u:$REG_PW" --log-level debug &
run r_bad_scram 12 env PGPASSWORD="$PG_PW" "$RELAY" -t "$TA.x" --pg "$APP" "${KP_SASL[@]}" \
    -X sasl.password="$BAD_SCRAM" --log-level debug &
run r_bad_pg 12 env PGPASSWORD="$BAD_PG" "$RELAY" -t "$TA.y" --pg "$APP" "${KP[@]}" \
    -X sasl.password="$SCRAM_PW" --log-level debug &
run al_bad_pg 30 env PGPASSWORD="$BAD_PG" "$ALERTS" --since 2000-01 --no-follow --pg "$APP" --log-level debug &
run al_bad_uri 30 "$ALERTS" --since 2000-01 --no-follow --log-level debug \
    --pg "postgresql://$TRADEFLOW_PG_APP_USER:$BAD_PG@127.0.0.1:$PGPORT/$PGDATABASE?sslmode=require" &
run rp_bad_pg 30 "$REPORT" --reporter CHN --format text --out - --log-level debug \
    --pg "$APP password=$BAD_PG" &
run rp_bad_host 30 env PGPASSWORD="$PG_PW" "$REPORT" --reporter CHN --format text --out - \
    --log-level debug --pg "host=127.0.0.1 port=1 user=x password=$PG_PW connect_timeout=3" &
wait
must_succeed p_help p_list a_help a_help_config a_version a_print_x a_print_c a_print_uri a_print_env r_help al_help rp_help
must_fail p_badprop a_badkey p_bad_scram p_bad_broker a_bad_scram a_bad_scram_x a_bad_broker \
    a_bad_pg a_bad_pg_conf a_bad_pg_uri r_bad_scram r_bad_pg al_bad_pg al_bad_uri rp_bad_pg rp_bad_host
# The failures failed for the intended reason (so the secret was in play).
grep -q "invalid credentials" "$O/p_bad_scram.log" || fail "p_bad_scram: no SASL error"
grep -q "invalid credentials" "$O/a_bad_scram_x.log" || fail "a_bad_scram_x: no SASL error"
grep -q "invalid credentials" "$O/a_bad_scram.log" || fail "a_bad_scram: no SASL error"
grep -q "invalid credentials" "$O/r_bad_scram.log" || fail "r_bad_scram: no SASL error"
grep -q "password authentication failed" "$O/a_bad_pg_conf.log" || fail "a_bad_pg_conf: no PostgreSQL error"
grep -q "password authentication failed" "$O/al_bad_pg.log" || fail "al_bad_pg: no PostgreSQL error"
grep -q "password authentication failed" "$O/a_bad_pg.log" || fail "a_bad_pg: no PostgreSQL error"
grep -q "password authentication failed" "$O/al_bad_uri.log" || fail "al_bad_uri: no PostgreSQL error"
grep -q "password authentication failed" "$O/rp_bad_pg.log" || fail "rp_bad_pg: no PostgreSQL error"
# --print-config shows that a password is set, masked.
grep -q '^kafka.sasl.password = \*\**' "$O/a_print_x.log" || fail "--print-config does not show the masked sasl.password"
grep -q '^pg.password = \*\**' "$O/a_print_c.log" || fail "--print-config does not show the masked pg.password"
# librdkafka logs debug lines (facility, then "[thrd:...]") only when asked
# (-X debug=...): none by default.
for c in p_ok_x a_ok_conf r_ok p_bad_scram; do
    n="$(grep -cE ' debug \[kafka\] [A-Z_]+: \[thrd:' "$O/$c.log" || true)"
    expect "librdkafka debug lines in $c (no -X debug)" "$n" 0
done
n="$(grep -cE ' debug \[kafka\] [A-Z_]+: \[thrd:' "$O/p_debug_all.log" || true)"
[ "$n" -gt 100 ] || fail "-X debug=all produced only $n librdkafka debug lines: the leak check of that path proves nothing"

# ------------------------------------------------- the search
cp "$TRADEFLOW_SCRAM_PASSWORD_FILE" "$W/control.log"
leaks() { # FILE...: prints "file:line: <secret #i>" for each occurrence
    local i
    for i in "${!SECRETS[@]}"; do
        grep -n -F -- "${SECRETS[$i]}" "$@" 2>/dev/null | sed "s/${SECRETS[$i]}/<secret $i>/g" || true
    done
}
[ -n "$(leaks "$W/control.log")" ] || fail "the search does not find a password in the control file"
ncases=$(find "$O" -name "*.log" | wc -l)
found="$(leaks "$O"/*.log)"
if [ -n "$found" ]; then
    echo "$found" | cut -c1-400 >&2
    fail "a password appears in the output of $(echo "$found" | sed 's|^.*/||; s|\.log:.*||' | sort -u | tr '\n' ' ')"
fi
echo "ok: no password in $ncases outputs ($(cat "$O"/*.log | wc -l) lines)"
echo "1 passed, 0 failed"
