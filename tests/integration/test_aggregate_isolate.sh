#!/usr/bin/env bash
# Issue 14 item 1 and 2: nothing a feed contains may stall the aggregator.
#  (a) A deterministic database error in one batch (a CHECK constraint this
#      test adds to its own database, violated by two records among good
#      ones): the batch is split until the two are isolated; they go to the
#      dead-letter topic with SQLSTATE and message; the rest is applied
#      exactly once and its offsets stored; --exit-at-end exits 0.
#  (b) The overflow feed of the issue: 10,001 records of 9999999999999999.99
#      for one partner-month, good records before and after: every total is
#      exact (unconstrained numeric since migration 007), nothing is
#      dead-lettered, --exit-at-end exits.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_isolate
tf_new_workdir W
AGG="$(tf_bin tradeflow-aggregate)"
H='record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit'

# ---- (a) a constraint violated by two records of one batch ----------------
"$AGG" migrate --log-level warning || fail "migrate failed"
q "ALTER TABLE tradeflow.facts ADD CONSTRAINT tft_no_666 CHECK (value_usd <> 666.00)" >/dev/null
{
    echo "$H"
    for i in $(seq 1 40); do
        p=$(printf 'P%02d' $((i % 7)))
        v="$((i * 10)).25"
        case $i in 13 | 29) v=666.00 ;; esac
        echo "c$i,0,CHN,USA$p,export,2020-0$((i % 9 + 1)),,$v,,"
    done
} | sed 's/USAP/US/' >"$W/planted.csv"
# (partners US00..US06: valid codes; the two bad ones are c13 and c29)
grep -v ',666.00,' "$W/planted.csv" >"$W/planted_good.csv"
TA="$(tf_topic isolate)"
DLQ="$(tf_topic isolate_dlq)"
produce customs "$TA" "$W/planted.csv"
timeout "$(tf_timeout 120)" "$AGG" --exit-at-end -g "grp-$TA" -t "$TA" --dlq-topic "$DLQ" \
    --log-level notice 2>"$W/a.log" || { cat "$W/a.log" >&2; fail "aggregate (a) exited $?"; }
expect "facts applied (38 good of 40)" "$(q "select count(*) from tradeflow.facts")" 38
expect "the refused records are not in facts" \
    "$(q "select count(*) from tradeflow.facts where record_id in ('c13','c29')")" 0
kcat -C -b "$TRADEFLOW_BROKERS" -t "$DLQ" -e -q -f '%h\n' >"$W/a_headers.txt"
expect "dead letters" "$(grep -c 'tf.reason=' "$W/a_headers.txt")" 2
expect "dead letters with SQLSTATE 23514" "$(grep -c 'tf.sqlstate=23514' "$W/a_headers.txt")" 2
grep -q 'tf.reason=refused by the database: SQLSTATE 23514: .*tft_no_666' "$W/a_headers.txt" ||
    fail "no database reason in the headers: $(cat "$W/a_headers.txt")"
grep -q "tf.source.topic=$TA" "$W/a_headers.txt" || fail "no source topic header"
# The payload is the record, re-encoded: it decodes to c13 / c29.
kcat -C -b "$TRADEFLOW_BROKERS" -t "$DLQ" -e -q -f '%s\n' -D '' >/dev/null # (reachable)
"$TF_PYTHON" - "$TRADEFLOW_BROKERS" "$DLQ" >"$W/a_payloads.hex" <<'PY'
import subprocess, sys
out = subprocess.run(["kcat", "-C", "-b", sys.argv[1], "-t", sys.argv[2], "-e", "-q",
                      "-f", "%S %s\n"], capture_output=True, check=True).stdout
# "%S %s\n": payload length, space, payload bytes, newline
i = 0
while i < len(out):
    sp = out.index(b" ", i)
    n = int(out[i:sp])
    print(out[sp + 1:sp + 1 + n].hex())
    i = sp + 1 + n + 1
PY
"$TF_BUILD_DIR/tests/codec_tool" decode <"$W/a_payloads.hex" >"$W/a_payloads.txt"
expect "dead-lettered records" "$(cut -d'|' -f2 "$W/a_payloads.txt" | sort | tr '\n' ' ')" "c13 c29 "
grep -q 'refused by the database 2' "$W/a.log" || fail "final stats do not count the 2: $(tail -3 "$W/a.log")"
grep -Eq 'split transactions [1-9]' "$W/a.log" || fail "no split transactions counted"
check_oracle "$W" --customs "$W/planted_good.csv"
# Offsets stored with the batch: a second run reads nothing again.
timeout "$(tf_timeout 120)" "$AGG" --exit-at-end -g "grp-$TA" -t "$TA" --dlq-topic "$DLQ" \
    --log-level notice 2>"$W/a2.log" || fail "second run exited $?"
grep -q 'done: consumed 0,' "$W/a2.log" || fail "second run consumed again: $(tail -1 "$W/a2.log")"
expect "dead letters after a second run" \
    "$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$DLQ" -e -q -f '%h\n' | grep -c 'tf.reason=')" 2

# ---- (a2) the same as a daemon: the counts in /metrics; SIGTERM stops it --
q "TRUNCATE tradeflow.facts, tradeflow.monthly, tradeflow.ranking, tradeflow.settle_pending,
   tradeflow.alerts, tradeflow.consumer_offsets CASCADE" >/dev/null
