# agg_lib.sh - helpers for the tradeflow-aggregate integration tests.
# Source after tests/integration/lib.sh (tf_require_stack, tf_new_db, tf_topic,
# tf_bin, $TF_PYTHON).

TF_ORACLE="$TF_SOURCE_DIR/tests/oracle/tf_oracle.py"
TF_COMPARE="$TF_SOURCE_DIR/tests/oracle/compare.py"

# fail MSG...: an alias of lib.sh's tf_fail (kept for the existing tests).
fail() { tf_fail "$@"; }

# produce KIND TOPIC FILE... : publishes files to TOPIC (6 partitions).
produce() {
    local kind="$1" topic="$2"
    shift 2
    "$(tf_bin tradeflow-produce)" --kind "$kind" --topic "$topic" --partitions 6 --quiet "$@" ||
        fail "tradeflow-produce $kind $* exited $?"
}

# aggregate GROUP TOPIC... [-- extra args]: runs the consumer until caught up.
aggregate() {
    local group="$1"
    shift
    local args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        args+=(-t "$1")
        shift
    done
    [ "${1:-}" = "--" ] && shift
    timeout "${TF_AGG_TIMEOUT:-180}" "$(tf_bin tradeflow-aggregate)" --exit-at-end -g "$group" \
        --log-level "${TF_AGG_LOG:-notice}" "${args[@]}" "$@" ||
        fail "tradeflow-aggregate exited $?"
}

# dump_reporting DIR: writes DIR/actual_ranking.csv and DIR/actual_monthly.csv
# in the oracle's format (see tests/oracle/compare.py).
dump_reporting() {
    local dir="$1"
    psql -X -At -v ON_ERROR_STOP=1 -c "copy (select dataset, reporter, flow, basis,
        to_char(period, 'YYYY-MM-DD'), level, partner, rank, value_usd,
        share_pct, prev_year_value_usd, yoy_pct, share_change_pp
        from reporting.partner_ranking
        order by dataset, reporter, flow, basis, period, level, partner)
        to stdout with (format csv)" >"$dir/actual_ranking.csv" || fail "dump ranking"
    psql -X -At -v ON_ERROR_STOP=1 -c "copy (select dataset, reporter, partner, flow,
        to_char(period, 'YYYY-MM-DD'), value_usd, ytd_value_usd
        from reporting.partner_monthly
        order by dataset, reporter, partner, flow, period)
        to stdout with (format csv)" >"$dir/actual_monthly.csv" || fail "dump monthly"
}

# check_oracle DIR ORACLE-ARGS...: the reporting views equal the oracle's
# independently computed truth, to the cent.
check_oracle() {
    local dir="$1"
    shift
    "$TF_PYTHON" "$TF_ORACLE" -q "$@" --ranking-out "$dir/expected_ranking.csv" \
        --monthly-out "$dir/expected_monthly.csv" || fail "oracle failed"
    dump_reporting "$dir"
    [ "$(wc -l <"$dir/expected_ranking.csv")" -gt 1 ] || fail "oracle produced no ranking rows"
    [ "$(wc -l <"$dir/expected_monthly.csv")" -gt 1 ] || fail "oracle produced no monthly rows"
    "$TF_PYTHON" "$TF_COMPARE" "$dir/expected_ranking.csv" "$dir/actual_ranking.csv" ||
        fail "partner_ranking differs from the oracle"
    "$TF_PYTHON" "$TF_COMPARE" "$dir/expected_monthly.csv" "$dir/actual_monthly.csv" ||
        fail "partner_monthly differs from the oracle"
    echo "ok: reporting views equal the oracle ($(wc -l <"$dir/actual_ranking.csv") ranking rows)"
}

# q SQL: one value from PostgreSQL.
q() {
    psql -X -At -v ON_ERROR_STOP=1 -c "$1" || fail "query failed: $1"
}

# expect DESCRIPTION ACTUAL EXPECTED: an alias of lib.sh's tf_expect.
expect() { tf_expect "$@"; }

