#!/usr/bin/env bash
# deploy/stack.sh - the real local stack for the demo and the tests:
# Apache Kafka 4.x (or 3.9; KRaft, combined broker+controller) and a private
# PostgreSQL cluster (15 or 17), both on 127.0.0.1 only, all state in one
# directory.
#
#   deploy/stack.sh up [--fresh] [--brokers N] [--registry] [--secure] [--kafka VERSION]
#   deploy/stack.sh down | status | env [--secure]
#   deploy/stack.sh kill-broker N [KILL|TERM] | start-broker N
#   deploy/stack.sh restart-pg [fast|immediate] [SECONDS down]
#
# See docs/stack.md for the layout, the ports and troubleshooting.
set -euo pipefail

# The Kafka of a new stack: 4.4.0 (the default, the newest 4.x on Maven
# Central), or a line's short name: "4" (= 4.4.0), "3.9" (= 3.9.2).
TF_KAFKA_DEFAULT=4.4.0
kafka_version_of() {
    case "$1" in
        4 | 4.4) echo "$TF_KAFKA_DEFAULT" ;;
        3 | 3.9) echo 3.9.2 ;;
        *) echo "$1" ;;
    esac
}
TF_KAFKA_VERSION="$(kafka_version_of "${TRADEFLOW_KAFKA_VERSION:-$TF_KAFKA_DEFAULT}")"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${TRADEFLOW_STACK_DIR:-$REPO/.stack}"
PG_BIN="${TRADEFLOW_PG_BIN:-}"
# Seconds to wait for a server to answer before giving up with its log.
START_TIMEOUT="${TRADEFLOW_STACK_TIMEOUT:-90}"
KAFKA_HEAP="${TRADEFLOW_KAFKA_HEAP:-512m}"
CONF="$STACK_DIR/stack.conf"
# --secure (TLS, SASL/SCRAM, PostgreSQL ssl=on): its functions live in
# deploy/secure.sh; see docs/security.md.
# shellcheck source=deploy/secure.sh
. "$REPO/deploy/secure.sh"

die() {
    echo "stack.sh: error: $*" >&2
    exit 1
}
say() { echo "stack.sh: $*" >&2; }

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# ---------------------------------------------------------------- helpers

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a PostgreSQL server binary as the user that owns the cluster: the
# server refuses to run as root, so root delegates to the "postgres" user.
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The pid in file $1 when that process is alive, else nothing.
live_pid() {
    local f="$1" pid
    [ -s "$f" ] || return 1
    pid="$(cat "$f")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

load_conf() {
    [ -f "$CONF" ] || return 1
    # shellcheck disable=SC1090
    . "$CONF"
}

broker_port() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
controller_port() { echo $((KAFKA_PORT + 2 * ($1 - 1) + 1)); }
broker_dir() { echo "$STACK_DIR/kafka/$1"; }
bootstrap() {
    local i list=""
    for ((i = 1; i <= BROKERS; i++)); do
        list="${list:+$list,}127.0.0.1:$(broker_port "$i")"
    done
    echo "$list"
}

# Kafka 4.x logs through log4j2, 3.x through log4j 1 (reload4j): see
# deploy/pom.xml.
kafka_major() { echo "${1%%.*}"; }
kafka_log4j2() { [ "$(kafka_major "$1")" -ge 4 ] 2>/dev/null; }

jars_dir() {
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}"
    echo "${TRADEFLOW_KAFKA_JARS:-$cache/tradeflow/kafka-$TF_KAFKA_VERSION}"
}

need_java() {
    command -v java >/dev/null 2>&1 ||
        die "java not found: Kafka needs a Java 17 runtime (run deploy/install-deps.sh, or apt-get install openjdk-17-jre-headless; Debian 13: openjdk-21-jre-headless)"
    local v
    v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    [ -n "$v" ] && [ "$v" -ge 17 ] ||
        die "java ${v:-?} is too old: Kafka 4.x needs Java 17 or newer (Kafka 3.9: 11, 17 recommended)"
}