PORT="$("$TF_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
DLQ2="$(tf_topic isolate_dlq2)"
"$AGG" -g "grp2-$TA" -t "$TA" --dlq-topic "$DLQ2" --metrics-addr "127.0.0.1:$PORT" \
    --log-level notice 2>"$W/a3.log" &
apid=$!
for _ in $(seq 1 "$(tf_timeout 60)"); do
    [ "$(q "select count(*) from tradeflow.facts")" = 38 ] && break
    sleep 1
done
curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$W/metrics.txt" || fail "no /metrics"
kill -TERM "$apid"
wait "$apid" || fail "aggregate (daemon) exited $? after SIGTERM"
grep -q '^tradeflow_records_rejected_total 2$' "$W/metrics.txt" ||
    fail "rejected count: $(grep rejected "$W/metrics.txt")"
grep -q '^tradeflow_pg_errors_total{class="data"} [1-9]' "$W/metrics.txt" ||
    fail "data errors not counted: $(grep pg_errors "$W/metrics.txt")"
grep -Eq '^tradeflow_batch_splits_total [1-9]' "$W/metrics.txt" || fail "splits not counted"
grep -q '^tradeflow_records_dead_lettered_total 2$' "$W/metrics.txt" || fail "dead letters not counted"
echo "ok: /metrics: 2 rejected, data errors and splits counted; SIGTERM exits 0"

# ---- (b) the overflow feed ----------------------------------------------
q "ALTER TABLE tradeflow.facts DROP CONSTRAINT tft_no_666" >/dev/null
q "TRUNCATE tradeflow.facts, tradeflow.monthly, tradeflow.ranking, tradeflow.settle_pending,
   tradeflow.alerts, tradeflow.consumer_offsets CASCADE" >/dev/null
printf '%s\nb1,0,CHN,VNM,export,2019-01,,100.00,,\nb2,0,CHN,THA,export,2019-02,,5.50,,\nb3,0,CHN,VNM,import,2019-02,,7.00,,\n' "$H" >"$W/before.csv"
"$TF_PYTHON" -c "
print('$H')
for i in range(10001):
    print(f'ov{i},0,CHN,VNM,export,2019-02,,9999999999999999.99,,')" >"$W/overflow.csv"
printf '%s\na1,0,CHN,VNM,export,2019-03,,1.00,,\na2,0,CHN,USA,export,2019-02,,3.00,,\n' "$H" >"$W/after.csv"
TB="$(tf_topic overflow)"
DLQB="$(tf_topic overflow_dlq)"
produce customs "$TB" "$W/before.csv"
produce customs "$TB" "$W/overflow.csv"
produce customs "$TB" "$W/after.csv"
timeout "$(tf_timeout 300)" "$AGG" --exit-at-end -g "grp-$TB" -t "$TB" --dlq-topic "$DLQB" \
    --log-level notice 2>"$W/b.log" || { tail -20 "$W/b.log" >&2; fail "aggregate (b) exited $?"; }
expect "facts (all valid)" "$(q "select count(*) from tradeflow.facts")" 10006
want="$("$TF_PYTHON" -c "from decimal import Decimal as D; print(D('9999999999999999.99') * 10001)")"
expect "monthly CHN-VNM export 2019-02" "$(q "select value_usd from tradeflow.monthly
    where reporter = 'CHN' and partner = 'VNM' and flow = 'export' and level = 'partner'
      and period = '2019-02-01'")" "$want"
want_total="$("$TF_PYTHON" -c "from decimal import Decimal as D; print(D('9999999999999999.99') * 10001 + D('7.00'))")"
expect "monthly CHN-VNM total 2019-02" "$(q "select value_usd from tradeflow.monthly
    where reporter = 'CHN' and partner = 'VNM' and flow = 'total' and level = 'partner'
      and period = '2019-02-01'")" "$want_total"
want_grp="$("$TF_PYTHON" -c "from decimal import Decimal as D; print(D('9999999999999999.99') * 10001 + D('7.00') + D('5.50'))")"
expect "monthly CHN-ASEAN total 2019-02 (group level)" "$(q "select value_usd from tradeflow.monthly
    where reporter = 'CHN' and partner = 'ASEAN' and flow = 'total' and level = 'group'
      and period = '2019-02-01'")" "$want_grp"
want_ytd="$("$TF_PYTHON" -c "from decimal import Decimal as D; print(D('9999999999999999.99') * 10001 + D('100.00'))")"
expect "YTD CHN-VNM export 2019-02 (reporting view)" "$(q "select ytd_value_usd
    from reporting.partner_monthly where reporter = 'CHN' and partner = 'VNM'
     and flow = 'export' and period = '2019-02-01'")" "$want_ytd"
expect "VNM ranks first" "$(q "select rank from reporting.partner_ranking where reporter = 'CHN'
    and partner = 'VNM' and flow = 'export' and basis = 'month' and level = 'partner'
    and period = '2019-02-01'")" 1
expect "dead letters (none)" \
    "$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$DLQB" -e -q -f '%h\n' 2>/dev/null | grep -c 'tf.reason=' || true)" 0
check_oracle "$W" --customs "$W/before.csv" --customs "$W/overflow.csv" --customs "$W/after.csv"
echo "1 passed, 0 failed"
