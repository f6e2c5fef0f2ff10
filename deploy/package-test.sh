#!/usr/bin/env bash
# deploy/package-test.sh - builds the tradeflow .deb from a clean copy of the
# source tree, installs it with dpkg and runs the demo flow against the
# INSTALLED programs only, then removes the package again.
#
#   deploy/package-test.sh [--stack own|env|auto] [--keep] [--ctest]
#
#   --stack own   start a private stack (deploy/stack.sh up) in the work
#                 directory on ports TRADEFLOW_KAFKA_PORT (default 49292) and
#                 TRADEFLOW_PG_PORT (default 49632); stopped at the end (default)
#   --stack env   use the servers of the environment (TRADEFLOW_BROKERS, PG*)
#   --stack auto  env when TRADEFLOW_BROKERS and PGHOST are set, else own
#   --keep        keep the work directory (and the package installed)
#   --ctest       exit 77 (skipped) when not root or when TF_TEST_PACKAGE=0
#
# What it checks, each a failure when wrong:
#   1. a clean configure + build of a copy of the tree, `cpack -G DEB`;
#   2. the copy and its build directory are deleted before anything runs, so
#      the programs cannot fall back on the source tree's schemas/migrations;
#   3. `dpkg -i` on this machine (root needed; refused when a tradeflow
#      package is already installed), every file where it belongs;
#   4. from /tmp, with TRADEFLOW_SCHEMA_DIR / TRADEFLOW_MIGRATIONS_DIR unset:
#      tradeflow-aggregate migrate, tradeflow-genfeed, tradeflow-produce,
#      tradeflow-aggregate --exit-at-end, and ASEAN's Jan-Nov 2020 YTD value
#      (customs, CHN, total, group level) is exactly 609580000000.00;
#   5. `man tradeflow-aggregate` and `systemd-analyze verify` of the
#      installed units;
#   6. `dpkg --purge tradeflow` removes every file.
#
# Environment: TF_PKG_WORK (work directory, default a new /tmp/tf-pkgtest.*),
# TF_PKG_JOBS (build jobs, default 2).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stack_mode=own
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --stack) stack_mode="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --ctest)
        # ctest: 77 is "skipped" (SKIP_RETURN_CODE in tests/packaging.cmake).
        if [ "${TF_TEST_PACKAGE:-1}" = 0 ]; then
            echo "package-test: skipped (TF_TEST_PACKAGE=0)"
            exit 77
        fi
        if [ "$(id -u)" -ne 0 ]; then
            echo "package-test: skipped (dpkg -i needs root)"
            exit 77
        fi
        shift ;;
    -h | --help) sed -n '2,32s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "package-test: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$stack_mode" in
own | env) ;;
auto) if [ -n "${TRADEFLOW_BROKERS:-}" ] && [ -n "${PGHOST:-}" ]; then stack_mode=env; else stack_mode=own; fi ;;
*) echo "package-test: --stack own|env|auto" >&2; exit 2 ;;
esac

t_start=$SECONDS
phase_t=$SECONDS
say() { echo "package-test: $*" >&2; }
fail() {
    echo "package-test: FAIL: $*" >&2
    exit 1
}
# Prints the time the previous phase took and names the next one.
phase() {
    say "  ($((SECONDS - phase_t)) s)"
    phase_t=$SECONDS
    say "== $*"
}

[ "$(id -u)" -eq 0 ] || fail "dpkg -i needs root (this test is meant for a test machine)"
for c in cmake cpack dpkg dpkg-deb git psql man; do
    command -v "$c" >/dev/null 2>&1 || fail "$c not found"
done
if dpkg-query -W -f='${Status}' tradeflow 2>/dev/null | grep -q 'ok installed'; then
    fail "a tradeflow package is already installed here; this test would remove it (dpkg --purge tradeflow first)"
fi

WORK="${TF_PKG_WORK:-$(mktemp -d /tmp/tf-pkgtest.XXXXXX)}"
mkdir -p "$WORK"
# The stack's PostgreSQL runs as the postgres user, which must reach it.
chmod 755 "$WORK"
installed=0
stack_started=0
db_made=""
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

