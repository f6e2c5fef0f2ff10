#!/usr/bin/env bash
# bench/bench_aggregate.sh [--records N] [--big-factor F] [--big replay|distinct] [--keep]
#
# tradeflow-aggregate against the physical limits and a Python peer, in ONE
# run, on the same records (issue 5 item 10):
#
#  1. generates a SYNTHETIC customs feed of exactly N records (default
#     200,000; tradeflow-genfeed, with its revisions and duplicates) and
#     publishes it once (tradeflow-produce) to a fresh 6-partition topic;
#  2. Kafka limit: kcat consuming those messages to /dev/null (the best of
#     three runs);
#  3. PostgreSQL limit: one COPY of the same records, as CSV, into
#     tradeflow.facts of a freshly migrated database (the same columns,
#     constraints and primary key; one row per record_id, its highest
#     revision, i.e. the facts the feed leaves behind; the best of three
#     runs, the table truncated in between);
#  4. tradeflow-aggregate --exit-at-end into a fresh database with a fresh
#     group: records/s, client CPU (user+sys), peak RSS (/usr/bin/time);
#  5. bench/peer_aggregate.py, the same on another fresh database, sending
#     PostgreSQL the same statements; then both reporting.partner_ranking
#     must have the same checksum;
#  6. tradeflow-aggregate again on F*N records (default F = 10): peak RSS
#     must stay flat (memory bounded by the batch, not by the input).
#     --big replay (default): the same N records published F times to a new
#     topic and consumed by a new group into step 4's database, so that every
#     message is fetched, decoded, deduplicated, staged and COPYed, but
#     PostgreSQL finds them all duplicates: this keeps the run short.
#     --big distinct: a second feed of F*N distinct records (another seed)
#     into a fresh database: the full workload, about F times step 4's time.
#     --big-factor 0 skips step 6;
#  7. prints the table with the goals: >= 50% of the lower limit, >= 2x the
#     peer's records/s, <= 1/5 of its CPU per record, flat RSS.
#
# Server-side time per PL/pgSQL function (track_functions = 'pl' on the
# benchmark databases) is printed too, to show where the time goes.
#
# Needs: the stack (eval "$(deploy/stack.sh env)": TRADEFLOW_BROKERS and the
# PG* variables of a superuser that may create databases), a build
# (TF_BUILD_DIR, default build/), kcat, psql, /usr/bin/time, and a Python with
# confluent-kafka, fastavro and psycopg (PYTHON, default .venv/bin/python).
# Topics and databases are named bench.agg.* / bench_agg_*; --keep keeps the
# databases (they are dropped at the end otherwise).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${TF_BUILD_DIR:-$REPO/build}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
AGG="$BUILD/bin/tradeflow-aggregate"
PRODUCE="$BUILD/bin/tradeflow-produce"
GENFEED="$REPO/producers/tradeflow-genfeed"
PEER="$REPO/bench/peer_aggregate.py"
PARTS="${PARTITIONS:-6}"
N=200000
BIG=10
BIG_MODE=replay
KEEP=0

usage() {
    sed -n '2,3s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 64
}
while [ $# -gt 0 ]; do
    case "$1" in
    --records) N="${2:?}"; shift 2 ;;
    --big-factor) BIG="${2:?}"; shift 2 ;;
    --big) BIG_MODE="${2:?}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage ;;
    *) echo "bench_aggregate: unknown argument $1" >&2; usage ;;
    esac
done
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "bench_aggregate: --records: a positive integer" >&2; exit 64; }
[[ "$BIG" =~ ^[0-9]+$ ]] || { echo "bench_aggregate: --big-factor: an integer >= 0" >&2; exit 64; }
case "$BIG_MODE" in replay | distinct) ;; *) echo "bench_aggregate: --big: replay or distinct" >&2; exit 64 ;; esac

