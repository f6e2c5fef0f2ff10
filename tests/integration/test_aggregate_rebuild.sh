#!/usr/bin/env bash
# Editing the group reference table and `tradeflow-aggregate rebuild`
# (docs/reporting.md, "Groups"): the group level and every ranking are
# recomputed with the edited memberships, and later batches use them too.
# Checked against the independent oracle given the same memberships.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_rebuild
D="$TF_SOURCE_DIR/tests/integration/agg"
tf_new_workdir W
TC="$(tf_topic customs)"

"$TF_PYTHON" "$TF_SOURCE_DIR/producers/tradeflow-genfeed" --kind customs --scale 0.05 \
    --years 2019-2020 --seed 7 -q --out "$W/feed.csv"
produce customs "$TC" "$W/feed.csv" "$D/semantics1.csv" "$D/semantics2.csv"
aggregate "grp-$TC" "$TC"
check_oracle "$W" --customs "$W/feed.csv" --customs "$D/semantics1.csv" \
    --customs "$D/semantics2.csv"

# A later Brexit, and KOR counted in ASEAN from 2020 (a what-if). No
# consumer runs: rebuild alone must bring the reporting views in line.
psql -X -q -v ON_ERROR_STOP=1 -c "
    UPDATE tradeflow.group_members SET valid_to = DATE '2020-06-30' WHERE member = 'GBR';
    INSERT INTO tradeflow.group_members (group_code, member, valid_from)
    VALUES ('ASEAN', 'KOR', DATE '2020-01-01')" || fail "editing group_members"
"$(tf_bin tradeflow-aggregate)" rebuild --log-level warning || fail "rebuild exited $?"
psql -X -At -v ON_ERROR_STOP=1 -c "copy (select group_code, member, valid_from, valid_to
    from tradeflow.group_members) to stdout with (format csv)" >"$W/groups.csv" ||
    fail "dumping group_members"
expect "GBR in the EU until June 2020" \
    "$(q "select count(*) from reporting.partner_ranking where level = 'group' and partner = 'GBR' and period < '2020-07-01'")" 0
expect "no KOR of its own at the group level in 2020" \
    "$(q "select count(*) from reporting.partner_ranking where level = 'group' and partner = 'KOR' and period >= '2020-01-01'")" 0
check_oracle "$W" --groups "$W/groups.csv" --customs "$W/feed.csv" \
    --customs "$D/semantics1.csv" --customs "$D/semantics2.csv"

# New batches after the edit use the edited memberships (a revision that
# moves a record to KOR, and new records).
produce customs "$TC" "$D/semantics3.csv" "$D/semantics4.csv"
aggregate "grp-$TC" "$TC"
check_oracle "$W" --groups "$W/groups.csv" --customs "$W/feed.csv" \
    --customs "$D/semantics1.csv" --customs "$D/semantics2.csv" \
    --customs "$D/semantics3.csv" --customs "$D/semantics4.csv"
echo "1 passed, 0 failed"
