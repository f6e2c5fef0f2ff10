#!/usr/bin/env bash
# tradeflow-produce --watch DIR (issue 18): each file renamed into the inbox
# is published once, in one transaction, then moved to done/ (or failed/)
# with a report; files being written (.part, dot files) are left alone; a
# crash between publishing and moving (test hook TF_TEST_CRASH_AFTER_COMMIT)
# neither re-publishes nor skips the file after a restart; progress in
# /metrics; SIGTERM stops it.
. "$(dirname "$0")/test_produce_lib.sh"

IN="$W/inbox"
mkdir -p "$IN"
t="$(tp_topic watch)"
st="$(tp_topic watch.state)"
HDR="record_id,reporter,partner,flow,period,value_usd"

# drop NAME ROWS...: writes the file under a temporary name, then renames it
# into place (the rule the inbox documents).
drop() {
    local name="$1"
    shift
    { echo "$HDR"; printf '%s\n' "$@"; } >"$IN/.$name.tmp"
    mv "$IN/.$name.tmp" "$IN/$name"
}
# wait_for FILE: up to 60 s.
wait_for() {
    for _ in $(seq 1 600); do
        [ -e "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
start() {
    "$PRODUCE" --kind customs --topic "$t" --watch "$IN" --watch-interval-ms 200 \
        --watch-state-topic "$st" --metrics-addr 127.0.0.1:0 "$@" >>"$W/watch.log" 2>&1 &
    wpid=$!
}
count() { "$DUMP" -t "$t" | cut -f2 | cut -d'|' -f2 | grep -c "^$1" || true; }

start
echo "partial" >"$IN/growing.csv.part"
drop a.csv "A1,CHN,USA,export,2024-01,1.00" "A2,CHN,JPN,export,2024-01,2.00" \
    "A3,CHN,JPN,sideways,2024-01,2.00"
drop b.csv "B1,CHN,USA,import,2024-01,3.00"
printf 'colour\nred\n' >"$IN/.bad.csv.tmp" && mv "$IN/.bad.csv.tmp" "$IN/bad.csv"
tp_check "a.csv moved to done/" wait_for "$IN/done/a.csv"
tp_check "b.csv moved to done/" wait_for "$IN/done/b.csv"
tp_check "bad.csv moved to failed/" wait_for "$IN/failed/bad.csv"
tp_check "a report beside a.csv" grep -q '^result: published, some records rejected$' "$IN/done/a.csv.report"
tp_check "  with the counts" grep -q '^rejected: 1$' "$IN/done/a.csv.report"
tp_check "a report beside bad.csv" grep -q '^note: .*colour: unknown column for customs' "$IN/failed/bad.csv.report"
tp_check "the .part file is left alone" test -e "$IN/growing.csv.part"
tp_eq "a.csv published once (2 good records)" "$(count A)" 2
tp_eq "b.csv published once" "$(count B)" 1
port="$(sed -n 's/.*metrics and health on port \([0-9]*\).*/\1/p' "$W/watch.log" | tail -1)"
curl -sf "http://127.0.0.1:$port/metrics" >"$W/metrics" || true
tp_check "metrics: files done" grep -q 'tradeflow_producer_inbox_files_total{result="done"} 2' "$W/metrics"
tp_check "metrics: files failed" grep -q 'tradeflow_producer_inbox_files_total{result="failed"} 1' "$W/metrics"
kill -TERM "$wpid"
rc=0
wait "$wpid" || rc=$?
tp_eq "SIGTERM: exit 0" "$rc" 0

# A restart with the files gone: nothing is published again.
start
sleep 2
tp_eq "restart: a.csv not published again" "$(count A)" 2

# A crash between publishing and moving: the file stays in the inbox...
kill -TERM "$wpid"
wait "$wpid" || true
TF_TEST_CRASH_AFTER_COMMIT=1 start
drop c.csv "C1,CHN,USA,export,2024-02,5.00" "C2,CHN,VNM,export,2024-02,6.00"
rc=0
wait "$wpid" || rc=$?
tp_eq "crash hook: exit 98 after the commit" "$rc" 98
tp_check "c.csv is still in the inbox" test -e "$IN/c.csv"
tp_eq "c.csv's records are published (committed)" "$(count C)" 2
# ... and the restarted watcher moves it without publishing it again.
start
tp_check "after the restart c.csv is moved to done/" wait_for "$IN/done/c.csv"
tp_check "  its report says it was published before" \
    grep -q '^result: already published' "$IN/done/c.csv.report"
sleep 1
tp_eq "c.csv published exactly once" "$(count C)" 2
# A file dropped again (a new copy: a new identity) is published again.
drop c.csv "C1,CHN,USA,export,2024-02,5.00"
tp_check "the new c.csv goes to done/ under another name" wait_for "$IN/done/c.csv.1"
kill -TERM "$wpid"
wait "$wpid" || true
tp_eq "the new copy was published" "$(count C1)" 2

# Usage.
tp_produce --kind customs --watch "$IN" "$W/x.csv"
tp_eq "--watch with files: exit 64" "$rc" 64
tp_produce --kind customs --watch "$W/nonexistent" --topic "$t"
tp_eq "--watch on a missing directory: exit 66" "$rc" 66

tp_report