die() { echo "bench_aggregate: $*" >&2; exit 1; }
. "$REPO/bench/lib.sh"
say() { echo "bench_aggregate: $*" >&2; }
: "${TRADEFLOW_BROKERS:?set TRADEFLOW_BROKERS (eval \"\$(deploy/stack.sh env)\")}"
B="$TRADEFLOW_BROKERS"
for x in "$AGG" "$PRODUCE"; do [ -x "$x" ] || die "$x not built (TF_BUILD_DIR=$BUILD)"; done
for c in kcat psql; do command -v "$c" >/dev/null || die "$c not found"; done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
"$PYTHON" -c 'import confluent_kafka, fastavro, psycopg' 2>/dev/null ||
    die "$PYTHON lacks confluent-kafka/fastavro/psycopg (see bench/README.md)"
psql -XAtqc 'SELECT 1' >/dev/null || die "PostgreSQL not reachable with the PG* variables"
# Both consumers get the same batch bounds: tradeflow-aggregate's defaults
# (from its --help) unless BATCH_SIZE / BATCH_MS say otherwise.
agg_default() { "$AGG" --help 2>&1 | sed -n "s/.*--$1 N.*(default: \([0-9]*\)).*/\1/p" | head -1; }
BATCH="${BATCH_SIZE:-$(agg_default batch-size)}"
BMS="${BATCH_MS:-$(agg_default batch-ms)}"
[[ "$BATCH" =~ ^[1-9][0-9]*$ && "$BMS" =~ ^[1-9][0-9]*$ ]] ||
    die "cannot read --batch-size/--batch-ms defaults from $AGG --help: set BATCH_SIZE and BATCH_MS"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench_aggregate.XXXXXX")"
TAG="$(date +%Y%m%d%H%M%S)_$$"
DBS=()
cleanup() {
    if [ "$KEEP" = 0 ]; then
        for d in "${DBS[@]}"; do psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS $d" || true; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT


# A fresh, migrated database whose PL/pgSQL functions are timed.
fresh_db() {
    local db="$1"
    DBS+=("$db")
    sql postgres "CREATE DATABASE $db"
    sql postgres "ALTER DATABASE $db SET track_functions = 'pl'"
    "$AGG" migrate --pg "dbname=$db" --log-level warning || die "migrating $db failed"
}

# Runs a command under /usr/bin/time; "$1" receives "wall user sys maxrss_kb".
timed() {
    local out="$1"
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$out" "$@"
}

ranking_sum() {
    sql "$1" "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY dataset, reporter,
              flow, basis, period, level, partner)), '-') FROM reporting.partner_ranking t"
}

fn_times() { # server time per function, ms (total includes callees)
    sql "$1" "SELECT funcname || ' calls=' || calls || ' total_ms=' || round(total_time::numeric)
                     || ' self_ms=' || round(self_time::numeric)
                FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 8"
}

# ---------------------------------------------------------------- 1. feed
T="bench.agg.$TAG"
say "generating $N SYNTHETIC customs records"
gen_feed "$N" "$WORK/feed.csv" 7
say "publishing them to $T ($PARTS partitions)"
t0="$(now)"
"$PRODUCE" --kind customs -q --partitions "$PARTS" --topic "$T" "$WORK/feed.csv" ||
    die "tradeflow-produce failed"
t1="$(now)"
PRODUCE_S="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
# Check the count (a few tries: a just-created topic's metadata may lag).
for try in 1 2 3 4 5; do
    got="$(kcat -C -b "$B" -t "$T" -e -q -o beginning -f '%o\n' | wc -l)"
    [ "$got" -eq "$N" ] && break
    sleep 1
done
[ "$got" -eq "$N" ] || die "the topic holds $got messages, expected $N"

# ---------------------------------------------------------------- 2. Kafka limit
# A limit is what the machine can do: each is the best of three runs (one
# run now and then takes 2-3x as long on this shared machine).
LIMIT_RUNS=3
say "Kafka limit: kcat -C (best of $LIMIT_RUNS)"
for i in $(seq "$LIMIT_RUNS"); do
    timed "$WORK/kcat.$i.time" kcat -C -b "$B" -t "$T" -e -q -o beginning >/dev/null