# Fetches the broker's jars into the cache once. A cache that exists is used
# as is: --fresh wipes the stack's state, never the jars.
ensure_jars() {
    local dir tmp log
    dir="$(jars_dir)"
    if [ -f "$dir/.complete" ]; then
        JARS="$dir"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 ||
        die "mvn not found and no cached Kafka jars in $dir: install Maven (deploy/install-deps.sh) or point TRADEFLOW_KAFKA_JARS at a directory of Kafka $TF_KAFKA_VERSION jars"
    mkdir -p "$(dirname "$dir")"
    # Two stacks starting at once (a developer's and the test suite's) must
    # not both fill the same directory.
    exec 8>"$dir.lock"
    flock -w 900 8 || die "timed out waiting for another download into $dir"
    if [ ! -f "$dir/.complete" ]; then
        say "fetching Apache Kafka $TF_KAFKA_VERSION jars from Maven Central into $dir (once)"
        tmp="$dir.tmp.$$"
        log="$dir.mvn.log"
        rm -rf "$tmp"
        # The connector timeouts turn an unreachable repository into an error
        # within seconds; the outer timeout bounds a stalled transfer.
        # shellcheck disable=SC2086
        if ! timeout "${TRADEFLOW_MVN_TIMEOUT:-600}" mvn -B -q -Dstyle.color=never \
            -Daether.connector.connectTimeout=15000 -Daether.connector.requestTimeout=60000 \
            -f "$REPO/deploy/pom.xml" -Dkafka.version="$TF_KAFKA_VERSION" \
            $(kafka_log4j2 "$TF_KAFKA_VERSION" || echo -Dtf.log4j1) ${TRADEFLOW_MVN_ARGS:-} \
            org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" \
            >"$log" 2>&1; then
            rm -rf "$tmp"
            # Maven's batch mode still emits colour resets.
            sed -i 's/\x1b\[[0-9;]*m//g' "$log"
            grep -E '^\[ERROR\]' "$log" | grep -v '^\[ERROR\] *$' | head -n 6 >&2
            if grep -qiE 'could not transfer|could not resolve|unknown ?host|connection refused|connect timed out|timed out|network is unreachable|no route' "$log"; then
                die "Maven could not download Kafka $TF_KAFKA_VERSION: Maven Central (or your mirror in ~/.m2/settings.xml) is unreachable? Full log: $log"
            fi
            die "Maven failed (full log: $log)"
        fi
        ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven ran but $tmp holds no kafka_2.13 jar (log: $log)"
        touch "$tmp/.complete"
        rm -rf "$dir"
        mv "$tmp" "$dir"
    fi
    exec 8>&-
    JARS="$dir"
}

# The JVM options of the broker and of the storage tool. The heap is small
# on purpose: a test broker holds little data (old generation ~40 MB,
# metaspace ~46 MB measured here). The serial collector keeps the resident
# size down; the broker is I/O bound in tests. TRADEFLOW_KAFKA_OPTS adds
# options (e.g. -XX:+UseG1GC for a benchmark).
kafka_jvm_opts() {
    # shellcheck disable=SC2206
    JVM_OPTS=(-Xms64m -Xmx"$KAFKA_HEAP" -XX:+UseSerialGC -XX:MaxMetaspaceSize=128m
        -Djava.awt.headless=true ${TRADEFLOW_KAFKA_OPTS:-})
}

kafka_java() {
    kafka_jvm_opts
    java "${JVM_OPTS[@]}" "$@"
}

# The logging options of broker $1's JVMs: its log4j2.xml (Kafka 4.x) or
# log4j.properties (3.x), and the directory they write to.
kafka_log_opts() {
    local d
    d="$(broker_dir "$1")"
    if kafka_log4j2 "$KAFKA_VERSION"; then
        LOG_OPTS=(-Dlog4j2.configurationFile="$d/log4j2.xml")
    else
        LOG_OPTS=(-Dlog4j.configuration="file:$d/log4j.properties")
    fi
    LOG_OPTS+=(-Dkafka.logs.dir="$d/logs")
}

new_cluster_id() {
    # A Kafka cluster id is a 16-byte UUID in unpadded URL-safe base64;
    # Kafka's own generator avoids ids starting with '-' (they look like an
    # option). Generating it here saves a JVM start.
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [ "${id:0:1}" != "-" ] && break
    done
    echo "$id"
}

