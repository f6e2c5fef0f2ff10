#!/usr/bin/env bash
# deploy/debian13.sh - the test suite on Debian 13 (trixie), from a Debian 12
# (or any Debian) host, as root: a trixie root made with mmdebstrap from
# Debian's archive, then deploy/install-deps.sh, the build, the unit tests
# and the integration suite inside it, against that root's own PostgreSQL 17,
# OpenJDK 21 and librdkafka 2.8.0 (Kafka from the host's jar cache).
#
#   deploy/debian13.sh [--prepare] [--shell] [--run CMD] [--refresh] [-- TEST.SH-ARGS...]
#
#   (no option)   run `deploy/test.sh --quick --no-deps` in the root, after
#                 install-deps (default test.sh arguments: --quick)
#   --prepare     only make the root and run install-deps in it
#   --shell       an interactive shell in the root, with everything mounted
#   --run CMD     run the shell command CMD in /src instead of the tests
#                 (e.g. --run deploy/demo.sh)
#   --refresh     make the root anew (it is otherwise cached)
#
# The root is cached in TF_DEBIAN13_CACHE (default /var/cache/tradeflow),
# as debian13-<hash of the base package list>; install-deps.sh adds the
# rest inside it on each run (nothing to do once present), so a package that
# install-deps.sh gains is installed there too. The work tree (without
# build*/, .venv, .stack*) is copied to /src in the root, so the root's
# build/ never mixes with the host's. The host's ~/.cache/tradeflow (Kafka
# jars) is bind-mounted; proc, sys, dev, dev/pts and dev/shm are mounted and
# unmounted on exit. The root shares the host's network: the test stack
# inside picks free ports like test.sh does (TF_TEST_KAFKA_PORT /
# TF_TEST_PG_PORT are passed through). TF_DEBIAN_MIRROR names another
# mirror than mmdebstrap's default.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE=trixie
# What install-deps.sh needs to run at all, and git (a checkout has it;
# deploy/package-test.sh needs it); install-deps.sh installs the rest itself.
BASE_PKGS=(ca-certificates python3 python3-venv procps iproute2 git)

die() {
    echo "debian13.sh: error: $*" >&2
    exit 1
}
say() { echo "debian13.sh: $*" >&2; }

mode=test
refresh=0
test_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --prepare) mode=prepare ;;
        --shell) mode=shell ;;
        --run) mode=run; run_cmd="${2:?--run needs a command}"; shift ;;
        --refresh) refresh=1 ;;
        --) shift; test_args=("$@"); break ;;
        -h | --help) sed -n '2,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
[ ${#test_args[@]} -gt 0 ] || test_args=(--quick)

[ "$(id -u)" -eq 0 ] || die "needs root (chroot, mount)"
if ! command -v mmdebstrap >/dev/null 2>&1; then
    say "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends mmdebstrap >/dev/null ||
        { apt-get -qq update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends mmdebstrap >/dev/null; } ||
        die "apt-get install mmdebstrap failed"
fi

CACHE="${TF_DEBIAN13_CACHE:-/var/cache/tradeflow}"
key="$(printf '%s\n' "$SUITE" "${TF_DEBIAN_MIRROR:-}" "${BASE_PKGS[@]}" | sha256sum | cut -c1-12)"
ROOT="$CACHE/debian13-$key"
JARS_HOST="${XDG_CACHE_HOME:-$HOME/.cache}/tradeflow"
mkdir -p "$CACHE" "$JARS_HOST"

# One run per root at a time.
exec 6>"$ROOT.lock"
flock -w 1800 6 || die "another debian13.sh is using $ROOT"

mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" 2>/dev/null ||
            say "could not unmount ${mounted[$i]}"
    done
}
trap cleanup EXIT

if [ "$refresh" = 1 ] && [ -d "$ROOT" ]; then
    say "--refresh: removing $ROOT"
    rm -rf --one-file-system "$ROOT"
fi
if [ ! -f "$ROOT/.complete" ]; then
    t0=$SECONDS
    say "making the $SUITE root $ROOT with mmdebstrap (once)"
    rm -rf --one-file-system "$ROOT.tmp"
    # shellcheck disable=SC2086
    mmdebstrap --quiet --variant=apt --include="$(
        IFS=,
        echo "${BASE_PKGS[*]}"
    )" "$SUITE" "$ROOT.tmp" ${TF_DEBIAN_MIRROR:-} >"$CACHE/debian13-$key.log" 2>&1 ||
        { tail -n 20 "$CACHE/debian13-$key.log" >&2; die "mmdebstrap failed (log: $CACHE/debian13-$key.log)"; }
    touch "$ROOT.tmp/.complete"
    rm -rf --one-file-system "$ROOT"
    mv "$ROOT.tmp" "$ROOT"
    say "root made in $((SECONDS - t0)) s"
