#!/usr/bin/env bash
# Kafka over SASL/SCRAM and over TLS, PostgreSQL over TLS (issue 7, item 4),
# on a private stack started with `deploy/stack.sh up --secure`:
#   1. customs files published over SASL_SSL, SSL (TLS only) and
#      SASL_PLAINTEXT, consumed over SASL_PLAINTEXT into PostgreSQL over
#      TLS (sslmode=verify-full) as the password role tradeflow_app; the
#      reporting views equal the oracle's truth, and the server saw every
#      connection of that role over TLS;
#   2. refusals: a wrong SCRAM password (a clear error and a non-zero exit
#      within a bounded time), a client without the CA (TLS verification
#      fails, for Kafka and for PostgreSQL), the role over a plain
#      connection, and sslmode=require against a server with ssl=off.
# With a librdkafka before 2.6.1 against Kafka 4.x (sec_scram_broken: Debian
# 12's 2.0.2 on the default stack), SCRAM cannot work whatever the password:
# then the SASL runs of step 1 must fail with the programs' explanation, and
# the same files go over SSL instead, so that the rest is checked unchanged.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/sec_lib.sh"

sec_stack_up
W="$SEC_W"
D="$TF_SOURCE_DIR/tests/integration/agg"
PRODUCE="$(tf_bin tradeflow-produce)"
AGG="$(tf_bin tradeflow-aggregate)"
REPORT="$(tf_bin tradeflow-report)"
SCRAM_PW="$(cat "$TRADEFLOW_SCRAM_PASSWORD_FILE")"
tf_new_db sec
TC="$(tf_topic sec)"
passed=0
ok() {
    echo "ok: $*"
    passed=$((passed + 1))
}

# ---------------------------------------------------------------- 1. the flow

SSL_X=(-b "$TRADEFLOW_SSL_BROKERS" -X security.protocol=SSL -X ssl.ca.location="$TRADEFLOW_CA")
CONSUME_PROPS="$TRADEFLOW_KAFKA_SASL_PLAINTEXT_PROPS"
if sec_scram_broken; then
    # The right password, refused: the message must say why.
    sec_must_fail_within 60 "$W/scram4.log" "$PRODUCE" --kind customs --topic "$TC" \
        --partitions 3 -F "$TRADEFLOW_KAFKA_SASL_SSL_PROPS" "$D/semantics1.csv"
    grep -q "invalid credentials.*older than 2.6.1.*librdkafka #4895" "$W/scram4.log" ||
        { cat "$W/scram4.log" >&2; fail "SCRAM refused without the librdkafka < 2.6.1 explanation"; }
    ok "SCRAM with the right password against Kafka 4.x refused (librdkafka < 2.6.1): exit $SEC_RC after $SEC_SECS s, with the explanation"
    "$PRODUCE" --kind customs --topic "$TC" --partitions 3 --quiet "${SSL_X[@]}" \
        "$D/semantics1.csv" || fail "produce over SSL failed"
    SASL_X=("${SSL_X[@]}")
    CONSUME_PROPS="$TRADEFLOW_KAFKA_SSL_PROPS"
    via="SSL (SCRAM impossible with this librdkafka against Kafka 4.x)"
else
    # Over SASL_SSL from the stack's properties file (-F).
    "$PRODUCE" --kind customs --topic "$TC" --partitions 3 --quiet \
        -F "$TRADEFLOW_KAFKA_SASL_SSL_PROPS" "$D/semantics1.csv" ||
        fail "produce over SASL_SSL (-F) failed"
    SASL_X=(-b "$TRADEFLOW_SASL_BROKERS" -X security.protocol=SASL_PLAINTEXT
        -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username="$TRADEFLOW_SCRAM_USER"
        -X sasl.password="$SCRAM_PW")
    via="SASL_SSL, SSL and SASL_PLAINTEXT"
fi
# Over SSL only (no SASL), every setting as -X.
"$PRODUCE" --kind customs --topic "$TC" --quiet "${SSL_X[@]}" "$D/semantics2.csv" ||
    fail "produce over SSL failed"