write_broker_config() {
    local i="$1" d voters="" j rf isr parts
    d="$(broker_dir "$i")"
    mkdir -p "$d/data" "$d/logs"
    for ((j = 1; j <= BROKERS; j++)); do
        voters="${voters:+$voters,}$j@127.0.0.1:$(controller_port "$j")"
    done
    if [ "$BROKERS" -ge 3 ]; then rf=3 isr=2; else rf=1 isr=1; fi
    # min.insync.replicas below is broker-wide: with acks=all a write needs
    # isr replicas (the failover test relies on 2 of 3).
    parts=4
    cat >"$d/server.properties" <<EOF
# Written by deploy/stack.sh: node $i of $BROKERS.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$i"),CONTROLLER://127.0.0.1:$(controller_port "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$i")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
# Internal topics: few partitions, replicated across the whole cluster.
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=$parts
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
min.insync.replicas=$isr
transaction.state.log.num.partitions=$parts
default.replication.factor=$rf
num.partitions=1
# Tests start consumer groups all the time: no 3 s wait for more members.
group.initial.rebalance.delay.ms=0
# The log cleaner's dedupe buffer is allocated on the heap (128 MiB default).
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.threads=1
num.io.threads=4
num.network.threads=2
num.recovery.threads.per.data.dir=1
# Topics are created explicitly by the producer and by the tests; automatic
# creation stays on (Kafka's default) so kcat and ad-hoc tools work, but no
# tradeflow program may depend on it (production clusters often disable it).
auto.create.topics.enable=true
delete.topic.enable=true
log.retention.hours=168
log.segment.bytes=268435456
EOF
    # ---- --secure: extra listeners (deploy/secure.sh)
    if [ "${SECURE:-0}" = 1 ]; then
        secure_broker_props "$i" >>"$d/server.properties"
        chmod 600 "$d/server.properties"
    fi
    if kafka_log4j2 "$KAFKA_VERSION"; then
        # The same as the 3.x file below, in log4j2's XML (log4j-core reads it
        # with no extra jar); the status logger reports config errors only.
        # No log4j shutdown hook: Kafka logs its own shutdown after the JVM's
        # hooks start, which log4j's hook would cut off (to stdout.log, "Unable
        # to register Log4j shutdown hook"); the appender flushes each line.
        cat >"$d/log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by deploy/stack.sh (Kafka 4.x, log4j2). -->
<Configuration status="warn" shutdownHook="disable">
  <Appenders>
    <RollingFile name="file" fileName="${sys:kafka.logs.dir}/server.log"
                 filePattern="${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="org.apache.kafka.clients.NetworkClient" level="WARN"/>
  </Loggers>
</Configuration>
EOF
        return 0
    fi
    cat >"$d/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=\${kafka.logs.dir}/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients.NetworkClient=WARN
EOF
}

format_broker() {
    local i="$1" d extra=()
    d="$(broker_dir "$i")"
    # ---- --secure: the SCRAM user goes into the metadata (deploy/secure.sh)
    [ "${SECURE:-0}" = 1 ] && mapfile -t extra < <(secure_format_args)
    kafka_log_opts "$i"
    kafka_java -cp "$JARS/*" "${LOG_OPTS[@]}" kafka.tools.StorageTool format \
        -t "$CLUSTER_ID" -c "$d/server.properties" --ignore-formatted "${extra[@]}" \
        >"$d/logs/format.log" 2>&1 || {
        cat "$d/logs/format.log" >&2
        die "formatting the storage of broker $i failed"
    }
}

# Refuses to start on a port that something other than this stack holds.
check_port_free() {
    local port="$1" what="$2"
    if port_open "$port"; then
        local who=""
        command -v ss >/dev/null 2>&1 && who="$(ss -ltnpH "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1)"
        die "port $port ($what) is already in use${who:+ by $who}; stop that process or choose other ports with TRADEFLOW_KAFKA_PORT / TRADEFLOW_PG_PORT (and --fresh)"
    fi
}

