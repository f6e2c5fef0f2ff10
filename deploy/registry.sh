#!/usr/bin/env bash
# deploy/registry.sh - a local Apicurio Registry (in-memory storage) for the
# Confluent Schema Registry framing, on 127.0.0.1 only.
#
#   deploy/registry.sh up       starts it (fetching the app once), prints
#                               export TRADEFLOW_REGISTRY_URL=... on stdout
#   deploy/registry.sh down     stops it
#   deploy/registry.sh status   says whether it runs, and where
#
# The Confluent-compatible API is under /apis/ccompat/v7. The app is
# io.apicurio:apicurio-registry-app:<version>:tar.gz:all from Maven Central,
# a Quarkus runner jar. Version 2.6.x runs on Java 17; the 3.x line needs
# Java 21 (class file 65) and fails to start on the Java 17 of this machine.
# Environment: TRADEFLOW_STACK_DIR (state; default <repo>/.stack),
# TRADEFLOW_REGISTRY_PORT (default: first free port from 18081),
# TRADEFLOW_APICURIO_VERSION (default 2.6.13.Final), TRADEFLOW_APICURIO_DIR
# (an unpacked app to use instead of fetching one).
set -euo pipefail

VERSION="${TRADEFLOW_APICURIO_VERSION:-2.6.13.Final}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${TRADEFLOW_STACK_DIR:-$REPO/.stack}"
STATE="$STACK_DIR/registry"
TIMEOUT="${TRADEFLOW_STACK_TIMEOUT:-90}"
API=/apis/ccompat/v7

die() {
    echo "registry.sh: error: $*" >&2
    exit 1
}
say() { echo "registry.sh: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

live_pid() {
    local pid
    [ -s "$STATE/registry.pid" ] || return 1
    pid="$(cat "$STATE/registry.pid")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

app_dir() {
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}"
    echo "${TRADEFLOW_APICURIO_DIR:-$cache/tradeflow/apicurio-registry-$VERSION}"
}

# The runner jar of the unpacked app: quarkus-run.jar (3.x) or
# apicurio-registry-app-*-runner.jar (2.x).
runner_jar() {
    local d="$1"
    if [ -f "$d/quarkus-run.jar" ]; then
        echo "$d/quarkus-run.jar"
    else
        ls "$d"/*-runner.jar 2>/dev/null | head -1
    fi
}

ensure_app() {
    local dir tgz m2
    dir="$(app_dir)"
    if [ -f "$dir/.complete" ] && [ -n "$(runner_jar "$dir")" ]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found and no app in $dir (install Maven, or set TRADEFLOW_APICURIO_DIR)"
    say "fetching io.apicurio:apicurio-registry-app:$VERSION from Maven Central (once, ~150 MB)"
    mvn -q -B dependency:get -Dtransitive=false \
        -Dartifact="io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all" >&2 ||
        die "mvn could not fetch io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all"
    m2="${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}"
    tgz="$m2/io/apicurio/apicurio-registry-app/$VERSION/apicurio-registry-app-$VERSION-all.tar.gz"
    [ -f "$tgz" ] || die "fetched, but $tgz is missing (set MAVEN_REPO_LOCAL?)"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    tar xzf "$tgz" -C "$dir.tmp" || die "cannot unpack $tgz"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    touch "$dir/.complete"
}

cmd_up() {
    local pid port jar
    mkdir -p "$STATE"
    if pid="$(live_pid)"; then
        port="$(cat "$STATE/registry.port")"
        say "already running (pid $pid, port $port)"
        echo "export TRADEFLOW_REGISTRY_URL=http://127.0.0.1:$port$API"
        return 0
    fi
    command -v java >/dev/null 2>&1 || die "java not found (Java 17 runs Apicurio Registry $VERSION)"
    ensure_app
    jar="$(runner_jar "$(app_dir)")"
    [ -n "$jar" ] || die "no runner jar in $(app_dir)"
    port="${TRADEFLOW_REGISTRY_PORT:-}"
    if [ -z "$port" ]; then
        port=18081
        while port_open "$port"; do port=$((port + 1)); done
    elif port_open "$port"; then
        die "port $port is in use"
    fi
    echo "$port" >"$STATE/registry.port"
    # In-memory storage is the default of apicurio-registry-app; the
    # registry forgets everything when it stops.
    (cd "$STATE" && exec java -Xmx384m -XX:+UseSerialGC \
        -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
        -Dquarkus.management.enabled=false -Dquarkus.log.level=WARN \
        -jar "$jar" >"$STATE/registry.log" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$STATE/registry.pid"
    local t0=$SECONDS
    until curl -fsS -m 2 "http://127.0.0.1:$port$API/subjects" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -20 "$STATE/registry.log" >&2
            die "Apicurio Registry exited during start-up (log: $STATE/registry.log)"
        fi
        if [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then
            tail -20 "$STATE/registry.log" >&2
            kill "$pid" 2>/dev/null || true
            die "Apicurio Registry did not answer within $TIMEOUT s"
        fi
        sleep 0.5
    done
    say "Apicurio Registry $VERSION up in $((SECONDS - t0)) s on 127.0.0.1:$port (pid $pid)"
    echo "export TRADEFLOW_REGISTRY_URL=http://127.0.0.1:$port$API"
}

cmd_down() {
    local pid i
    if ! pid="$(live_pid)"; then
        say "not running"
        rm -f "$STATE/registry.pid"
        return 0
    fi
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/registry.pid"
    say "stopped"
}

cmd_status() {
    local pid
    if pid="$(live_pid)"; then
        echo "registry: running (pid $pid) at http://127.0.0.1:$(cat "$STATE/registry.port")$API"
    else
        echo "registry: not running"
        return 1
    fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
    sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
