#!/usr/bin/env bash
# deploy/install-deps.sh - installs what a Debian 12 or 13 machine lacks to
# build, test and demo tradeflow, then a Python virtualenv for independent
# checks.
#
# Idempotent and quiet: apt is not touched at all when every package is
# present, pip not when the virtualenv already has its packages.
#
#   deploy/install-deps.sh [--no-python]
#
# Runs as root (CI) or through sudo. TF_VENV overrides the virtualenv path
# (default <repo>/.venv).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TF_VENV:-$REPO/.venv}"
want_python=1
[ "${1:-}" = "--no-python" ] && want_python=0

say() { echo "install-deps: $*" >&2; }
die() {
    echo "install-deps: error: $*" >&2
    exit 1
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

java_major() {
    command -v java >/dev/null 2>&1 || return 1
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1
}

command -v dpkg-query >/dev/null 2>&1 || die "this script knows Debian/Ubuntu (dpkg + apt) only; see docs/stack.md for the package list"

# What differs between the releases: Debian 12 (bookworm) has PostgreSQL 15,
# clang 14 and OpenJDK 17; Debian 13 (trixie) PostgreSQL 17, clang 19 and
# OpenJDK 21 (no 17). Anything else is taken as Debian 12.
codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
case "$codename" in
    trixie) pg_major=17 clang_rt=libclang-rt-19-dev jdk=openjdk-21-jdk-headless ;;
    *) pg_major=15 clang_rt=libclang-rt-14-dev jdk=openjdk-17-jdk-headless ;;
esac

pkgs=(build-essential cmake pkg-config librdkafka-dev libavro-dev libpq-dev
    kcat libjansson-dev libcsv-dev libcurl4-openssl-dev libmicrohttpd-dev prometheus
    prometheus-alertmanager clang "$clang_rt" valgrind python3 python3-venv util-linux help2man
    chromium openssl curl man-db systemd time iso-codes)
# file: CPack's dpkg-shlibdeps step needs it (the .deb's Depends).
pkgs+=(file)
missing=()
for p in "${pkgs[@]}"; do
    installed "$p" || missing+=("$p")
done
# Any PostgreSQL server package of the release's version will do (the
# metapackage may be absent).
[ -x "/usr/lib/postgresql/$pg_major/bin/initdb" ] || missing+=("postgresql-$pg_major")
# A JDK only when no Java 17+ is on the PATH; Maven only when mvn is absent.
jv="$(java_major || true)"
if [ -z "$jv" ] || [ "$jv" -lt 17 ]; then missing+=("$jdk"); fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)

if [ ${#missing[@]} -gt 0 ]; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing packages (${missing[*]}) and neither root nor sudo"
        SUDO=(sudo)
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get -qq update >/dev/null || die "apt-get update failed"
    "${SUDO[@]}" apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
fi

[ "$want_python" = 1 ] || exit 0

# The independent checks use PyPI's fastavro, confluent-kafka and psycopg:
# Debian's python3-* packages are importable only by /usr/bin/python3, and
# the python3 on the PATH may be another interpreter (pyenv).
py_mods='import fastavro, confluent_kafka, psycopg'
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$py_mods" 2>/dev/null; then
    exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (apt-get install python3-venv?)"
fi
say "installing fastavro, confluent-kafka, psycopg into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    fastavro confluent-kafka 'psycopg[binary]' >&2 ||
    die "pip install into $VENV failed (is PyPI reachable?)"
"$VENV/bin/python" -c "$py_mods" || die "the virtualenv $VENV still lacks $py_mods"