start_broker_proc() {
    local i="$1" d
    d="$(broker_dir "$i")"
    if live_pid "$d/kafka.pid" >/dev/null; then
        return 0
    fi
    check_port_free "$(broker_port "$i")" "Kafka broker $i"
    check_port_free "$(controller_port "$i")" "Kafka controller $i"
    : >"$d/logs/stdout.log"
    # setsid: the broker outlives the shell (and its process group) that
    # started it, so a test runner's Ctrl-C does not take it down by accident.
    # It must not inherit the lock descriptors 8 and 9 either: a lock held
    # by a daemon would block every later stack.sh.
    kafka_jvm_opts
    kafka_log_opts "$i"
    setsid java "${JVM_OPTS[@]}" "${LOG_OPTS[@]}" -Dtradeflow.stack="$STACK_DIR" \
        -cp "$JARS/*" kafka.Kafka "$d/server.properties" \
        >>"$d/logs/stdout.log" 2>&1 </dev/null 8>&- 9>&- &
    echo $! >"$d/kafka.pid"
}

# Waits until broker $1 answers a metadata request listing $2 brokers.
wait_broker() {
    local i="$1" want="$2" d port t0 pid
    d="$(broker_dir "$i")"
    port="$(broker_port "$i")"
    t0=$SECONDS
    while :; do
        pid="$(live_pid "$d/kafka.pid")" || {
            tail -n 30 "$d/logs/server.log" "$d/logs/stdout.log" >&2 2>/dev/null || true
            die "Kafka broker $i exited during start-up (logs: $d/logs)"
        }
        if port_open "$port"; then
            if command -v kcat >/dev/null 2>&1; then
                if kcat -L -b "127.0.0.1:$port" -m 5 2>/dev/null | grep -q "^ *$want brokers:"; then
                    return 0
                fi
            elif grep -q "Kafka Server started" "$d/logs/server.log" 2>/dev/null; then
                return 0
            fi
        fi
        if ((SECONDS - t0 >= START_TIMEOUT)); then
            tail -n 30 "$d/logs/server.log" >&2 2>/dev/null || true
            die "Kafka broker $i (pid $pid) did not answer a metadata request on 127.0.0.1:$port within ${START_TIMEOUT}s (logs: $d/logs)"
        fi
        sleep 0.3
    done
}

