#!/usr/bin/env bash
# tests/fuzz/run-fuzzers.sh BUILD_DIR [SECONDS]
#
# Configures a clang build with -DTF_FUZZ=ON -DTF_SANITIZE=ON into BUILD_DIR
# (unless it already is one), builds every fuzz_* target, and runs each
# libFuzzer target for SECONDS (default 30) on a copy of its seed corpus
# (tests/fuzz/corpus/<target>/, if any). Crash inputs are kept in
# BUILD_DIR/fuzz-artifacts/. Exits non-zero if any target fails.
set -euo pipefail
BUILD="${1:?usage: run-fuzzers.sh BUILD_DIR [SECONDS]}"
SECS="${2:-30}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
JOBS="${TF_FUZZ_JOBS:-2}"

if ! grep -q '^TF_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    command -v clang >/dev/null || { echo "run-fuzzers.sh: clang not found" >&2; exit 1; }
    CC=clang cmake -S "$SRC" -B "$BUILD" -DTF_FUZZ=ON -DTF_SANITIZE=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
mapfile -t targets < <(cmake --build "$BUILD" --target help | sed -n 's/^\.\.\. \(fuzz_[A-Za-z0-9_]*\).*/\1/p' | sort -u)
[ "${#targets[@]}" -gt 0 ] || { echo "run-fuzzers.sh: no fuzz_* targets in $BUILD" >&2; exit 1; }
cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" >/dev/null

mkdir -p "$BUILD/fuzz-artifacts"
pass=0
fail=0
for t in "${targets[@]}"; do
    exe="$(find "$BUILD" -name "$t" -type f -perm -u+x | head -1)"
    [ -n "$exe" ] || { echo "run-fuzzers.sh: $t was not built" >&2; fail=$((fail + 1)); continue; }
    work="$BUILD/fuzz-corpus/$t"
    mkdir -p "$work"
    seeds=()
    [ -d "$SRC/tests/fuzz/corpus/$t" ] && seeds=("$SRC/tests/fuzz/corpus/$t")
    echo "run-fuzzers.sh: $t for $SECS s" >&2
    if TRADEFLOW_SCHEMA_DIR="$SRC/schemas" \
        ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
        "$exe" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$BUILD/fuzz-artifacts/$t-" "$work" "${seeds[@]}" \
        >"$BUILD/fuzz-artifacts/$t.log" 2>&1; then
        echo "run-fuzzers.sh: $t ok: $(grep -E 'stat::number_of_executed_units' "$BUILD/fuzz-artifacts/$t.log" | awk '{print $2}') runs" >&2
        pass=$((pass + 1))
    else
        echo "run-fuzzers.sh: $t FAILED (log $BUILD/fuzz-artifacts/$t.log):" >&2
        grep -E 'ERROR|SUMMARY|Test unit written' "$BUILD/fuzz-artifacts/$t.log" | head -5 >&2 || true
        fail=$((fail + 1))
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
