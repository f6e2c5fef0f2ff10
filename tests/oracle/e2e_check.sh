#!/usr/bin/env bash
# tests/oracle/e2e_check.sh - end-to-end check of the real pipeline against
# the independent oracle: feeds -> tradeflow-produce -> Kafka ->
# tradeflow-aggregate --exit-at-end -> PostgreSQL reporting views, compared
# row by row with tests/oracle/tf_oracle.py.
#
#   tests/oracle/e2e_check.sh [--keep] [--customs FEED]... [--investment FEED]...
#
# Without feeds it generates a scale-1 customs CSV and investment JSONL
# (tradeflow-genfeed, --seed $TF_E2E_SEED, default 5) and adds the hand-written
# corner cases in tests/oracle/data/. Needs the stack's environment
# (eval "$(deploy/stack.sh env)": TRADEFLOW_BROKERS, PG*) and the binaries in
# $TF_BUILD_DIR/bin (default: build/). Everything is isolated: topics, consumer
# group and database are named after a unique id; the database is dropped at
# the end unless --keep (the topics stay; they are small).
# Exit status: 0 identical, 1 differences (printed), 2 setup/run failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BIN="${TF_BUILD_DIR:-$REPO/build}/bin"
PY="${PYTHON:-python3}"
KEEP=0
CUSTOMS=()
INVEST=()
while [ $# -gt 0 ]; do
    case "$1" in
    --keep) KEEP=1 ;;
    --customs) CUSTOMS+=("$2"); shift ;;
    --investment) INVEST+=("$2"); shift ;;
    *) echo "usage: $0 [--keep] [--customs FEED]... [--investment FEED]..." >&2; exit 2 ;;
    esac
    shift
done

fail() { echo "e2e_check: $*" >&2; exit 2; }
[ -n "${TRADEFLOW_BROKERS:-}" ] || fail "TRADEFLOW_BROKERS is not set: eval \"\$(deploy/stack.sh env)\""
for b in tradeflow-produce tradeflow-aggregate; do
    [ -x "$BIN/$b" ] || fail "$BIN/$b not found (set TF_BUILD_DIR)"
done

ID="tfe2e_$(date +%s)_$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/$ID.XXXX")"
MAINT_DB="${PGDATABASE:-postgres}"
cleanup() {
    if [ "$KEEP" = 0 ]; then
        dropdb --if-exists --maintenance-db="$MAINT_DB" "$ID" 2>/dev/null || true
        rm -rf "$WORK"
    else
        echo "e2e_check: kept database $ID and files in $WORK" >&2
    fi
}
trap cleanup EXIT

if [ ${#CUSTOMS[@]} -eq 0 ] && [ ${#INVEST[@]} -eq 0 ]; then
    seed="${TF_E2E_SEED:-5}"
    "$PY" "$REPO/producers/tradeflow-genfeed" -q --kind customs --seed "$seed" --out "$WORK/customs.csv"
    "$PY" "$REPO/producers/tradeflow-genfeed" -q --kind investment --seed "$seed" --out "$WORK/investment.jsonl"
    CUSTOMS=("$WORK/customs.csv" "$HERE/data/corner_customs.csv")
    INVEST=("$WORK/investment.jsonl" "$HERE/data/corner_investment.jsonl")
fi

createdb --maintenance-db="$MAINT_DB" "$ID" || fail "cannot create database $ID"

produce() { # KIND FEED
    local rc=0
    "$BIN/tradeflow-produce" --kind "$1" -t "$ID.$1" "$2" >>"$WORK/produce.log" 2>&1 || rc=$?
    # 0 = all published, 1 = some records rejected (the good ones published).
    if [ "$rc" -gt 1 ]; then
        cat "$WORK/produce.log" >&2
        fail "tradeflow-produce --kind $1 $2 exited $rc"
    fi
}
ORACLE_ARGS=()
for f in ${CUSTOMS[@]+"${CUSTOMS[@]}"}; do produce customs "$f"; ORACLE_ARGS+=(--customs "$f"); done
for f in ${INVEST[@]+"${INVEST[@]}"}; do produce investment "$f"; ORACLE_ARGS+=(--investment "$f"); done

# Both topics exist by now only if a feed of that kind was produced.
TOPICS=()
[ ${#CUSTOMS[@]} -gt 0 ] && TOPICS+=(-t "$ID.customs")
[ ${#INVEST[@]} -gt 0 ] && TOPICS+=(-t "$ID.investment")
PGDATABASE="$ID" timeout "${TF_E2E_TIMEOUT:-600}" "$BIN/tradeflow-aggregate" --exit-at-end \
    -g "$ID" "${TOPICS[@]}" --dlq-topic "$ID.dlq" --schema-dir "$REPO/schemas" \
    >"$WORK/aggregate.log" 2>&1 || { tail -20 "$WORK/aggregate.log" >&2; fail "tradeflow-aggregate failed"; }

# The exact queries documented in compare.py and docs/sample-data.md.
PGDATABASE="$ID" psql -X -At -v ON_ERROR_STOP=1 -c "copy (select dataset, reporter, flow, basis,
    to_char(period, 'YYYY-MM-DD'), level, partner, rank, value_usd,
    share_pct, prev_year_value_usd, yoy_pct, share_change_pp
    from reporting.partner_ranking
    order by dataset, reporter, flow, basis, period, level, partner)
    to stdout with (format csv)" >"$WORK/actual_ranking.csv"
PGDATABASE="$ID" psql -X -At -v ON_ERROR_STOP=1 -c "copy (select dataset, reporter, partner, flow,
    to_char(period, 'YYYY-MM-DD'), value_usd, ytd_value_usd
    from reporting.partner_monthly
    order by dataset, reporter, partner, flow, period)
    to stdout with (format csv)" >"$WORK/actual_monthly.csv"

"$PY" "$HERE/tf_oracle.py" -q "${ORACLE_ARGS[@]}" \
    --ranking-out "$WORK/expected_ranking.csv" --monthly-out "$WORK/expected_monthly.csv"

# Two empty tables compare equal: the oracle must have computed something.
for f in "$WORK/expected_ranking.csv" "$WORK/expected_monthly.csv"; do
    [ "$(wc -l <"$f")" -gt 1 ] || fail "the oracle produced no rows in $f"
done
rc1=0
rc2=0
"$PY" "$HERE/compare.py" "$WORK/expected_ranking.csv" "$WORK/actual_ranking.csv" || rc1=$?
"$PY" "$HERE/compare.py" "$WORK/expected_monthly.csv" "$WORK/actual_monthly.csv" || rc2=$?
rc=$((rc1 > rc2 ? rc1 : rc2))
if [ "$rc" = 0 ]; then
    echo "e2e_check: PASS (pipeline = oracle, to the cent)"
else
    # What was published and consumed, for the post-mortem.
    grep -h 'read .*published' "$WORK/produce.log" >&2 || true
    grep -h 'done: consumed' "$WORK/aggregate.log" >&2 || true
    echo "e2e_check: FAIL" >&2
fi
exit "$rc"