done

# ---------------------------------------------------------------- 3. PostgreSQL limit
# The facts the feed leaves behind (highest revision per record_id, first seen
# on ties), in tradeflow.facts' columns; source gets a topic/partition/offset
# string of the usual shape.
say "PostgreSQL limit: COPY into tradeflow.facts"
"$PYTHON" - "$WORK/feed.csv" "$WORK/facts.csv" "$T" "$PARTS" <<'EOF'
import csv, sys, zlib
src, dst, topic, parts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
best = {}
with open(src, newline="") as fh:
    for i, r in enumerate(csv.DictReader(fh)):
        rev = int(r["revision"] or 0)
        old = best.get(r["record_id"])
        if old is None or rev > old[0]:
            best[r["record_id"]] = (rev, i, r)
with open(dst, "w", newline="") as fh:
    w = csv.writer(fh)
    for rid, (rev, i, r) in best.items():
        p = zlib.crc32((r["reporter"] + "|" + r["partner"]).encode()) % parts
        w.writerow(["customs", rid, rev, r["reporter"], r["partner"], r["flow"],
                    r["period"] + "-01", r["value_usd"], r["hs_code"] or None,
                    r["quantity"] or None, r["unit"] or None, None, "%s/%d/%d" % (topic, p, i)])
EOF
FACTS="$(wc -l <"$WORK/facts.csv")"
DB_LIMIT="bench_agg_limit_$TAG"
fresh_db "$DB_LIMIT"
for i in $(seq "$LIMIT_RUNS"); do # (TRUNCATE: new, empty table and index files)
    [ "$i" = 1 ] || sql "$DB_LIMIT" "TRUNCATE tradeflow.facts"
    timed "$WORK/copy.$i.time" psql -XAtq -v ON_ERROR_STOP=1 -d "$DB_LIMIT" -c "\\copy tradeflow.facts \
(dataset, record_id, revision, reporter, partner, flow, period, value_usd, hs_code, quantity, \
unit, sector, source) FROM '$WORK/facts.csv' WITH (FORMAT csv)"
    [ "$(sql "$DB_LIMIT" 'SELECT count(*) FROM tradeflow.facts')" -eq "$FACTS" ] || die "COPY lost rows"
done

# ---------------------------------------------------------------- 4. ours
DB_OURS="bench_agg_ours_$TAG"
fresh_db "$DB_OURS"
say "tradeflow-aggregate --exit-at-end ($N records)"
timed "$WORK/ours.time" "$AGG" --pg "dbname=$DB_OURS" -b "$B" -t "$T" -g "bench-agg-ours-$TAG" \
    --batch-size "$BATCH" --batch-ms "$BMS" --exit-at-end --log-level notice 2>"$WORK/ours.log" || { cat "$WORK/ours.log" >&2; die "tradeflow-aggregate failed"; }
grep 'done:' "$WORK/ours.log" | sed 's/^.*done: /  ours: /' >&2 || true
fn_times "$DB_OURS" >"$WORK/ours.fn"
# Churn of the internal tables (dead tuples left by the per-batch refresh).
sql "$DB_OURS" "SELECT relname || ' live=' || n_live_tup || ' dead=' || n_dead_tup || ' ins=' || n_tup_ins
                 || ' upd=' || n_tup_upd || ' del=' || n_tup_del || ' autovacuums=' || autovacuum_count
                 || ' size=' || pg_size_pretty(pg_total_relation_size(relid))
            FROM pg_stat_user_tables WHERE schemaname = 'tradeflow' AND n_tup_ins > 0
           ORDER BY pg_total_relation_size(relid) DESC" >"$WORK/ours.tables"

