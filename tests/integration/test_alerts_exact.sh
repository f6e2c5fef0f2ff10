#!/usr/bin/env bash
# Ranking-shift alerts end to end on the real stack, with a small hand-made
# GACC-style feed (tests/integration/alerts/, synthetic values) whose group
# ranking of China's total trade, YTD Jan-Nov, is:
#   2018-11  EU 615.00 bn, USA 580.00, ASEAN 530.00   (ASEAN 3rd)
#   2019-11  EU 638.00, ASEAN 577.00, USA 495.00       (ASEAN 3 -> 2, USA 2 -> 3)
#   2020-11  ASEAN 609.58, EU 586.00, USA 500.00       (ASEAN 2 -> 1, EU 1 -> 2)
# With --alert-top 3, exactly these four shifts must appear in that scope; all
# scopes together must equal the independent alerts oracle. Then: a replay
# by another consumer group and a re-sent file (nothing new), a revision that
# undoes the 2020 shift (two retractions), the same alerts on NOTIFY (a
# psycopg LISTEN client), through tradeflow-alerts (as tradeflow_reader) and
# on the Kafka topic (tradeflow-relay, decoded by fastavro), the relay's
# recovery after a crash between Kafka's commit and the UPDATE, two relays
# (the second waits, then takes over), the CLI's history, filters and exit
# statuses, and a backfill with --alerts-from.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/alerts_lib.sh"
tf_require_stack
tf_new_db alerts_exact
tf_new_workdir W
D="$TF_ALERTS_DATA"
TC="$(tf_topic alerts_in)"
TA="$(tf_topic alerts_out)"
FOLLOW="$(tf_bin tradeflow-alerts)"
RELAY="$(tf_bin tradeflow-relay)"
AGG="$(tf_bin tradeflow-aggregate)"
passed=0
ok() { passed=$((passed + 1)); }

"$AGG" migrate --log-level warning || fail "migrate"

# Delivery witnesses, started before any data: a raw NOTIFY client and the
# follower CLI as the read-only role.
"$TF_PYTHON" "$TF_ALERTS_PEER" listen --ready "$W/listen.ready" >"$W/notify.jsonl" &
listener=$!
# --after-id 0: the database is new, so this is "every alert", whenever the
# follower's LISTEN is in place.
PGOPTIONS="-c role=tradeflow_reader" "$FOLLOW" --json --after-id 0 --log-level info \
    >"$W/follow.jsonl" 2>"$W/follow.err" &
follower=$!
wait_for "the LISTEN client" 30 test -e "$W/listen.ready"

# 1. Load: exactly the expected alerts in the scope, and the oracle overall.
produce customs "$TC" "$D/gacc_2018_2020.csv"
aggregate "g1-$TC" "$TC" -- --alert-top 3
SCOPE="dataset='customs' and reporter='CHN' and flow='total' and basis='ytd' and level='group'"
scope_alerts() {
    q "select coalesce(string_agg(format('%s %s %s->%s %s %s', to_char(period, 'YYYY-MM'), partner,
        coalesce(old_rank::text, '-'), coalesce(new_rank::text, '-'), kind, value_usd), '; '
        order by alert_id), '') from reporting.ranking_alerts where $SCOPE"
}
E1="2019-11 ASEAN 3->2 shift 577000000000.00; 2019-11 USA 2->3 shift 495000000000.00"
E1="$E1; 2020-11 ASEAN 2->1 shift 609580000000.00; 2020-11 EU 1->2 shift 586000000000.00"
expect "alerts of (customs, CHN, total, ytd, group)" "$(scope_alerts)" "$E1"
ok
check_alerts_oracle "$W" 3 --customs "$D/gacc_2018_2020.csv"
ok
n1="$(q "select count(*) from reporting.ranking_alerts")"

# 2. Replay by a new consumer group + the same file re-sent (its duplicates
# included): nothing new.
produce customs "$TC" "$D/gacc_2018_2020.csv"
aggregate "g1-$TC" "$TC" -- --alert-top 3
aggregate "g2-$TC" "$TC" -- --alert-top 3
expect "alerts after a replay and a re-sent file" "$(q "select count(*) from reporting.ranking_alerts")" "$n1"
ok

# 3. The relay runs as a daemon from here: new alerts must reach Kafka
# through LISTEN without a restart.
"$RELAY" -t "$TA" --log-level info 2>"$W/relay1.log" &
relay1=$!
wait_for "the relay to publish the first load" 60 \
    sh -c "[ \"\$(psql -X -At -c 'select count(*) from reporting.ranking_alerts where published')\" = $n1 ]"