# split_feed FILE N PREFIX: splits a CSV feed (no quoted newlines, as the
# generator writes) into N parts PREFIX1.csv .. PREFIXN.csv, each with the
# header. Parts of one generated feed never carry two different records with
# the same record_id and revision, so the truth does not depend on the order
# in which partitions are read.
split_feed() {
    local file="$1" n="$2" prefix="$3"
    local total per
    total=$(($(wc -l <"$file") - 1))
    per=$(((total + n - 1) / n))
    awk -v per="$per" -v prefix="$prefix" -v n="$n" '
        NR == 1 { header = $0; for (i = 1; i <= n; i++) print header > (prefix i ".csv"); next }
        { part = int((NR - 2) / per) + 1; print >> (prefix part ".csv") }' "$file"
}

# feed_files LOG TOPIC "PRODUCE-ARGS" FILE...: publishes the files one after
# another, 2 s apart, like a feed; a file whose transaction failed (broker
# restarted, ...) is sent again until it succeeds (30 attempts), as an
# operator would. Attempts are logged to LOG; a file still not published
# after 30 attempts fails the caller (tf_fail).
feed_files() {
    local log="$1" topic="$2" extra="$3" f attempt sent
    shift 3
    for f in "$@"; do
        sent=0
        for attempt in $(seq 1 30); do
            # shellcheck disable=SC2086 # extra holds several arguments
            if "$(tf_bin tradeflow-produce)" --kind customs --topic "$topic" --partitions 6 \
                $extra --quiet "$f" 2>>"$log"; then
                sent=1
                break
            fi
            echo "re-sending $f (attempt $attempt)" >>"$log"
            sleep 1
        done
        [ "$sent" = 1 ] || tf_fail "$f not published after 30 attempts (log: $log)"
        sleep 2
    done
}

# offsets_at_end GROUP TOPIC...: true when, for every partition of each TOPIC
# (as the broker lists them, read by kcat), the offset GROUP stored in
# PostgreSQL (tradeflow.consumer_offsets) is the partition's end offset, past
# the last transaction's commit marker (tradeflow-aggregate stores the end
# offset when it reaches a partition's end). Prints what is off on stderr
# when AGG_OFFSETS_VERBOSE=1.
offsets_at_end() {
    local group="$1" t p np end stored behind=0
    shift
    for t in "$@"; do
        np="$(kcat -L -b "$TRADEFLOW_BROKERS" -t "$t" -m 10 2>/dev/null |
            sed -n "s/.*topic \"$t\" with \([0-9]*\) partitions.*/\1/p")"
        [ -n "$np" ] && [ "$np" -gt 0 ] || { [ "${AGG_OFFSETS_VERBOSE:-0}" = 0 ] || echo "$t: no partitions" >&2; return 1; }
        for ((p = 0; p < np; p++)); do
            end="$(kcat -Q -b "$TRADEFLOW_BROKERS" -t "$t:$p:-1" 2>/dev/null | awk '{print $NF}')"
            stored="$(q "select coalesce(max(next_offset), -1) from tradeflow.consumer_offsets
                         where group_id = '$group' and topic = '$t' and partition = $p")"
            # (An empty partition has nothing to store: -1.)
            [ "$end" = 0 ] && [ "$stored" = -1 ] && stored=0
            if ! [[ "$end" =~ ^[0-9]+$ ]] || [ "$stored" != "$end" ]; then
                [ "${AGG_OFFSETS_VERBOSE:-0}" = 0 ] || echo "$t [$p]: stored $stored, end ${end:-?}" >&2
                behind=1
            fi
        done
    done
    return $behind
}

# kafka_count TOPIC...: the messages in the TOPICs, read by kcat
# (read_committed: aborted transactions do not count).
kafka_count() {
    local t n=0 c
    for t in "$@"; do
        c="$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$t" -X isolation.level=read_committed -e -q -f 'x\n' | wc -l)" ||
            tf_fail "kcat could not read $t"
        n=$((n + c))
    done
    echo "$n"
}

# done_stat LOG NAME: the count NAME (consumed, applied, duplicates,
# batches, ...) of the last "done:" line tradeflow-aggregate wrote to LOG.
done_stat() {
    local v
    v="$(sed -n "s/.*done:.*[ ,]$2 \([0-9][0-9]*\).*/\1/p" "$1" | tail -1)"
    [ -n "$v" ] || tf_fail "no '$2' count in a 'done:' line of $1"
    echo "$v"
}
