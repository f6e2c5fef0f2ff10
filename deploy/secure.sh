#!/usr/bin/env bash
# deploy/secure.sh - the secured variant of the local stack (issue 7,
# security): TLS certificates, SCRAM credentials and the extra broker and
# PostgreSQL settings behind `deploy/stack.sh up --secure`.
#
#   deploy/secure.sh env     what a client needs (the same as stack.sh env --secure)
#
# stack.sh sources this file for its functions; run on its own it only
# prints the environment of a stack that was started with --secure.
#
# What --secure adds (all state in $STACK_DIR/secure, see docs/security.md):
#   - a private CA and a server certificate for IP 127.0.0.1 (PEM, openssl);
#   - three more listeners per broker on 127.0.0.1, next to PLAINTEXT:
#     SASL_PLAINTEXT (SCRAM-SHA-512), SSL (TLS only) and SASL_SSL, on the
#     ports SECURE_PORT + 3*(N-1) + 0/1/2 for broker N;
#   - one SCRAM-SHA-512 user, written into the cluster metadata when the
#     storage is formatted (KRaft, Kafka >= 3.5);
#   - PostgreSQL with ssl=on (same CA) and a password role tradeflow_app
#     (IN ROLE tradeflow_writer) that may only log in over TLS with
#     scram-sha-256.
# Passwords are random, written to 0600 files, and never printed: the
# environment names the files.

SECURE_SCRAM_USER="${TRADEFLOW_SCRAM_USER:-tradeflow}"
SECURE_PG_USER="tradeflow_app"

secure_dir() { echo "$STACK_DIR/secure"; }

# The three client-facing ports of broker $1, in the order SASL_PLAINTEXT,
# SSL, SASL_SSL.
secure_port() {
    local i="$1" which="$2" off
    case "$which" in
        sasl_plaintext) off=0 ;;
        ssl) off=1 ;;
        sasl_ssl) off=2 ;;
        *) die "secure_port: unknown listener $which" ;;
    esac
    echo $((SECURE_PORT + 3 * (i - 1) + off))
}

# The bootstrap list of one secured listener across every broker.
secure_bootstrap() {
    local which="$1" i list=""
    for ((i = 1; i <= BROKERS; i++)); do
        list="${list:+$list,}127.0.0.1:$(secure_port "$i" "$which")"
    done
    echo "$list"
}

# A random password of letters and digits: nothing in it needs quoting in a
# SCRAM format argument, a libpq conninfo, a pgpass line or a properties file.
secure_new_password() {
    local p
    p="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 28)"
    [ "${#p}" -eq 28 ] || die "could not generate a password"
    echo "tf${p}"
}

# Refuses ports that something else holds (called before formatting, like
# the PLAINTEXT and controller ports).
secure_check_ports() {
    local i w
    for ((i = 1; i <= BROKERS; i++)); do
        live_pid "$(broker_dir "$i")/kafka.pid" >/dev/null && continue
        for w in sasl_plaintext ssl sasl_ssl; do
            check_port_free "$(secure_port "$i" "$w")" "Kafka broker $i $w listener"
        done
    done
}

# Creates the CA, the server certificate, the passwords and the client
# property files once; a second `up` keeps them.
secure_prepare() {
    local s
    s="$(secure_dir)"
    command -v openssl >/dev/null 2>&1 || die "--secure needs openssl (apt-get install openssl)"
    mkdir -p "$s"
    chmod 755 "$s"
    if [ ! -s "$s/server.pem" ]; then
        (
            umask 077
            cd "$s"
            # PKCS#8 keys (openssl 3's default): both Kafka's PEM key store and
            # PostgreSQL read them.
            openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
                -keyout ca.key -out ca.pem -subj "/CN=tradeflow test CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" >openssl.log 2>&1
            openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key \
                -out server.csr -subj "/CN=127.0.0.1" >>openssl.log 2>&1
            printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
                "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth" >server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                -days 825 -sha256 -extfile server.ext -out server.pem >>openssl.log 2>&1
            rm -f server.csr
        ) || die "creating the test certificates failed (log: $s/openssl.log)"
        chmod 644 "$s/ca.pem" "$s/server.pem"
    fi
    (
        umask 077
        [ -s "$s/scram.password" ] || secure_new_password >"$s/scram.password"
        [ -s "$s/pg.password" ] || secure_new_password >"$s/pg.password"
    )
    secure_client_files
}