# Over SASL_PLAINTEXT, password as -X.
"$PRODUCE" --kind customs --topic "$TC" --quiet "${SASL_X[@]}" "$D/semantics3.csv" ||
    fail "produce of semantics3.csv ($via) failed"
ok "published over $via"

# The schema is migrated by the administrator; the consumer runs as the
# password role, which may not create anything.
"$AGG" migrate --pg "dbname=$PGDATABASE" >"$W/migrate.log" 2>&1 || {
    cat "$W/migrate.log" >&2
    fail "migration as the administrator failed"
}
APP_PG="host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=$TRADEFLOW_PG_APP_USER sslmode=verify-full sslrootcert=$TRADEFLOW_CA application_name=tf-sec-aggregate"
PGPASSFILE="$TRADEFLOW_PGPASSFILE" aggregate "grp-$TC" "$TC" -- --no-migrate \
    -F "$CONSUME_PROPS" --pg "$APP_PG" --batch-size 7
check_oracle "$W" --customs "$D/semantics1.csv" --customs "$D/semantics2.csv" \
    --customs "$D/semantics3.csv"
ok "consumed over $(sed -n 's/^security.protocol=//p' "$CONSUME_PROPS") into PostgreSQL over TLS as $TRADEFLOW_PG_APP_USER: views equal the oracle"

# The role is an ordinary one, and it stored the group's offsets itself.
expect "pg_roles.rolsuper of $TRADEFLOW_PG_APP_USER" \
    "$(q "select rolsuper from pg_roles where rolname = '$TRADEFLOW_PG_APP_USER'")" "f"
n="$(q "select count(*) from tradeflow.consumer_offsets where group_id = 'grp-$TC'")"
[ "$n" -gt 0 ] || fail "no offsets stored for group grp-$TC"

# Every connection of the role was TLS: log_connections (set by --secure)
# writes "connection authorized: user=tradeflow_app ... SSL enabled".
PGLOG="$TRADEFLOW_STACK_DIR/pg/postgres.log"
n_all="$(grep -c "connection authorized: user=$TRADEFLOW_PG_APP_USER database=$PGDATABASE" "$PGLOG" || true)"
n_ssl="$(grep "connection authorized: user=$TRADEFLOW_PG_APP_USER database=$PGDATABASE" "$PGLOG" | grep -c "SSL enabled" || true)"
[ "$n_all" -ge 1 ] || fail "the server log shows no connection of $TRADEFLOW_PG_APP_USER"
expect "connections of $TRADEFLOW_PG_APP_USER over TLS (of $n_all)" "$n_ssl" "$n_all"
# And a live one, as the server sees it.
s="$(PGPASSFILE="$TRADEFLOW_PGPASSFILE" psql -X -At "$APP_PG" \
    -c "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()")"
case "$s" in t\|TLS*) ok "pg_stat_ssl: $s" ;; *) fail "pg_stat_ssl says '$s'" ;; esac

# ---------------------------------------------------------------- 2. refusals

# Kafka refusals, at once (each waits for the producer's 15 s bound):
# a wrong SCRAM password, no CA, and a CA that did not sign the broker's
# certificate.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout "$W/other.key" -out "$W/other.pem" \
    -subj "/CN=some other CA" >/dev/null 2>&1 || fail "openssl"
(
    sec_must_fail_within 60 "$W/wrongpw.log" "$PRODUCE" --kind customs --topic "$TC" \
        -b "$TRADEFLOW_SASL_SSL_BROKERS" -X security.protocol=SASL_SSL -X ssl.ca.location="$TRADEFLOW_CA" \
        -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username="$TRADEFLOW_SCRAM_USER" \
        -X sasl.password="not-${SCRAM_PW:0:6}" "$D/semantics1.csv"
    echo "exit $SEC_RC after $SEC_SECS s" >"$W/wrongpw.res"
) &
(
    sec_must_fail_within 60 "$W/noca.log" "$PRODUCE" --kind customs --topic "$TC" \
        -b "$TRADEFLOW_SSL_BROKERS" -X security.protocol=SSL "$D/semantics1.csv"
    echo "exit $SEC_RC after $SEC_SECS s" >"$W/noca.res"
) &
(
    sec_must_fail_within 60 "$W/otherca.log" "$PRODUCE" --kind customs --topic "$TC" \
        -b "$TRADEFLOW_SSL_BROKERS" -X security.protocol=SSL -X ssl.ca.location="$W/other.pem" \
        "$D/semantics1.csv"
    echo "exit $SEC_RC after $SEC_SECS s" >"$W/otherca.res"
) &
wait
for c in wrongpw noca otherca; do
    [ -s "$W/$c.res" ] || fail "the $c case did not fail as it should (see above)"