# ---------------------------------------------------------------- 5. peer
DB_PEER="bench_agg_peer_$TAG"
fresh_db "$DB_PEER"
say "peer_aggregate.py ($N records)"
timed "$WORK/peer.time" "$PYTHON" "$PEER" --pg "dbname=$DB_PEER" -b "$B" -t "$T" \
    -g "bench-agg-peer-$TAG" --batch-size "$BATCH" --batch-ms "$BMS" >"$WORK/peer.json" || die "peer_aggregate.py failed"
sed 's/^/  peer: /' "$WORK/peer.json" >&2
fn_times "$DB_PEER" >"$WORK/peer.fn"

SUM_OURS="$(ranking_sum "$DB_OURS")"
SUM_PEER="$(ranking_sum "$DB_PEER")"
SAME=yes
[ "$SUM_OURS" = "$SUM_PEER" ] || SAME=NO
[ "${SUM_OURS%% *}" -gt 0 ] || SAME=NO

# ---------------------------------------------------------------- 6. F*N records
BIGN=$((BIG * N))
if [ "$BIG" -gt 0 ]; then
    TB="bench.agg.big.$TAG"
    if [ "$BIG_MODE" = distinct ]; then
        say "generating and publishing $BIGN distinct records for the RSS check"
        gen_feed "$BIGN" "$WORK/big.csv" 8
        "$PRODUCE" --kind customs -q --partitions "$PARTS" --topic "$TB" "$WORK/big.csv" ||
            die "tradeflow-produce failed"
        rm -f "$WORK/big.csv"
        DB_BIG="bench_agg_big_$TAG"
        fresh_db "$DB_BIG"
    else
        say "publishing the $N records $BIG times ($BIGN messages) for the RSS check"
        for ((i = 0; i < BIG; i++)); do
            "$PRODUCE" --kind customs -q --partitions "$PARTS" --topic "$TB" "$WORK/feed.csv" ||
                die "tradeflow-produce failed"
        done
        DB_BIG="$DB_OURS"
    fi
    say "tradeflow-aggregate --exit-at-end ($BIGN messages, $BIG_MODE)"
    timed "$WORK/big.time" "$AGG" --pg "dbname=$DB_BIG" -b "$B" -t "$TB" -g "bench-agg-big-$TAG" \
        --batch-size "$BATCH" --batch-ms "$BMS" --exit-at-end --log-level notice 2>"$WORK/big.log" || { cat "$WORK/big.log" >&2; die "tradeflow-aggregate failed"; }
    grep 'done:' "$WORK/big.log" | sed 's/^.*done: /  ours: /' >&2 || true
else
    echo "0 0 0 0" >"$WORK/big.time"
fi

# ---------------------------------------------------------------- 7. report
echo "== PostgreSQL time per function, ours (ms; total includes callees) =="
sed 's/^/  /' "$WORK/ours.fn"
echo "== internal tables after ours (pg_stat_user_tables) =="
sed 's/^/  /' "$WORK/ours.tables"
echo "== PostgreSQL time per function, peer =="
sed 's/^/  /' "$WORK/peer.fn"