stop_pid() {
    # SIGTERM, then wait; Kafka's controlled shutdown takes a few seconds.
    local pidfile="$1" what="$2" grace="${3:-60}" pid n
    pid="$(live_pid "$pidfile")" || {
        rm -f "$pidfile"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    for ((n = 0; n < grace * 10; n++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$what (pid $pid) still running ${grace} s after SIGTERM: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# ---------------------------------------------------------------- PostgreSQL

# Normally "$STACK_DIR/pg". As root, the server runs as "postgres", which
# may not be able to reach a stack directory under /root (a CI checkout, for
# instance): then the cluster lives under /var/tmp instead, recorded as
# PG_DIR in stack.conf.
pg_dir() { echo "${PG_DIR:-$STACK_DIR/pg}"; }

choose_pg_dir() {
    [ -n "${PG_DIR:-}" ] && return 0
    PG_DIR="$STACK_DIR/pg"
    if is_root && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$STACK_DIR" 2>/dev/null; then
        PG_DIR="/var/tmp/tradeflow-pg-$(printf '%s' "$STACK_DIR" | md5sum | cut -c1-12)"
        say "the postgres user cannot reach $STACK_DIR: PostgreSQL data goes to $PG_DIR"
    fi
}

# The server binaries: TRADEFLOW_PG_BIN, else those of the version that
# made the cluster (its PG_VERSION file), else the newest installed
# /usr/lib/postgresql/<N>/bin (Debian 12: 15, Debian 13: 17).
find_pg_bin() {
    [ -n "$PG_BIN" ] && return 0
    local v d
    if [ -f "$(pg_dir)/data/PG_VERSION" ]; then
        v="$(cat "$(pg_dir)/data/PG_VERSION")"
        [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] ||
            die "the cluster in $(pg_dir) was made by PostgreSQL $v, whose server binaries are not in /usr/lib/postgresql/$v/bin (install postgresql-$v, set TRADEFLOW_PG_BIN, or up --fresh)"
        PG_BIN="/usr/lib/postgresql/$v/bin"
        return 0
    fi
    for d in $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -t/ -k4,4n); do
        [ -x "$d/initdb" ] && PG_BIN="$d"
    done
    [ -n "$PG_BIN" ] ||
        die "no PostgreSQL server binaries in /usr/lib/postgresql/<N>/bin (run deploy/install-deps.sh: postgresql-15 on Debian 12, postgresql-17 on Debian 13; or set TRADEFLOW_PG_BIN)"
}

pg_running() {
    find_pg_bin
    [ -f "$(pg_dir)/data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" status -D "$(pg_dir)/data" >/dev/null 2>&1
}

pg_init() {
    local p
    p="$(pg_dir)"
    find_pg_bin
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL server binaries not found in $PG_BIN (apt-get install postgresql-15 or -17, or set TRADEFLOW_PG_BIN)"
    [ -f "$p/data/PG_VERSION" ] && return 0
    mkdir -p "$p/data" "$p/run"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' user to run the server as"
        chown -R postgres: "$p"
        runuser -u postgres -- test -w "$p/data" ||
            die "the postgres user cannot reach $p (a parent directory is not searchable by it); set TRADEFLOW_STACK_DIR to a path it can reach"
    fi
    chmod 700 "$p/data"
    as_pg "$PG_BIN/initdb" -D "$p/data" -U tradeflow -A trust -E UTF8 --no-locale \
        >"$p/initdb.log" 2>&1 || {
        cat "$p/initdb.log" >&2
        die "initdb failed"
    }
    # Only loopback TCP and the private socket are trusted; no ::1 or other host lines.
    as_pg tee "$p/data/pg_hba.conf" >/dev/null <<EOF
# Written by deploy/stack.sh: a private test cluster, reachable from this
# machine only.
local all all trust
host  all all 127.0.0.1/32 trust
EOF
    as_pg tee -a "$p/data/postgresql.conf" >/dev/null <<EOF

# ---- deploy/stack.sh
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$p/run'
max_connections = 100
shared_buffers = 128MB
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
EOF
}

pg_start() {
    local p
    p="$(pg_dir)"
    pg_running && return 0
    check_port_free "$PG_PORT" "PostgreSQL"
    # A crash leaves postmaster.pid behind; pg_ctl copes with a stale one.
    # The server must not inherit the stack lock (fd 9), or the next
    # stack.sh would wait for it forever.
    as_pg "$PG_BIN/pg_ctl" start -D "$p/data" -l "$p/postgres.log" -w -t "$START_TIMEOUT" -s \
        >/dev/null 2>&1 8>&- 9>&- || {
        tail -n 20 "$p/postgres.log" >&2 2>/dev/null || true
        die "PostgreSQL did not start on 127.0.0.1:$PG_PORT (log: $p/postgres.log)"
    }
    if ! psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='tradeflow'" | grep -q 1; then
        psql_admin -d postgres -qc "CREATE DATABASE tradeflow" >/dev/null
    fi
}

psql_admin() {
    psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U tradeflow "$@"
}

pg_stop() {
    local mode="${1:-fast}"
    [ -f "$(pg_dir)/data/PG_VERSION" ] || return 0
    pg_running || return 0
    find_pg_bin
    as_pg "$PG_BIN/pg_ctl" stop -D "$(pg_dir)/data" -m "$mode" -w -t 60 -s >/dev/null
}

pg_version() {
    psql_admin -d postgres -tAc "SHOW server_version" 2>/dev/null | head -1
}

# ---------------------------------------------------------------- commands

lock_stack() {
    mkdir -p "$STACK_DIR"
    # The stack directory is git-ignored whatever its name or place.
    [ -f "$STACK_DIR/.gitignore" ] || echo '*' >"$STACK_DIR/.gitignore"
    exec 9>"$STACK_DIR/stack.lock"
    flock -w 600 9 || die "another stack.sh is busy with $STACK_DIR"
}

cmd_up() {
    local fresh=0 brokers="" registry=0 secure=0 kafka="" i
    while [ $# -gt 0 ]; do
        case "$1" in
            --fresh) fresh=1 ;;
            --brokers) brokers="${2:?--brokers needs a number}"; shift ;;
            --brokers=*) brokers="${1#*=}" ;;
            --registry) registry=1 ;;
            --secure) secure=1 ;;
            --kafka) kafka="${2:?--kafka needs a version (4.4.0, 3.9.2, or 4 / 3.9)}"; shift ;;
            --kafka=*) kafka="${1#*=}" ;;
            *) die "up: unknown option '$1'" ;;
        esac
        shift
    done
    if [ -n "$brokers" ] && ! [[ "$brokers" =~ ^[1-9]$ ]]; then
        die "--brokers takes a number from 1 to 9"
    fi
    [ -n "$kafka" ] && TF_KAFKA_VERSION="$(kafka_version_of "$kafka")"
    [[ "$TF_KAFKA_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
        die "Kafka version '$TF_KAFKA_VERSION' is not of the form X.Y.Z (or 4 / 3.9)"
    need_java
    command -v psql >/dev/null 2>&1 || die "psql not found (apt-get install postgresql-client)"
    lock_stack

    if [ "$fresh" = 1 ] && [ -f "$CONF" ]; then
        load_conf
        say "--fresh: stopping and wiping $STACK_DIR"
        stop_all
        # Only what this script created: never "rm -rf $STACK_DIR", which
        # might be a directory the user pointed us at by mistake.
        rm -rf "$STACK_DIR/kafka" "$(pg_dir)" "$CONF" "$STACK_DIR/registry.env" "$STACK_DIR/secure"
        unset PG_DIR
    elif [ "$fresh" = 1 ]; then
        rm -rf "$STACK_DIR/kafka" "$STACK_DIR/pg" "$STACK_DIR/secure"
    fi

    if load_conf; then
        # A formatted cluster has its ports and size baked into its metadata.
        if [ -n "$brokers" ] && [ "$brokers" != "$BROKERS" ]; then
            die "the stack in $STACK_DIR was created with $BROKERS broker(s): use 'up --fresh --brokers $brokers' to recreate it"
        fi
        if [ -n "${TRADEFLOW_KAFKA_PORT:-}" ] && [ "$TRADEFLOW_KAFKA_PORT" != "$KAFKA_PORT" ]; then
            die "the stack in $STACK_DIR uses Kafka port $KAFKA_PORT, not $TRADEFLOW_KAFKA_PORT: add --fresh to change it"
        fi
        if [ -n "${TRADEFLOW_PG_PORT:-}" ] && [ "$TRADEFLOW_PG_PORT" != "$PG_PORT" ]; then
            die "the stack in $STACK_DIR uses PostgreSQL port $PG_PORT, not $TRADEFLOW_PG_PORT: add --fresh to change it"
        fi
        if [ -n "$kafka" ] && [ "$KAFKA_VERSION" != "$TF_KAFKA_VERSION" ]; then
            die "the stack in $STACK_DIR runs Kafka $KAFKA_VERSION: use 'up --fresh --kafka $kafka' to recreate it"
        fi
        TF_KAFKA_VERSION="$KAFKA_VERSION"
        if [ "$secure" = 1 ] && [ "${SECURE:-0}" != 1 ]; then
            die "the stack in $STACK_DIR was created without --secure: use 'up --fresh --secure' to recreate it"
        fi
    else
        KAFKA_PORT="${TRADEFLOW_KAFKA_PORT:-19092}"
        PG_PORT="${TRADEFLOW_PG_PORT:-15432}"
        BROKERS="${brokers:-1}"
        KAFKA_VERSION="$TF_KAFKA_VERSION"
        CLUSTER_ID="$(new_cluster_id)"
        [[ "$KAFKA_PORT" =~ ^[0-9]+$ && "$PG_PORT" =~ ^[0-9]+$ ]] || die "ports must be numbers"
        # ---- --secure: 3 more ports per broker (deploy/secure.sh)
        SECURE="$secure"
        SECURE_PORT="${TRADEFLOW_KAFKA_SECURE_PORT:-$((KAFKA_PORT + 20))}"
        [[ "$SECURE_PORT" =~ ^[0-9]+$ ]] || die "ports must be numbers"
    fi

    # Every port must be free (or ours) before anything is formatted: the
    # controller ports end up in the cluster's metadata.
    for ((i = 1; i <= BROKERS; i++)); do
        if ! live_pid "$(broker_dir "$i")/kafka.pid" >/dev/null; then
            check_port_free "$(broker_port "$i")" "Kafka broker $i"
            check_port_free "$(controller_port "$i")" "Kafka controller $i"
        fi
    done
    pg_running || check_port_free "$PG_PORT" "PostgreSQL"
    if [ "${SECURE:-0}" = 1 ]; then
        secure_check_ports
        secure_prepare
    fi

    choose_pg_dir
    ensure_jars
    local t0=$SECONDS
    # Kafka: write configs and format on first use (in parallel: one JVM each).
    local pids=()
    for ((i = 1; i <= BROKERS; i++)); do
        if [ ! -f "$(broker_dir "$i")/data/meta.properties" ]; then
            write_broker_config "$i"
            format_broker "$i" &
            pids+=($!)
        fi
    done
    for i in "${pids[@]}"; do wait "$i" || die "formatting Kafka storage failed"; done
    cat >"$CONF" <<EOF
# Written by deploy/stack.sh up; read by env/status/down.
KAFKA_PORT=$KAFKA_PORT
PG_PORT=$PG_PORT
BROKERS=$BROKERS
KAFKA_VERSION=$KAFKA_VERSION
CLUSTER_ID=$CLUSTER_ID
JARS=$JARS
SECURE=${SECURE:-0}
SECURE_PORT=${SECURE_PORT:-}
PG_DIR=$PG_DIR
EOF
    for ((i = 1; i <= BROKERS; i++)); do start_broker_proc "$i"; done
    # PostgreSQL starts while the JVMs warm up.
    pg_init
    [ "${SECURE:-0}" = 1 ] && secure_pg_conf
    pg_start
    [ "${SECURE:-0}" = 1 ] && secure_pg_roles
    for ((i = 1; i <= BROKERS; i++)); do wait_broker "$i" "$BROKERS"; done
    say "up in $((SECONDS - t0)) s: Kafka $KAFKA_VERSION at $(bootstrap), PostgreSQL at 127.0.0.1:$PG_PORT (state: $STACK_DIR)"

    if [ "$registry" = 1 ]; then
        [ -x "$REPO/deploy/registry.sh" ] || [ -f "$REPO/deploy/registry.sh" ] ||
            die "--registry: deploy/registry.sh does not exist yet"
        TRADEFLOW_STACK_DIR="$STACK_DIR" TRADEFLOW_BROKERS="$(bootstrap)" 9>&- \
            bash "$REPO/deploy/registry.sh" up >"$STACK_DIR/registry.env.tmp" ||
            die "deploy/registry.sh up failed"
        mv "$STACK_DIR/registry.env.tmp" "$STACK_DIR/registry.env"
    fi
}

stop_all() {
    local i
    if [ -f "$STACK_DIR/registry.env" ] && [ -f "$REPO/deploy/registry.sh" ]; then
        TRADEFLOW_STACK_DIR="$STACK_DIR" bash "$REPO/deploy/registry.sh" down >&2 || say "registry.sh down failed"
        rm -f "$STACK_DIR/registry.env"
    fi
    # Stop all brokers at once. In a multi-node cluster the last node's
    # controlled shutdown never completes (no controller quorum is left
    # to acknowledge it), so it gets a short grace period and then SIGKILL;
    # Kafka recovers its logs on the next start.
    local grace=60
    [ "${BROKERS:-1}" -gt 1 ] && grace=15
    for ((i = 1; i <= ${BROKERS:-1}; i++)); do
        stop_pid "$(broker_dir "$i")/kafka.pid" "Kafka broker $i" "$grace" &
    done
    wait
    pg_stop fast || say "pg_ctl stop failed"
}

cmd_down() {
    load_conf || { say "no stack in $STACK_DIR"; return 0; }
    lock_stack
    stop_all
    say "stopped (data kept in $STACK_DIR)"
}

cmd_env() {
    load_conf || die "no stack in $STACK_DIR: run deploy/stack.sh up"
    # ---- --secure: the secured listeners, the CA and the password files
    if [ "${1:-}" = --secure ]; then
        secure_env
        return 0
    fi
    echo "export TRADEFLOW_BROKERS=$(bootstrap) PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=tradeflow PGDATABASE=tradeflow TRADEFLOW_STACK_DIR=$STACK_DIR"
    if [ -s "$STACK_DIR/registry.env" ]; then
        cat "$STACK_DIR/registry.env"
    fi
}

cmd_status() {
    load_conf || {
        echo "no stack in $STACK_DIR"
        return 3
    }
    local i pid rc=0 d
    echo "stack dir: $STACK_DIR"
    echo "kafka $KAFKA_VERSION, $BROKERS broker(s), cluster id $CLUSTER_ID, jars $JARS"
    for ((i = 1; i <= BROKERS; i++)); do
        d="$(broker_dir "$i")"
        if pid="$(live_pid "$d/kafka.pid")"; then
            echo "  broker $i: running, pid $pid, 127.0.0.1:$(broker_port "$i") (controller :$(controller_port "$i")), rss $(($(ps -o rss= -p "$pid") / 1024)) MiB"
        else
            echo "  broker $i: stopped (127.0.0.1:$(broker_port "$i"))"
            rc=3
        fi
    done
    if pg_running; then
        pid="$(head -1 "$(pg_dir)/data/postmaster.pid")"
        echo "postgresql $(pg_version): running, pid $pid, 127.0.0.1:$PG_PORT, socket $(pg_dir)/run, database tradeflow"
    else
        echo "postgresql: stopped (127.0.0.1:$PG_PORT)"
        rc=3
    fi
    [ -s "$STACK_DIR/registry.env" ] && echo "registry: $(cat "$STACK_DIR/registry.env")"
    # ---- --secure (deploy/secure.sh)
    if [ "${SECURE:-0}" = 1 ]; then
        echo "secure listeners: SASL_PLAINTEXT $(secure_bootstrap sasl_plaintext), SSL $(secure_bootstrap ssl), SASL_SSL $(secure_bootstrap sasl_ssl); CA $(secure_dir)/ca.pem (deploy/stack.sh env --secure)"
    fi
    return $rc
}

broker_arg() {
    load_conf || die "no stack in $STACK_DIR"
    [[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$BROKERS" ] ||
        die "broker number must be 1..$BROKERS"
}

cmd_kill_broker() {
    broker_arg "${1:-}"
    local sig="${2:-KILL}" pid d
    d="$(broker_dir "$1")"
    pid="$(live_pid "$d/kafka.pid")" || die "broker $1 is not running"
    case "$sig" in
        KILL) kill -KILL "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done; rm -f "$d/kafka.pid" ;;
        TERM) stop_pid "$d/kafka.pid" "Kafka broker $1" ;;
        *) die "kill-broker: signal must be KILL or TERM" ;;
    esac
    say "broker $1 (pid $pid) stopped with SIG$sig"
}

cmd_start_broker() {
    broker_arg "${1:-}"
    need_java
    JARS="${JARS:-$(jars_dir)}"
    [ -f "$JARS/.complete" ] || die "no Kafka jars in $JARS: run deploy/stack.sh up first"
    start_broker_proc "$1"
    # Only this broker must answer; the others may be down on purpose.
    local save=$BROKERS
    wait_broker "$1" '[0-9]*'
    BROKERS=$save
    say "broker $1 running on 127.0.0.1:$(broker_port "$1")"
}

cmd_restart_pg() {
    load_conf || die "no stack in $STACK_DIR"
    local mode="${1:-fast}" down="${2:-0}"
    case "$mode" in fast | immediate | smart) ;; *) die "restart-pg: mode must be fast or immediate" ;; esac
    [[ "$down" =~ ^[0-9]+$ ]] || die "restart-pg: SECONDS must be a whole number"
    pg_stop "$mode"
    sleep "$down"
    pg_start
    say "PostgreSQL restarted (stop mode $mode, down ${down} s)"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env "$@" ;;
    kill-broker) cmd_kill_broker "$@" ;;
    start-broker) cmd_start_broker "$@" ;;
    restart-pg) cmd_restart_pg "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