done
grep -q "SASL authentication error.*invalid credentials" "$W/wrongpw.log" ||
    { cat "$W/wrongpw.log" >&2; fail "no clear SASL authentication error"; }
ok "wrong SCRAM password: $(cat "$W/wrongpw.res"), 'SASL authentication error ... invalid credentials'"
grep -q "certificate verify failed" "$W/noca.log" ||
    { cat "$W/noca.log" >&2; fail "no TLS verification error without the CA"; }
ok "Kafka TLS without the CA: $(cat "$W/noca.res"), 'certificate verify failed'"
grep -q "certificate verify failed" "$W/otherca.log" ||
    { cat "$W/otherca.log" >&2; fail "no TLS verification error with another CA"; }
ok "Kafka TLS with another CA: $(cat "$W/otherca.res"), 'certificate verify failed'"

# PostgreSQL: verify-full against another CA fails.
sec_must_fail_within 30 "$W/pgca.log" env PGPASSFILE="$TRADEFLOW_PGPASSFILE" "$REPORT" \
    --reporter CHN --format text --pg "${APP_PG/sslrootcert=$TRADEFLOW_CA/sslrootcert=$W/other.pem}"
grep -q "certificate verify failed" "$W/pgca.log" ||
    { cat "$W/pgca.log" >&2; fail "no TLS verification error from libpq"; }
ok "PostgreSQL verify-full with another CA: 'certificate verify failed'"

# The role may not log in without TLS.
sec_must_fail_within 30 "$W/pgplain.log" env PGPASSFILE="$TRADEFLOW_PGPASSFILE" "$REPORT" \
    --reporter CHN --format text \
    --pg "host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=$TRADEFLOW_PG_APP_USER sslmode=disable"
grep -q "no encryption" "$W/pgplain.log" ||
    { cat "$W/pgplain.log" >&2; fail "a plain connection of the role was not refused by pg_hba"; }
ok "PostgreSQL: $TRADEFLOW_PG_APP_USER without TLS refused"

# The same report over TLS works (the reader side of the same connection).
PGPASSFILE="$TRADEFLOW_PGPASSFILE" "$REPORT" --reporter CHN --format text --out "$W/report.txt" \
    --quiet --pg "$APP_PG" >"$W/report.log" 2>&1 ||
    { cat "$W/report.log" >&2; fail "tradeflow-report over TLS failed"; }
[ -s "$W/report.txt" ] || fail "tradeflow-report over TLS wrote no report"

# sslmode=require against a server with ssl=off (ssl is reloadable).
psql -X -q -d postgres -c "ALTER SYSTEM SET ssl = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
expect "ssl after reload" "$(q 'show ssl')" "off"
sec_must_fail_within 30 "$W/pgoff.log" env PGPASSFILE="$TRADEFLOW_PGPASSFILE" "$REPORT" \
    --reporter CHN --format text \
    --pg "host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=tradeflow sslmode=require"
grep -q "server does not support SSL" "$W/pgoff.log" ||
    { cat "$W/pgoff.log" >&2; fail "sslmode=require against ssl=off did not fail as expected"; }
ok "sslmode=require against ssl=off: 'server does not support SSL, but SSL was required'"
psql -X -q -d postgres -c "ALTER SYSTEM RESET ssl" -c "SELECT pg_reload_conf()" >/dev/null

echo "$passed passed, 0 failed"