ok

# 3b. PostgreSQL drops the follower's and the relay's connections: both
# must reconnect and resume without a gap or a duplicate (checked in 6 and 8).
expect "backends terminated" "$(q "select count(*) from (select pg_terminate_backend(pid) from
    pg_stat_activity where datname = current_database()
    and application_name in ('tradeflow-alerts', 'tradeflow-relay')) x")" 2

# 4. A revision that undoes the 2020 shift: two retractions, and the 2020
# scope is back to EU 1st, ASEAN 2nd (no new shift).
produce customs "$TC" "$D/revision_undo_2020.csv"
aggregate "g1-$TC" "$TC" -- --alert-top 3
E2="$E1; 2020-11 ASEAN 2->1 retraction 576580000000.00; 2020-11 EU 1->2 retraction 586000000000.00"
expect "alerts of the scope after the revision" "$(scope_alerts)" "$E2"
ok
check_alerts_oracle "$W" 3 --customs "$D/gacc_2018_2020.csv" --customs "$D/gacc_2018_2020.csv" \
    --customs "$D/revision_undo_2020.csv"
ok
ntotal="$(q "select count(*) from reporting.ranking_alerts")"
wait_for "the relay to publish the retractions" 30 \
    sh -c "[ \"\$(psql -X -At -c 'select count(*) from reporting.ranking_alerts where published')\" = $ntotal ]"
ok

# 5. A second relay waits while the first is active, then takes over.
"$RELAY" -t "$TA" --exit-when-idle --log-level info 2>"$W/relay2.log" &
relay2=$!
wait_for "the second relay to wait" 30 grep -q "another relay for topic" "$W/relay2.log"
kill -0 "$relay2" || fail "the second relay did not wait"
kill -TERM "$relay1"
wait "$relay1" || fail "relay 1 exited $?"
wait "$relay2" || fail "relay 2 exited $?"
grep -q "took over" "$W/relay2.log" || fail "relay 2 did not take over"
echo "ok: a second relay waited for the lock and took over"
ok

# 6. Kafka holds every deliverable alert exactly once, in alert_id order,
# with the table's content.
deliverable_ids >"$W/ids.txt"
dump_topic "$TA" "$W/topic.csv"
cut -d, -f2 "$W/topic.csv" | diff - "$W/ids.txt" >/dev/null ||
    fail "topic ids differ from the table: $(cut -d, -f2 "$W/topic.csv" | tr '\n' ' ') vs $(tr '\n' ' ' <"$W/ids.txt")"
psql -X -At -v ON_ERROR_STOP=1 -c "copy (select alert_id, kind, retracts,
    dataset, reporter, flow, basis, level, to_char(period, 'YYYY-MM'), partner, old_rank, new_rank,
    coalesce(value_usd, 0)::numeric(22,2), dataset || '|' || reporter
    from reporting.ranking_alerts where not suppressed order by alert_id) to stdout with (format csv)" \
    >"$W/table.csv"
cut -d, -f2- "$W/topic.csv" | diff - "$W/table.csv" || fail "topic content differs from the table"
echo "ok: the topic holds the $(wc -l <"$W/ids.txt") alerts once each, in order, equal to the table"
ok

# 7. Relay crash between Kafka's commit and the UPDATE of published_at:
# simulated by clearing published_at of the last 3. The restarted relay must
# recover them from the topic's last message, not publish them again.
q "update tradeflow.alerts set published_at = null where alert_id in
   (select alert_id from tradeflow.alerts where not suppressed order by alert_id desc limit 3)" >/dev/null
# This relay runs as the least-privilege role of 005_roles.sql.
PGOPTIONS="-c role=tradeflow_writer" "$RELAY" -t "$TA" --exit-when-idle --log-level info \
    2>"$W/relay3.log" || fail "relay 3 (as tradeflow_writer) exited $?"
grep -q "3 alert(s) found published but unmarked" "$W/relay3.log" || fail "relay 3 did not recover: $(cat "$W/relay3.log")"
dump_topic "$TA" "$W/topic2.csv"
expect "topic after the recovery (no duplicate)" "$(wc -l <"$W/topic2.csv")" "$(wc -l <"$W/ids.txt")"
expect "unpublished after the recovery" "$(q "select count(*) from reporting.ranking_alerts where not published and not suppressed")" 0
ok

# 8. NOTIFY and the follower saw each alert once, in order.
sleep 1.5
kill -TERM "$follower" "$listener"
wait "$follower" || fail "the follower exited $?"
wait "$listener" || fail "the LISTEN client exited $? on SIGTERM"
grep -q "reconnected; resuming after alert" "$W/follow.err" ||
    fail "the follower did not log its reconnection: $(cat "$W/follow.err")"
