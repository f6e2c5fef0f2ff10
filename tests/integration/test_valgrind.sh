#!/usr/bin/env bash
# The core paths under valgrind's memcheck: tradeflow-produce publishing CSV
# and JSON Lines files, and tradeflow-aggregate consuming them into
# PostgreSQL (decode, batch, apply, settle). Any memcheck error or definite
# leak fails the test. Skipped (exit 77) in sanitizer builds, where valgrind
# cannot run.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
case "${TF_SANITIZE:-OFF}" in ON | on | 1 | TRUE | true) echo "skipped: sanitizer build"; exit 77 ;; esac
command -v valgrind >/dev/null || fail "valgrind is not installed (deploy/install-deps.sh)"
tf_require_stack
tf_new_db valgrind
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
D="$TF_SOURCE_DIR/tests/integration/agg"
TC="$(tf_topic vgc)"
TI="$(tf_topic vgi)"
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-origins=yes)
"${VG[@]}" --log-file="$W/produce.%p.log" "$(tf_bin tradeflow-produce)" --kind customs \
    --topic "$TC" --partitions 3 --quiet "$D/semantics1.csv" "$D/semantics2.csv" ||
    { cat "$W"/produce.*.log >&2; fail "tradeflow-produce under valgrind exited $?"; }
"${VG[@]}" --log-file="$W/produce2.%p.log" "$(tf_bin tradeflow-produce)" --kind investment \
    --topic "$TI" --partitions 3 --quiet "$D/semantics_inv.jsonl" ||
    { cat "$W"/produce2.*.log >&2; fail "tradeflow-produce (JSONL) under valgrind exited $?"; }
timeout "$(tf_timeout 300)" "${VG[@]}" --log-file="$W/agg.%p.log" "$(tf_bin tradeflow-aggregate)" \
    --exit-at-end -g "grp-$TC" -t "$TC" -t "$TI" --log-level warning ||
    { cat "$W"/agg.*.log >&2; fail "tradeflow-aggregate under valgrind exited $?"; }
check_oracle "$W" --customs "$D/semantics1.csv" --customs "$D/semantics2.csv" \
    --investment "$D/semantics_inv.jsonl"
echo "ok: valgrind memcheck clean for produce (CSV, JSONL) and aggregate"
echo "1 passed, 0 failed"
