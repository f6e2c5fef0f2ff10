#!/usr/bin/env bash
# A producer that dies in the middle of a file's transaction leaves nothing
# visible to read_committed consumers; re-running the same file fences the
# dead producer (same derived transactional.id), aborts its transaction and
# publishes every record exactly once.
. "$(dirname "$0")/test_produce_lib.sh"
not() { ! "$@"; }

N=5000
awk -v n="$N" 'BEGIN {
    print "record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit";
    split("VNM MYS THA SGP IDN PHL USA JPN KOR DEU", P, " ");
    for (i = 1; i <= n; i++)
        printf "X-%06d,0,CHN,%s,%s,2020-%02d,85,%d.%02d,,\n", i, P[1 + i % 10],
            (i % 2 ? "export" : "import"), 1 + i % 12, i, i % 100;
}' >"$W/big.csv"

t="$(tp_topic crash)"
rc=0
TF_TEST_CRASH_AFTER=2000 "$PRODUCE" --kind customs --topic "$t" "$W/big.csv" 2>"$W/err" || rc=$?
tp_eq "crash hook: the producer died mid-transaction" "$rc" 99
n="$("$DUMP" -t "$t" | wc -l)"
tp_eq "crashed transaction: nothing visible to read_committed" "$n" 0
n="$("$DUMP" -u -t "$t" | wc -l)"
tp_eq "crashed transaction: its 2000 records did reach the log" "$n" 2000

# SIGKILL mid-file, the way a real crash happens: a large file, killed as
# soon as its first records are in the log (seen by a read_uncommitted
# reader), long before its transaction can commit.
tk="$(tp_topic kill)"
cp "$W/big.csv" "$W/big2.csv"
for _ in $(seq 1 99); do tail -n +2 "$W/big.csv"; done >>"$W/big2.csv"
"$PRODUCE" --kind customs --topic "$tk" "$W/big2.csv" 2>/dev/null &
pid=$!
for _ in $(seq 1 500); do
    n="$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$tk" -X isolation.level=read_uncommitted \
        -o beginning -c 1 -e -q -f 'x\n' 2>/dev/null | wc -l || true)"
    [ "$n" -gt 0 ] && break
    sleep 0.01
done
kill -KILL "$pid" 2>/dev/null || true
rc=0
wait "$pid" 2>/dev/null || rc=$?
# (A producer that finished its 500,000 records before the kill fails here:
# the file would have to grow, not the check be skipped.)
tp_eq "SIGKILLed producer (137; 0 = it finished before the kill)" "$rc" 137
n="$("$DUMP" -u -t "$tk" | wc -l)"
tp_check "SIGKILLed transaction: records reached the log ($n)" test "$n" -gt 0
tp_eq "SIGKILLed transaction: nothing visible to read_committed" "$("$DUMP" -t "$tk" | wc -l)" 0

# SIGTERM mid-file: the file's transaction is aborted, the run says so and
# exits 2 (not everything was published).
tt="$(tp_topic term)"
"$PRODUCE" --kind customs --topic "$tt" "$W/big2.csv" 2>"$W/term.err" &
pid=$!
for _ in $(seq 1 500); do
    n="$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$tt" -X isolation.level=read_uncommitted \
        -o beginning -c 1 -e -q -f 'x\n' 2>/dev/null | wc -l || true)"
    [ "$n" -gt 0 ] && break
    sleep 0.01
done
kill -TERM "$pid" 2>/dev/null || true
rc=0
wait "$pid" 2>/dev/null || rc=$?
sed 's/^/  produce: /' "$W/term.err" >&2
# (A run that committed the file although SIGTERM came mid-file fails here;
# this used to be skipped as "machine too fast", which a producer ignoring
# SIGTERM would also have passed.)
tp_check "SIGTERM mid-file: the file was not committed" not grep -q "committed" "$W/term.err"
tp_eq "SIGTERM mid-file: exit 2" "$rc" 2
# (A SIGTERM that lands while the send queue is full is reported by the
# send that it interrupted: the same abort, another wording.)
tp_check "SIGTERM mid-file: reported as aborted" grep -Eq \
    "transaction aborted \((interrupted|send failed: produce: interrupted while the queue was full)\)" \
    "$W/term.err"
tp_check "SIGTERM mid-file: the record cut short is not a reject" grep -q "rejected 0," "$W/term.err"
tp_eq "SIGTERM mid-file: nothing visible to read_committed" "$("$DUMP" -t "$tt" | wc -l)" 0

# Re-run: the zombie's transaction is aborted, everything published once.
tp_produce --kind customs --topic "$t" "$W/big.csv"
tp_eq "re-run: exit 0" "$rc" 0
"$DUMP" -t "$t" | cut -f2 | cut -d'|' -f2 >"$W/ids"
tp_eq "re-run: every record visible" "$(wc -l <"$W/ids")" "$N"
tp_eq "re-run: no duplicates" "$(sort -u "$W/ids" | wc -l)" "$N"

# Without a transaction (--no-transaction) records become visible as they
# are acknowledged: the same crash leaves the first ones published.
tn="$(tp_topic notx)"
rc=0
TF_TEST_CRASH_AFTER=2000 "$PRODUCE" --kind customs --topic "$tn" --no-transaction "$W/big.csv" 2>/dev/null || rc=$?
tp_eq "--no-transaction crash hook" "$rc" 99
tp_eq "--no-transaction: acknowledged records are visible" "$("$DUMP" -t "$tn" | wc -l)" 2000

# Delivery failure: the broker refuses every batch (a topic whose
# max.message.bytes is smaller than any batch, created here by the Python
# admin client). A file: the transaction fails, nothing is visible, exit 2.
# Without a transaction: each failed record is reported, exit 2.
tf_="$(tp_topic refused)"
"$TF_PYTHON" - "$tf_" <<'PY'
import os, sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": os.environ["TRADEFLOW_BROKERS"]})
for f in a.create_topics([NewTopic(sys.argv[1], 2, 1, config={"max.message.bytes": "120"})]).values():
    f.result()
PY
head -101 "$W/big.csv" >"$W/h100.csv"
tp_produce --kind customs --topic "$tf_" "$W/h100.csv"
tp_eq "refused by the broker: exit 2" "$rc" 2
tp_check "refused: transaction failed, summary says so" grep -q "failed 100 .*transaction failed" "$W/err"
tp_eq "refused: nothing visible" "$("$DUMP" -t "$tf_" | wc -l)" 0
tp_produce --kind customs --topic "$tf_" --no-transaction "$W/h100.csv"
tp_eq "refused, no transaction: exit 2" "$rc" 2
tp_check "refused, no transaction: records reported as not delivered" \
    grep -q "^$W/h100.csv:[0-9]*: -: not delivered: " "$W/err"
tp_check "refused, no transaction: summary counts" grep -q "published 0, rejected 0, failed 100" "$W/err"

tp_report