json_ids "$W/notify.jsonl" | diff - "$W/ids.txt" >/dev/null ||
    fail "NOTIFY ids differ: $(json_ids "$W/notify.jsonl" | tr '\n' ' ') vs $(tr '\n' ' ' <"$W/ids.txt")"
echo "ok: NOTIFY delivered the $(wc -l <"$W/ids.txt") alerts once each"
ok
json_ids "$W/follow.jsonl" | diff - "$W/ids.txt" >/dev/null ||
    fail "follower ids differ: $(json_ids "$W/follow.jsonl" | tr '\n' ' ')"
echo "ok: tradeflow-alerts (as tradeflow_reader) printed the $(wc -l <"$W/ids.txt") alerts once each"
ok

# 9. The CLI: history, readable lines, filters, --count, exit statuses.
"$FOLLOW" --since 2020-01 --no-follow --flow total --basis ytd --level group >"$W/hist.txt" ||
    fail "history exited $?"
cat >"$W/hist.expected" <<EOF
2020-11 customs CHN total ytd group: ASEAN 2 -> 1 (US\$609.58 bn)
2020-11 customs CHN total ytd group: EU 1 -> 2 (US\$586.00 bn)
RETRACTED 2020-11 customs CHN total ytd group: ASEAN 2 -> 1 no longer holds (US\$576.58 bn; alert $(q "select alert_id from reporting.ranking_alerts where $SCOPE and partner='ASEAN' and kind='shift' and period='2020-11-01'") withdrawn)
RETRACTED 2020-11 customs CHN total ytd group: EU 1 -> 2 no longer holds (US\$586.00 bn; alert $(q "select alert_id from reporting.ranking_alerts where $SCOPE and partner='EU' and kind='shift' and period='2020-11-01'") withdrawn)
EOF
diff "$W/hist.expected" "$W/hist.txt" || fail "readable history differs"
echo "ok: readable history lines"
ok
expect "--partner ASEAN --max-rank 1 --since 2018-01 (shift + retraction, month and ytd)" \
    "$("$FOLLOW" --since 2018-01 --no-follow --partner ASEAN --max-rank 1 --level group | wc -l)" 4
expect "--dataset investment finds nothing" \
    "$("$FOLLOW" --since 2018-01 --no-follow --dataset investment | wc -l)" 0
expect "--count 2 prints 2 lines" "$("$FOLLOW" --since 2018-01 --count 2 --json | wc -l)" 2
ok
set +e
"$FOLLOW" --reporter XXX --timeout 1 >/dev/null 2>&1
expect "exit status: --timeout without a matching alert" "$?" 2
"$FOLLOW" --max-rank zero >/dev/null 2>&1
expect "exit status: usage error" "$?" 64
TRADEFLOW_STARTUP_TIMEOUT=2 "$FOLLOW" --pg "host=127.0.0.1 port=1 connect_timeout=2" --timeout 1 >/dev/null 2>&1
expect "exit status: PostgreSQL unreachable at start (EX_UNAVAILABLE, issue 14)" "$?" 69
set -e
ok

# 10. Backfill: a fresh database loaded at once with --alerts-from 2020-01:
# the 2019 shifts are in the table (suppressed), not on NOTIFY or Kafka.
tf_new_db alerts_backfill
TB="$(tf_topic alerts_backfill)"
"$AGG" migrate --log-level warning || fail "migrate"
rm -f "$W/listen.ready"
"$TF_PYTHON" "$TF_ALERTS_PEER" listen --ready "$W/listen.ready" >"$W/notify2.jsonl" &
listener=$!
wait_for "the LISTEN client" 30 test -e "$W/listen.ready"
aggregate "g3-$TC" "$TC" -- --alert-top 3 --alerts-from 2020-01
check_alerts_oracle "$W" 3 --customs "$D/gacc_2018_2020.csv" --customs "$D/gacc_2018_2020.csv" \
    --customs "$D/revision_undo_2020.csv"
expect "suppressed = exactly the shifts before 2020-01" \
    "$(q "select count(*) filter (where suppressed <> (period < '2020-01-01')) || '/' || count(*) filter (where suppressed) from reporting.ranking_alerts")" \
    "0/$(q "select count(*) from reporting.ranking_alerts where period < '2020-01-01'")"
expect "retractions after loading everything at once" \
    "$(q "select count(*) from reporting.ranking_alerts where kind = 'retraction'")" 0
expect "alerts out of period order" "$(q "select count(*) from (select period <
    lag(period) over (order by alert_id) as back from reporting.ranking_alerts) x where back")" 0
