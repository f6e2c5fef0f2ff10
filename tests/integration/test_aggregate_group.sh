#!/usr/bin/env bash
# Scale-out: two consumers in one group share the partitions of a 6-partition
# topic and update the same reporter's rankings concurrently (serialised in
# PostgreSQL by ordered advisory locks). Required:
#   - both members hold partitions (their own logs say which), together all 6,
#     none twice;
#   - both apply batches, and their counts add up: consumed = applied = the
#     records of the feed (every record distinct: no revision, no duplicate),
#     so no record was read twice or lost between them;
#   - every partition's offset stored in PostgreSQL is at the partition's end;
#   - the result equals the oracle, i.e. what one consumer computes.
# The members start before the data arrive and the feed waits until both hold
# partitions, so the split cannot depend on which one joined first.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_group
tf_new_workdir W
TC="$(tf_topic group)"
tf_create_topic "$TC" 6
GEN="$TF_SOURCE_DIR/producers/tradeflow-genfeed"
"$GEN" --kind customs --format csv --scale 1 --seed 11 --revisions 0 --duplicates 0 -q \
    --out "$W/a.csv"
N=$(($(wc -l <"$W/a.csv") - 1))
[ "$(cut -d, -f1 "$W/a.csv" | sort | uniq -d | wc -l)" = 0 ] || fail "the feed repeats a record_id"

AGG="$(tf_bin tradeflow-aggregate)"
"$AGG" migrate --log-level warning || fail "migrate"
"$AGG" -g "grp-$TC" -t "$TC" --batch-size 2000 --log-level info 2>"$W/c1.log" &
p1=$!
"$AGG" -g "grp-$TC" -t "$TC" --batch-size 2000 --log-level info 2>"$W/c2.log" &
p2=$!

# owned LOG: the partitions a member holds now, from its assigned/revoked lines.
owned() {
    awk -v t="$TC" 'index($0, "assigned " t " [") || index($0, "revoked " t " [") {
            p = $0; sub(/.*\[/, "", p); sub(/\].*/, "", p)
            if (index($0, "assigned " t " [")) own[p] = 1; else delete own[p] }
        END { for (p in own) print p }' "$1" | sort -n | tr '\n' ' '
}
split_ok() {
    local a b
    kill -0 "$p1" && kill -0 "$p2" || fail "a member exited: $(tail -n 3 "$W/c1.log" "$W/c2.log")"
    a="$(owned "$W/c1.log")"
    b="$(owned "$W/c2.log")"
    [ -n "$a" ] && [ -n "$b" ] && [ "$(echo $a $b | tr ' ' '\n' | sort -n | tr '\n' ' ')" = "0 1 2 3 4 5 " ]
}
tf_wait_for "both members to hold partitions (c1: $W/c1.log, c2: $W/c2.log)" 60 split_ok
echo "ok: member 1 holds partitions $(owned "$W/c1.log")/ member 2 holds $(owned "$W/c2.log")"

produce customs "$TC" "$W/a.csv"
# Done when every partition's offset stored in PostgreSQL is at its end.
caught_up() { offsets_at_end "grp-$TC" "$TC"; }
tf_wait_for "every partition's stored offset at its end" 120 caught_up
echo "ok: every partition's offset stored in PostgreSQL is at its end"
split_ok || fail "the split changed while consuming: $(owned "$W/c1.log")/ $(owned "$W/c2.log")"
kill -TERM "$p1" "$p2"
wait "$p1" || { tail -20 "$W/c1.log" >&2; fail "consumer 1 exited $? after SIGTERM"; }
wait "$p2" || { tail -20 "$W/c2.log" >&2; fail "consumer 2 exited $? after SIGTERM"; }

done_count() { done_stat "$W/c$1.log" "$2"; }
declare -A sum=([consumed]=0 [applied]=0 [duplicates]=0)
for m in 1 2; do
    grep "done:" "$W/c$m.log" >&2 || fail "member $m logged no 'done:' line"
    v="$(done_count $m batches)"
    [ "$v" -ge 1 ] || fail "member $m applied no batch"
    v="$(done_count $m applied)"
    [ "$v" -ge 1 ] || fail "member $m applied no record"
    for k in consumed applied duplicates; do
        v="$(done_count $m $k)"
        sum[$k]=$((sum[$k] + v))
    done
done
expect "records consumed by the two members" "${sum[consumed]}" "$N"
expect "records applied by the two members" "${sum[applied]}" "$N"
expect "duplicates seen by the two members" "${sum[duplicates]}" 0
expect "facts stored" "$(q "select count(*) from tradeflow.facts")" "$N"
check_oracle "$W" --customs "$W/a.csv"
tf_report