# Client configuration files, one per listener (librdkafka properties for
# -F), and a pgpass file for libpq; those holding a password are 0600.
secure_client_files() {
    local s pw w proto
    s="$(secure_dir)"
    pw="$(cat "$s/scram.password")"
    for w in sasl_plaintext ssl sasl_ssl; do
        proto="$(echo "$w" | tr '[:lower:]' '[:upper:]')"
        (
            umask 077
            {
                echo "# Written by deploy/secure.sh: librdkafka properties for the $proto listener."
                echo "bootstrap.servers=$(secure_bootstrap "$w")"
                echo "security.protocol=$proto"
                case "$w" in
                    sasl_*)
                        echo "sasl.mechanisms=SCRAM-SHA-512"
                        echo "sasl.username=$SECURE_SCRAM_USER"
                        echo "sasl.password=$pw"
                        ;;
                esac
                case "$w" in
                    *ssl) echo "ssl.ca.location=$s/ca.pem" ;;
                esac
            } >"$s/kafka-$w.properties"
        )
    done
    (
        umask 077
        echo "127.0.0.1:$PG_PORT:*:$SECURE_PG_USER:$(cat "$s/pg.password")" >"$s/pgpass"
    )
}

# Extra arguments for `kafka.tools.StorageTool format`: the SCRAM user.
# Printed one per line for `mapfile`.
secure_format_args() {
    echo "--add-scram"
    echo "SCRAM-SHA-512=[name=$SECURE_SCRAM_USER,password=$(cat "$(secure_dir)/scram.password")]"
}

# A PEM file as one properties value: Java's Properties turns each "\n"
# back into a line break.
secure_pem_value() {
    awk 'BEGIN { ORS = "" } { if (NR > 1) print "\\n"; print }' "$1"
}

# Lines appended to broker $1's server.properties. Java's Properties keeps
# the last value of a repeated key, so these listener lines replace the ones
# stack.sh wrote above them; PLAINTEXT stays (the rest of the suite uses it)
# and so does inter-broker traffic.
secure_broker_props() {
    local i="$1" s p
    s="$(secure_dir)"
    p="$(broker_port "$i")"
    cat <<EOF
# ---- deploy/secure.sh (--secure): these listener lines override the ones above.
listeners=PLAINTEXT://127.0.0.1:$p,CONTROLLER://127.0.0.1:$(controller_port "$i"),SASL_PLAINTEXT://127.0.0.1:$(secure_port "$i" sasl_plaintext),SSL://127.0.0.1:$(secure_port "$i" ssl),SASL_SSL://127.0.0.1:$(secure_port "$i" sasl_ssl)
advertised.listeners=PLAINTEXT://127.0.0.1:$p,SASL_PLAINTEXT://127.0.0.1:$(secure_port "$i" sasl_plaintext),SSL://127.0.0.1:$(secure_port "$i" ssl),SASL_SSL://127.0.0.1:$(secure_port "$i" sasl_ssl)
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
# The broker itself logs in with nothing (inter-broker traffic is PLAINTEXT),
# but each SASL listener needs a JAAS entry naming the SCRAM module.
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.client.auth=none
ssl.keystore.type=PEM
ssl.keystore.certificate.chain=$(secure_pem_value "$s/server.pem")
ssl.keystore.key=$(secure_pem_value "$s/server.key")
ssl.truststore.type=PEM
ssl.truststore.certificates=$(secure_pem_value "$s/ca.pem")
EOF
}