# Time inside the top-level functions (apply_stage, settle_alerts), seconds.
fn_top() { awk '/^(apply_stage|settle_alerts) / { sub("total_ms=", "", $3); t += $3 } END { printf "%.2f", t / 1000 }' "$1"; }
O_FN="$(fn_top "$WORK/ours.fn")"
P_FN="$(fn_top "$WORK/peer.fn")"
best_wall() { cat "$@" | awk 'NR == 1 || $1 < m { m = $1 } END { print m }'; }
K_WALL="$(best_wall "$WORK"/kcat.*.time)"
C_WALL="$(best_wall "$WORK"/copy.*.time)"
read -r O_WALL O_USR O_SYS O_RSS <"$WORK/ours.time"
read -r P_WALL P_USR P_SYS P_RSS <"$WORK/peer.time"
read -r G_WALL G_USR G_SYS G_RSS <"$WORK/big.time"
awk -v n="$N" -v parts="$PARTS" -v facts="$FACTS" -v kw="$K_WALL" -v cw="$C_WALL" \
    -v ow="$O_WALL" -v ou="$O_USR" -v os="$O_SYS" -v orss="$O_RSS" \
    -v pw="$P_WALL" -v pu="$P_USR" -v ps="$P_SYS" -v prss="$P_RSS" \
    -v bn="$BIGN" -v gw="$G_WALL" -v gu="$G_USR" -v gs="$G_SYS" -v grss="$G_RSS" \
    -v ofn="$O_FN" -v pfn="$P_FN" -v mode="$BIG_MODE" -v big="$BIG" -v batch="$BATCH" -v bms="$BMS" -v same="$SAME" -v so="$SUM_OURS" -v sp="$SUM_PEER" -v prod="$PRODUCE_S" 'BEGIN {
    kr = n / kw; cr = facts / cw; lim = kr < cr ? kr : cr;
    orate = n / ow; prate = n / pw;
    ocpu = (ou + os) / n * 1e6; pcpu = (pu + ps) / n * 1e6;
    printf "== tradeflow-aggregate benchmark: %d SYNTHETIC customs records, %d partitions, batches of %d / %d ms ==\n", n, parts, batch, bms;
    printf "(publishing them with tradeflow-produce took %.2f s)\n", prod;
    printf "%-34s %8s %11s %10s %9s %10s\n", "", "wall s", "records/s", "CPU s", "us/rec", "peak RSS";
    printf "%-34s %8.2f %11.0f\n", "Kafka limit (kcat -C)", kw, kr;
    printf "%-34s %8.2f %11.0f   (%d rows: one per record_id)\n", "PostgreSQL limit (COPY, facts)", cw, cr, facts;
    printf "%-34s %8.2f %11.0f %10.2f %9.1f %7.1f MB\n", "tradeflow-aggregate", ow, orate, ou + os, ocpu, orss / 1024;
    printf "%-34s %8.2f %11.0f %10.2f %9.1f %7.1f MB\n", "Python peer (peer_aggregate.py)", pw, prate, pu + ps, pcpu, prss / 1024;
    if (bn > 0)
        printf "%-34s %8.2f %11.0f %10.2f %9.1f %7.1f MB\n", sprintf("tradeflow-aggregate, %dxN %s", big, mode), gw, bn / gw, gu + gs, (gu + gs) / bn * 1e6, grss / 1024;
    printf "inside apply_stage + settle_alerts: ours %.2f s of %.2f s wall (%.0f%%), peer %.2f s of %.2f s (%.0f%%)\n", ofn, ow, 100 * ofn / ow, pfn, pw, 100 * pfn / pw;
    printf "\n%-44s %10s %10s %s\n", "goal", "measured", "target", "";
    r1 = orate / lim; r2 = orate / prate; r3 = (pcpu > 0) ? ocpu / pcpu : 0;
    printf "%-44s %9.1f%% %10s %s\n", "ours / lower limit (records/s)", 100 * r1, ">= 50%", (r1 >= 0.5 ? "met" : "MISSED");
    printf "%-44s %9.2fx %10s %s\n", "ours / Python peer (records/s)", r2, ">= 2x", (r2 >= 2 ? "met" : "MISSED");
    printf "%-44s %10.3f %10s %s\n", "ours / peer, client CPU per record", r3, "<= 0.2", (r3 <= 0.2 ? "met" : "MISSED");
    if (bn > 0) {
        rr = grss / orss;
        printf "%-44s %9.2fx %10s %s\n", sprintf("peak RSS ours, %d / %d messages", bn, n), rr, "flat", (rr <= 1.25 ? "met (<= 1.25x)" : "MISSED");
    }
    printf "%-44s %10s %10s %s\n", "reporting.partner_ranking identical", same, "yes", (same == "yes" ? "met" : "MISSED");
    printf "  checksums: ours %s / peer %s\n", so, sp;
}'
[ "$SAME" = yes ] || exit 1
