#!/usr/bin/env bash
# Live mode: records written to a pipe are published as they arrive (no
# transaction, bounded latency), and SIGTERM flushes what was read, reports
# and exits 0.
. "$(dirname "$0")/test_produce_lib.sh"

t="$(tp_topic live)"
mkfifo "$W/fifo"
"$PRODUCE" --kind customs --format jsonl --topic "$t" - <"$W/fifo" 2>"$W/err" &
pid=$!
exec 3>"$W/fifo"

rec() {
    printf '{"record_id":"L-%d","reporter":"CHN","partner":"VNM","flow":"export","period":"2020-01","value_usd":"%d.00"}\n' "$1" "$1"
}
# Wait until the producer is up (the topic exists) before timing.
rec 1 >&3
ok=0
for _ in $(seq 1 200); do
    [ "$("$DUMP" -T 5000 -t "$t" 2>/dev/null | wc -l || true)" -ge 1 ] && { ok=1; break; }
    sleep 0.05
done
tp_eq "first live record visible while the pipe stays open" "$ok" 1

# Latency: a consumer already running (kcat, read from the beginning)
# receives three more records; we time from writing them to seeing them.
kcat -C -b "$TRADEFLOW_BROKERS" -t "$t" -o beginning -u -q -f '%k\n' >"$W/seen" 2>/dev/null &
kpid=$!
for _ in $(seq 1 200); do
    [ "$(wc -l <"$W/seen")" -ge 1 ] && break
    sleep 0.02
done
start="$(date +%s%N)"
rec 2 >&3
rec 3 >&3
echo '{"record_id":"L-bad"}' >&3
rec 4 >&3
n=0
for _ in $(seq 1 400); do
    n="$(wc -l <"$W/seen")"
    [ "$n" -ge 4 ] && break
    sleep 0.005
done
ms=$((($(date +%s%N) - start) / 1000000))
kill "$kpid" 2>/dev/null || true
wait "$kpid" 2>/dev/null || true
echo "live latency: 3 records written to the pipe -> received by a running consumer in ${ms} ms"
tp_eq "live records visible" "$n" 4
tp_check "live latency under 1000 ms" test "$ms" -lt 1000
tp_check "producer still running" kill -0 "$pid"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
exec 3>&-
sed 's/^/  produce: /' "$W/err" >&2
tp_eq "SIGTERM with one rejected record: exit 1" "$rc" 1
tp_check "summary after SIGTERM" grep -q "read 5, published 4, rejected 1, failed 0" "$W/err"
tp_check "the bad live record was reported" grep -q "^<stdin>:4: " "$W/err"

# A plain pipe that ends: exit 0, everything published.
t2="$(tp_topic pipe)"
{ rec 10; rec 11; } | "$PRODUCE" --kind customs --format jsonl --topic "$t2" - 2>"$W/err" && rc=0 || rc=$?
tp_eq "pipe to EOF: exit 0" "$rc" 0
tp_eq "pipe: published" "$("$DUMP" -t "$t2" | wc -l)" 2

tp_report