# PostgreSQL before its first start: ssl=on with the stack's certificate,
# and pg_hba lines that let tradeflow_app in over TLS with scram-sha-256
# only. The superuser keeps the stack's trust lines (it is how stack.sh and
# the tests administer the cluster). Idempotent.
secure_pg_conf() {
    local s data
    s="$(secure_dir)"
    data="$(pg_dir)/data"
    install -m 600 "$s/server.pem" "$data/server.crt"
    install -m 600 "$s/server.key" "$data/server.key"
    is_root && chown postgres: "$data/server.crt" "$data/server.key"
    if ! grep -q '^# ---- deploy/secure.sh' "$data/postgresql.conf"; then
        as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# ---- deploy/secure.sh (--secure)
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
# The tests read "SSL enabled" for each connection of the password role here.
log_connections = on
EOF
    fi
    # Written whole: the first matching line wins, so the role's lines come
    # before the trust line.
    as_pg tee "$data/pg_hba.conf" >/dev/null <<EOF
# Written by deploy/stack.sh --secure (deploy/secure.sh): a private test
# cluster, reachable from this machine only.
local   all all trust
hostssl all $SECURE_PG_USER 127.0.0.1/32 scram-sha-256
host    all $SECURE_PG_USER 127.0.0.1/32 reject
host    all all 127.0.0.1/32 trust
EOF
}

# After PostgreSQL started: the password role. tradeflow_writer is made
# here if no migration has made it yet (migration 005 creates it only when
# missing, and grants it its privileges in each database it migrates).
secure_pg_roles() {
    local pw
    pw="$(cat "$(secure_dir)/pg.password")"
    # The password goes through stdin, never through argv.
    psql_admin -d postgres -q >/dev/null <<EOF
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tradeflow_writer') THEN
        CREATE ROLE tradeflow_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$SECURE_PG_USER') THEN
        CREATE ROLE $SECURE_PG_USER LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE tradeflow_writer;
    END IF;
END
\$\$;
ALTER ROLE $SECURE_PG_USER PASSWORD '$pw';
EOF
}

# What a client needs, as shell exports. No password: the names of the
# files that hold them.
secure_env() {
    local s
    s="$(secure_dir)"
    if [ "${SECURE:-0}" != 1 ] || [ ! -s "$s/ca.pem" ]; then
        die "the stack in $STACK_DIR was not started with --secure (deploy/stack.sh up --fresh --secure)"
    fi
    echo "export TRADEFLOW_SASL_BROKERS=$(secure_bootstrap sasl_plaintext)" \
        "TRADEFLOW_SSL_BROKERS=$(secure_bootstrap ssl)" \
        "TRADEFLOW_SASL_SSL_BROKERS=$(secure_bootstrap sasl_ssl)" \
        "TRADEFLOW_CA=$s/ca.pem" \
        "TRADEFLOW_SCRAM_USER=$SECURE_SCRAM_USER" \
        "TRADEFLOW_SCRAM_PASSWORD_FILE=$s/scram.password" \
        "TRADEFLOW_KAFKA_SASL_PLAINTEXT_PROPS=$s/kafka-sasl_plaintext.properties" \
        "TRADEFLOW_KAFKA_SSL_PROPS=$s/kafka-ssl.properties" \
        "TRADEFLOW_KAFKA_SASL_SSL_PROPS=$s/kafka-sasl_ssl.properties" \
        "TRADEFLOW_PG_APP_USER=$SECURE_PG_USER" \
        "TRADEFLOW_PG_PASSWORD_FILE=$s/pg.password" \
        "TRADEFLOW_PGPASSFILE=$s/pgpass"
}

# ---------------------------------------------------------------- standalone

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    STACK_DIR="${TRADEFLOW_STACK_DIR:-$REPO/.stack}"
    die() {
        echo "secure.sh: error: $*" >&2
        exit 1
    }
    case "${1:-}" in
        env)
            [ -f "$STACK_DIR/stack.conf" ] || die "no stack in $STACK_DIR: run deploy/stack.sh up --secure"
            # shellcheck disable=SC1091
            . "$STACK_DIR/stack.conf"
            secure_env
            ;;
        *)
            sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
            exit 2
            ;;
    esac
fi
