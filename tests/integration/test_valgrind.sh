#!/usr/bin/env bash
# The core paths under valgrind's memcheck: tradeflow-produce publishing CSV
# and JSON Lines files, and tradeflow-aggregate consuming them into
# PostgreSQL (decode, batch, apply, settle). Any memcheck error or definite
# leak fails the test. Then tradeflow-aggregate's threads under helgrind. Skipped (exit 77) in sanitizer builds, where valgrind
# cannot run.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
case "${TF_SANITIZE:-OFF}" in ON | on | 1 | TRUE | true) echo "skipped: sanitizer build"; exit 77 ;; esac
command -v valgrind >/dev/null || fail "valgrind is not installed (deploy/install-deps.sh)"
tf_require_stack
tf_new_db valgrind
tf_new_workdir W
D="$TF_SOURCE_DIR/tests/integration/agg"
TC="$(tf_topic vgc)"
TI="$(tf_topic vgi)"
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-origins=yes)
"${VG[@]}" --log-file="$W/produce.%p.log" "$(tf_bin tradeflow-produce)" --kind customs \
    --topic "$TC" --partitions 3 --quiet "$D/semantics1.csv" "$D/semantics2.csv" ||
    { rc=$?; cat "$W"/produce.*.log >&2; fail "tradeflow-produce under valgrind exited $rc"; }
"${VG[@]}" --log-file="$W/produce2.%p.log" "$(tf_bin tradeflow-produce)" --kind investment \
    --topic "$TI" --partitions 3 --quiet "$D/semantics_inv.jsonl" ||
    { rc=$?; cat "$W"/produce2.*.log >&2; fail "tradeflow-produce (JSONL) under valgrind exited $rc"; }
timeout "$(tf_timeout 300)" "${VG[@]}" --log-file="$W/agg.%p.log" "$(tf_bin tradeflow-aggregate)" \
    --exit-at-end -g "grp-$TC" -t "$TC" -t "$TI" --log-level warning ||
    { rc=$?; cat "$W"/agg.*.log >&2; fail "tradeflow-aggregate under valgrind exited $rc"; }
check_oracle "$W" --customs "$D/semantics1.csv" --customs "$D/semantics2.csv" \
    --investment "$D/semantics_inv.jsonl"
echo "ok: valgrind memcheck clean for produce (CSV, JSONL) and aggregate"

# helgrind: tradeflow-aggregate's consumer thread and its apply thread hand
# batches over (tf_agg); replayed by another group in batches of 3 records,
# so that many hand-overs happen while a batch is in flight. Any race, lock
# order or pthread API error outside librdkafka/p11-kit (helgrind.supp)
# fails; the replay changes nothing.
supp=(--suppressions="$TF_SOURCE_DIR/tests/integration/helgrind.supp")
# (Only where this valgrind knows the kind: ask it with a trivial run.)
if valgrind --quiet --tool=helgrind \
    --suppressions="$TF_SOURCE_DIR/tests/integration/helgrind-dubious.supp" true 2>/dev/null; then
    supp+=(--suppressions="$TF_SOURCE_DIR/tests/integration/helgrind-dubious.supp")
fi
timeout "$(tf_timeout 300)" valgrind --quiet --tool=helgrind --error-exitcode=98 \
    "${supp[@]}" \
    --log-file="$W/hg.%p.log" "$(tf_bin tradeflow-aggregate)" --exit-at-end \
    -g "grp2-$TC" -t "$TC" -t "$TI" --batch-size 3 --log-level warning ||
    { rc=$?; cat "$W"/hg.*.log >&2; fail "tradeflow-aggregate under helgrind exited $rc"; }
check_oracle "$W" --customs "$D/semantics1.csv" --customs "$D/semantics2.csv" \
    --investment "$D/semantics_inv.jsonl"
echo "ok: helgrind clean for tradeflow-aggregate's two threads"
echo "1 passed, 0 failed"
