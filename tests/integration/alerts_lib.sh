# alerts_lib.sh - helpers for the alert integration tests (issue 6).
# Source after tests/integration/lib.sh and agg_lib.sh.

TF_ALERTS_ORACLE="$TF_SOURCE_DIR/tests/oracle/alerts_oracle.py"
TF_ALERTS_PEER="$TF_SOURCE_DIR/tests/integration/alerts_peer.py"
TF_ALERTS_DATA="$TF_SOURCE_DIR/tests/integration/alerts"

# The active shifts of the table (not retracted), in alerts_oracle.py's format.
active_shifts_csv() {
    psql -X -At -v ON_ERROR_STOP=1 -c "copy (select dataset, reporter, flow, basis, level,
        to_char(period, 'YYYY-MM'), partner, old_rank, new_rank, value_usd
        from reporting.ranking_alerts a
        where kind = 'shift'
          and not exists (select 1 from reporting.ranking_alerts r where r.retracts = a.alert_id))
        to stdout with (format csv)" | LC_ALL=C sort || fail "dump active shifts"
}

# check_alerts_oracle DIR TOP ORACLE-ARGS...: the active shifts of the table
# equal the shifts computed independently from the oracle's ranking, and no
# shift is active twice; every retraction withdraws exactly one shift.
# value_usd is left out: a shift keeps the value it was detected with, while
# later records may move the value without changing the ranks (the exact
# test checks values where the data arrive at once).
check_alerts_oracle() {
    local dir="$1" top="$2"
    shift 2
    "$TF_PYTHON" "$TF_ORACLE" -q "$@" --ranking-out "$dir/oracle_ranking.csv" || fail "oracle"
    "$TF_PYTHON" "$TF_ALERTS_ORACLE" --top "$top" "$dir/oracle_ranking.csv" |
        cut -d, -f1-9 | LC_ALL=C sort >"$dir/expected_shifts.csv" || fail "alerts oracle"
    active_shifts_csv | cut -d, -f1-9 | LC_ALL=C sort >"$dir/actual_shifts.csv"
    [ -s "$dir/expected_shifts.csv" ] || fail "the alerts oracle expects no shift at all"
    diff "$dir/expected_shifts.csv" "$dir/actual_shifts.csv" >"$dir/shifts.diff" ||
        { head -20 "$dir/shifts.diff" >&2; fail "active shifts differ from the alerts oracle"; }
    expect "retractions withdrawing a non-shift or a shift twice" "$(q "select count(*) from (
        select r.retracts from reporting.ranking_alerts r left join reporting.ranking_alerts s
            on s.alert_id = r.retracts and s.kind = 'shift'
         where r.kind = 'retraction' group by r.retracts having count(*) > 1 or count(s.*) = 0) x")" 0
    echo "ok: active shifts equal the alerts oracle ($(wc -l <"$dir/actual_shifts.csv") shifts, top $top)"
}

# The ids of the alerts that must be delivered (not suppressed), one a line.
deliverable_ids() {
    q "select coalesce(string_agg(alert_id::text, ' ' order by alert_id), '') from reporting.ranking_alerts where not suppressed" |
        tr ' ' '\n' | sed '/^$/d'
}

# dump_topic TOPIC FILE: the decoded alerts topic (see alerts_peer.py dump).
dump_topic() {
    "$TF_PYTHON" "$TF_ALERTS_PEER" dump --topic "$1" --schema-dir "$TF_SOURCE_DIR/schemas" >"$2" ||
        fail "cannot read/decode topic $1"
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
    local what="$1" secs="$2"
    shift 2
    local end=$((SECONDS + secs))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || fail "timed out waiting for $what"
        sleep 0.2
    done
}

# json_ids FILE: the alert_id of each JSON line (tradeflow-alerts --json or
# alerts_peer.py listen), one a line, in order.
json_ids() {
    "$TF_PYTHON" -c 'import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        print(json.loads(line)["alert_id"])' "$1"
}