fi

mnt() {
    # mnt TARGET MOUNT-ARGS...: mounts and remembers it for the clean-up.
    local target="$ROOT$1"
    shift
    mkdir -p "$target"
    mount "$@" "$target" || die "mount $* $target failed"
    mounted+=("$target")
}
mnt /proc -t proc proc
mnt /sys -t sysfs sysfs
mnt /dev --bind /dev
mnt /dev/pts --bind /dev/pts
mnt /dev/shm -t tmpfs -o mode=1777 tmpfs
mnt /root/.cache/tradeflow --bind "$JARS_HOST"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true

# The work tree, fresh each run: tracked and untracked files, not the host's
# builds, virtualenv, stacks or caches.
t0=$SECONDS
rm -rf --one-file-system "$ROOT/src"
mkdir -p "$ROOT/src"
tar -C "$REPO" --exclude='./build*' --exclude='./.venv' --exclude='./.stack*' \
    --exclude='./deploy/.m2' --exclude='./out' --exclude='./.git' -cf - . | tar -C "$ROOT/src" -xf -
say "work tree copied to $ROOT/src in $((SECONDS - t0)) s"

# The root's own environment: no host PATH entries (pyenv, Temurin).
in_root() {
    chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        CI="${CI:-}" TF_VENV=/opt/tradeflow-venv TF_PYTHON=/opt/tradeflow-venv/bin/python \
        TF_TEST_KAFKA_PORT="${TF_TEST_KAFKA_PORT:-}" TF_TEST_PG_PORT="${TF_TEST_PG_PORT:-}" \
        TF_CTEST_ARGS="${TF_CTEST_ARGS:-}" TF_CTEST_JOBS="${TF_CTEST_JOBS:-}" \
        TRADEFLOW_KAFKA_VERSION="${TRADEFLOW_KAFKA_VERSION:-}" \
        "$@"
}

# The host's own certificate authorities (a proxy's, say) and pip settings,
# so that pip inside reaches PyPI as the host does.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    in_root update-ca-certificates >/dev/null 2>&1 || say "update-ca-certificates failed in the root"
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"

t0=$SECONDS
in_root bash -c '. /etc/os-release; echo "debian13.sh: in the root: $PRETTY_NAME"' >&2
in_root bash -c 'cd /src && deploy/install-deps.sh' || die "deploy/install-deps.sh failed in the $SUITE root"
say "install-deps in the root: $((SECONDS - t0)) s"
in_root bash -c 'echo "debian13.sh: librdkafka $(pkg-config --modversion rdkafka), avro-c $(pkg-config --modversion avro-c), libpq $(pkg-config --modversion libpq), $(gcc --version | head -1), $(java -version 2>&1 | head -1), PostgreSQL $(ls /usr/lib/postgresql)"' >&2

case "$mode" in
    prepare) exit 0 ;;
    shell) in_root bash -c 'cd /src && exec bash -i' </dev/tty; exit $? ;;
    run) in_root bash -c "cd /src && $run_cmd" </dev/null; exit $? ;;
esac

# TRADEFLOW_KAFKA_VERSION unset (empty) means stack.sh's default.
in_root bash -c '[ -n "$TRADEFLOW_KAFKA_VERSION" ] || unset TRADEFLOW_KAFKA_VERSION
    [ -n "$TF_TEST_KAFKA_PORT" ] || unset TF_TEST_KAFKA_PORT
    [ -n "$TF_TEST_PG_PORT" ] || unset TF_TEST_PG_PORT
    [ -n "$TF_CTEST_JOBS" ] || unset TF_CTEST_JOBS
    cd /src && exec deploy/test.sh --no-deps "$@"' test.sh "${test_args[@]}" </dev/null || rc=$?
# The root's logs and JUnit files next to the host's.
mkdir -p "$REPO/build/test-logs"
rm -rf "$REPO/build/test-logs/debian13"
cp -r "$ROOT/src/build/test-logs" "$REPO/build/test-logs/debian13" 2>/dev/null || true
exit "${rc:-0}"