cleanup() {
    local rc=$?
    set +e
    if [ -n "$db_made" ]; then
        "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db_made" >/dev/null 2>&1
    fi
    if [ "$stack_started" = 1 ]; then
        TRADEFLOW_STACK_DIR="$WORK/stack" "$REPO/deploy/stack.sh" down >/dev/null 2>&1 ||
            say "stack.sh down failed (stack in $WORK/stack)"
    fi
    if [ "$installed" = 1 ] && [ "$keep" = 0 ]; then
        dpkg_locked --purge tradeflow >/dev/null 2>&1 || say "dpkg --purge tradeflow failed"
    fi
    if [ "$keep" = 0 ]; then
        rm -rf "$WORK"
    else
        say "kept $WORK (and the package, if installed)"
    fi
    if [ $rc -eq 0 ]; then
        say "PASS ($((SECONDS - t_start)) s)"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# dpkg does not wait for its lock (apt-get may hold it for minutes on a shared
# machine): try again while the lock is the reason.
dpkg_locked() {
    local i out
    for i in $(seq 1 120); do
        if out="$(dpkg "$@" 2>&1)"; then
            printf '%s\n' "$out"
            return 0
        fi
        if ! grep -qi 'lock' <<<"$out"; then
            printf '%s\n' "$out" >&2
            return 1
        fi
        [ "$i" = 1 ] && say "dpkg is locked by another process; waiting"
        sleep 5
    done
    printf '%s\n' "$out" >&2
    return 1
}

# ------------------------------------------------------------- 1. build
say "== copying the tracked files of $REPO"
SRC="$WORK/src"
BUILD="$WORK/build"
mkdir -p "$SRC"
# The tracked files as they are in the working tree (uncommitted changes
# included); a tracked file deleted in the tree is skipped.
# Outside a git checkout (a source tarball): everything but build and state
# directories.
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z --cached | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
        tar -xf - -C "$SRC"
else
    tar -C "$REPO" --exclude='./.git' --exclude='./build*' --exclude='./.stack*' --exclude='./.venv' \
        --exclude='./out' --exclude='./deploy/.m2' --exclude='./deploy/lib' -cf - . | tar -xf - -C "$SRC"
fi
[ -f "$SRC/CMakeLists.txt" ] || fail "copying the source tree failed"

phase "configuring and building (clean build directory $BUILD)"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
    -DTF_WERROR=ON -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >"$WORK/cmake.log" 2>&1 ||
    { tail -30 "$WORK/cmake.log" >&2; fail "cmake configure failed"; }
cmake --build "$BUILD" -j"${TF_PKG_JOBS:-2}" --target tf_package_targets >"$WORK/build.log" 2>&1 ||
    { grep -E 'error|Error' "$WORK/build.log" | head -30 >&2; fail "build failed"; }
[ -d "$BUILD/man" ] && ls "$BUILD"/man/*.1.gz >/dev/null 2>&1 ||
    fail "no man pages were generated (is help2man installed? deploy/install-deps.sh)"

phase "cpack -G DEB"
(cd "$BUILD" && cpack -G DEB >"$WORK/cpack.log" 2>&1) ||
    { tail -30 "$WORK/cpack.log" >&2; fail "cpack failed"; }
DEB="$(ls "$BUILD"/tradeflow_*.deb 2>/dev/null | head -1)"
[ -n "$DEB" ] || fail "cpack made no tradeflow_*.deb"
mv "$DEB" "$WORK/"
DEB="$WORK/$(basename "$DEB")"
dpkg-deb -I "$DEB" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/  \1:/p' >&2
depends="$(dpkg-deb -f "$DEB" Depends)"
# Debian 13 renamed some libraries for 64-bit time_t (libcurl4t64).
for lib in librdkafka1 libpq5 libjansson4 libcsv3 libcurl4 python3 iso-codes; do
    grep -qwE "$lib(t64)?" <<<"$depends" || fail "Depends lacks $lib: $depends"
done

# ------------------------------------------------------------- 2. no sources
# From here on nothing of the source tree or the build exists: the programs
# must find everything where the package put it.
rm -rf "$SRC" "$BUILD"
unset TRADEFLOW_SCHEMA_DIR TRADEFLOW_MIGRATIONS_DIR TF_SOURCE_DIR TF_BUILD_DIR
cd /tmp

# ------------------------------------------------------------- 3. install
phase "dpkg -i $(basename "$DEB")"
installed=1
dpkg_locked -i "$DEB" >"$WORK/dpkg.log" || fail "dpkg -i failed (dependencies? see above)"
for f in /usr/bin/tradeflow-produce /usr/bin/tradeflow-aggregate /usr/bin/tradeflow-relay \
    /usr/bin/tradeflow-alerts /usr/bin/tradeflow-genfeed \
    /usr/share/tradeflow/schemas/CustomsRecord.avsc /usr/share/tradeflow/migrations/001_core.sql \
    /usr/share/man/man1/tradeflow-aggregate.1.gz /lib/systemd/system/tradeflow-aggregate@.service \
    /lib/systemd/system/tradeflow-relay.service /lib/systemd/system/tradeflow-produce-live@.service \
    /etc/tradeflow/pgpass /etc/tradeflow/kafka.properties; do
    [ -e "$f" ] || fail "$f is not installed"
done
[ "$(stat -c %a /etc/tradeflow/pgpass)" = 600 ] || fail "/etc/tradeflow/pgpass is not mode 0600"
for b in /usr/bin/tradeflow-*; do
    head -c 4 "$b" | grep -q ELF || continue
    ! ldd "$b" | grep -q 'not found' || fail "$b: a shared library is missing: $(ldd "$b" | grep 'not found')"
done
/usr/bin/tradeflow-aggregate --version >&2

# ------------------------------------------------------------- 4. demo flow
if [ "$stack_mode" = own ]; then
    phase "starting a private stack in $WORK/stack"
    export TRADEFLOW_STACK_DIR="$WORK/stack"
    export TRADEFLOW_KAFKA_PORT="${TRADEFLOW_KAFKA_PORT:-49292}" TRADEFLOW_PG_PORT="${TRADEFLOW_PG_PORT:-49632}"
    stack_started=1
    "$REPO/deploy/stack.sh" up --fresh >"$WORK/stack.log" 2>&1 ||
        { tail -20 "$WORK/stack.log" >&2; fail "deploy/stack.sh up failed"; }
    eval "$("$REPO/deploy/stack.sh" env)"
else
    [ -n "${TRADEFLOW_BROKERS:-}" ] || fail "--stack env: TRADEFLOW_BROKERS is not set"
fi

phase "demo flow with the installed programs (from $(pwd))"
RUN="pkgtest$$$(date +%s)"
db_made="tf_$RUN"
export PGDATABASE="$db_made"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $db_made" >/dev/null || fail "cannot create database $db_made"
TOPIC="tradeflow.customs.$RUN"

/usr/bin/tradeflow-aggregate migrate >"$WORK/migrate.log" 2>&1 ||
    { cat "$WORK/migrate.log" >&2; fail "tradeflow-aggregate migrate failed"; }
"${PSQL[@]}" -tAc "SELECT 1 FROM pg_views WHERE schemaname = 'reporting' AND viewname = 'partner_ranking'" |
    grep -q 1 || fail "migrate did not create reporting.partner_ranking"

/usr/bin/tradeflow-genfeed --kind customs --format csv --out "$WORK/customs.csv" -q ||
    fail "tradeflow-genfeed failed"
say "  feed: $(($(wc -l <"$WORK/customs.csv") - 1)) records"
/usr/bin/tradeflow-produce --kind customs --topic "$TOPIC" -q "$WORK/customs.csv" ||
    fail "tradeflow-produce failed (exit $?)"
timeout 300 /usr/bin/tradeflow-aggregate --exit-at-end -g "pkgtest-$RUN" -t "$TOPIC" \
    --log-level warning >"$WORK/aggregate.log" 2>&1 ||
    { tail -20 "$WORK/aggregate.log" >&2; fail "tradeflow-aggregate --exit-at-end failed"; }

got="$("${PSQL[@]}" -tAc "
SELECT value_usd::numeric(20,2) FROM reporting.partner_ranking
 WHERE dataset = 'customs' AND reporter = 'CHN' AND flow = 'total' AND basis = 'ytd'
   AND level = 'group' AND partner = 'ASEAN' AND period = DATE '2020-11-01'")"
[ "$got" = "609580000000.00" ] ||
    fail "ASEAN Jan-Nov 2020 YTD (customs, CHN, total, group): expected 609580000000.00, got '${got}'"
say "  ASEAN Jan-Nov 2020 YTD = $got (expected 609580000000.00)"

# ------------------------------------------------------------- 5. man, units
phase "man pages and systemd units"
page="$(man -w tradeflow-aggregate 2>/dev/null)" || fail "man -w tradeflow-aggregate finds nothing"
[ "$page" = /usr/share/man/man1/tradeflow-aggregate.1.gz ] || fail "man finds $page, not the installed page"
MANWIDTH=80 man -P cat tradeflow-aggregate 2>/dev/null | grep -q -- '--exit-at-end' ||
    fail "man tradeflow-aggregate does not show the --exit-at-end option"
# Every installed program has its page (tradeflow-report too, once built).
for b in /usr/bin/tradeflow-*; do
    man -w "$(basename "$b")" >/dev/null 2>&1 || fail "no man page for $(basename "$b")"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    # Instances need no configuration file to be verified; the Documentation=
    # man: entries are checked with man, so they must exist too.
    out="$(systemd-analyze verify tradeflow-aggregate@pkgtest.service tradeflow-relay.service \
        tradeflow-produce-live@pkgtest.service tradeflow.target 2>&1)" ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify complains: $out"
    say "  systemd-analyze verify: 4 units clean"
else
    say "  systemd-analyze not found: units not verified"
fi

# ------------------------------------------------------------- 6. remove
phase "dpkg --purge tradeflow"
if [ "$keep" = 0 ]; then
    dpkg_locked --purge tradeflow >"$WORK/purge.log" || fail "dpkg --purge tradeflow failed"
    installed=0
    for f in /usr/bin/tradeflow-aggregate /usr/share/tradeflow /etc/tradeflow \
        /lib/systemd/system/tradeflow-aggregate@.service /usr/share/man/man1/tradeflow-aggregate.1.gz; do
        [ ! -e "$f" ] || fail "$f is still there after dpkg --purge"
    done
fi
say "  ($((SECONDS - phase_t)) s)"
