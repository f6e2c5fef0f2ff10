#!/usr/bin/env bash
# Scale-out: two consumers in one group share the partitions of a 6-partition
# topic and update the same reporter's rankings concurrently (serialised in
# PostgreSQL by ordered advisory locks): the result equals the oracle, i.e.
# what one consumer computes.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_group
W="$(mktemp -d)"
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
TC="$(tf_topic group)"
GEN="$TF_SOURCE_DIR/producers/tradeflow-genfeed"
"$GEN" --kind customs --format csv --scale 1 --seed 11 --out "$W/a.csv"
produce customs "$TC" "$W/a.csv"

AGG="$(tf_bin tradeflow-aggregate)"
"$AGG" --exit-at-end -g "grp-$TC" -t "$TC" --batch-size 2000 --log-level notice 2>"$W/c1.log" &
p1=$!
"$AGG" --exit-at-end -g "grp-$TC" -t "$TC" --batch-size 2000 --log-level notice 2>"$W/c2.log" &
p2=$!
wait "$p1" || { cat "$W/c1.log" >&2; fail "consumer 1 failed"; }
wait "$p2" || { cat "$W/c2.log" >&2; fail "consumer 2 failed"; }
grep -h "done:" "$W/c1.log" "$W/c2.log" >&2 || true
check_oracle "$W" --customs "$W/a.csv"
echo "1 passed, 0 failed"