# The first database's topic is ahead of this database: the relay must
# refuse it rather than mark alerts published that never were.
set +e
"$RELAY" -t "$TA" --exit-when-idle --log-level warning 2>"$W/relay_wrong.log"
expect "relay exit status on a topic of another database" "$?" 1
set -e
grep -q "do not belong together" "$W/relay_wrong.log" || fail "relay: $(cat "$W/relay_wrong.log")"
expect "published after the refusal" "$(q "select count(*) from reporting.ranking_alerts where published")" 0
"$RELAY" -t "$TB" --exit-when-idle --log-level warning || fail "relay exited $?"
sleep 1
kill -TERM "$listener"
wait "$listener" || fail "the LISTEN client exited $? on SIGTERM"
deliverable_ids >"$W/ids2.txt"
[ -s "$W/ids2.txt" ] || fail "no deliverable alert from 2020 on"
dump_topic "$TB" "$W/topic3.csv"
cut -d, -f2 "$W/topic3.csv" | diff - "$W/ids2.txt" >/dev/null || fail "backfill topic ids differ"
json_ids "$W/notify2.jsonl" | diff - "$W/ids2.txt" >/dev/null || fail "backfill NOTIFY ids differ"
expect "periods on the topic before 2020-01" "$(cut -d, -f10 "$W/topic3.csv" | awk '$1 < "2020-01"' | wc -l)" 0
expect "follower hides suppressed alerts" "$("$FOLLOW" --since 2018-01 --no-follow | wc -l)" "$(wc -l <"$W/ids2.txt")"
expect "--include-suppressed shows them" "$("$FOLLOW" --since 2018-01 --no-follow --include-suppressed | wc -l)" \
    "$(q "select count(*) from reporting.ranking_alerts")"
echo "ok: backfill keeps $(q "select count(*) from reporting.ranking_alerts where suppressed") older shifts in the table only"
ok

# 11. The gap-free cursor: an alert whose transaction commits AFTER a later
# alert_id is not skipped, and comes out first. B takes its transaction id
# first, then A inserts id N and B id N+1; B commits, A stays open 3 s more.
# A's xid is then newer than the latest commit, so no snapshot lists it as
# running: only the feed's own xid shows that A might still commit. The
# follower and the relay must deliver N, then N+1; a follower started
# between the two commits must print N (B's alert was history for it).
"$FOLLOW" --json --count 2 --timeout 30 --after-id "$(q "select max(alert_id) from tradeflow.alerts")" \
    >"$W/gap.jsonl" &
gapf=$!
"$TF_PYTHON" - >"$W/gap_ids.txt" <<'PY' &
import time
import psycopg
ins = """insert into tradeflow.alerts (dataset, reporter, flow, basis, level, period, partner,
         old_rank, new_rank, value_usd, kind) values ('customs', 'CHN', 'total', 'month',
         'group', '2021-01-01', 'ZZZ', 2, 1, 1.00, 'shift') returning alert_id"""
a, b = psycopg.connect(), psycopg.connect()
b.execute("select pg_current_xact_id()")
ida = a.execute(ins).fetchone()[0]
idb = b.execute(ins).fetchone()[0]
b.commit()
print(ida, idb, flush=True)
time.sleep(3)
a.commit()
PY
gapa=$!
wait_for "transaction B's commit" 10 grep -q . "$W/gap_ids.txt"
read -r ida idb <"$W/gap_ids.txt"
[ "$idb" -gt "$ida" ] || fail "B ($idb) should have a higher id than A ($ida)"
"$FOLLOW" --json --count 1 --timeout 30 >"$W/gap2.jsonl" &
gapf2=$!
"$RELAY" -t "$TB" --exit-when-idle --log-level warning &
gapr=$!
wait "$gapa" || fail "transactions A/B failed"
wait "$gapf" || fail "follower exited $? (missed alert $ida?)"
wait "$gapf2" || fail "follower started between the commits exited $? (missed alert $ida?)"
wait "$gapr" || fail "relay exited $?"
expect "follower order across the late commit" "$(json_ids "$W/gap.jsonl" | tr '\n' ' ')" "$ida $idb "
expect "follower started between B's commit and A's" "$(json_ids "$W/gap2.jsonl" | tr '\n' ' ')" "$ida "
dump_topic "$TB" "$W/topic4.csv"
expect "relay order across the late commit" "$(tail -2 "$W/topic4.csv" | cut -d, -f2 | tr '\n' ' ')" "$ida $idb "
ok

echo "$passed passed, 0 failed"
