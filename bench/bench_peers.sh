#!/usr/bin/env bash
# bench/bench_peers.sh [--records N] [--shape sample|realistic|both] [--no-cases] [--cases-only]
#                      [--no-python] [--stack] [--keep]
#
# tradeflow-aggregate against the peers users would pick (issue 20), in ONE
# run, on the same Kafka messages:
#
#  - the Flink job of bench/peers/flink/ (Flink 2.0 SQL in a local
#    MiniCluster in one JVM: Kafka source, ROW_NUMBER deduplication,
#    retracting GROUP BYs, a YTD join, Top-N ranks, JDBC upsert sink into
#    flinkpeer.partner_ranking), built with Maven on first use;
#  - the Python peer bench/peer_aggregate.py (sends PostgreSQL tradeflow's
#    own statements).
#
#  1. exactness cases (bench/peers/flink/cases/): cases1.csv then cases2.csv
#     to a fresh topic; ours and the Flink job; row-by-row comparison of
#     reporting.partner_ranking with flinkpeer.partner_ranking, per case;
#  2. per feed shape (sample: tradeflow-genfeed's default shape; realistic:
#     its --realistic shape, if this genfeed has it), N records (default
#     1,000,000) published once to a fresh 6-partition topic, then one after
#     the other: ours (--exit-at-end) into a fresh database, the Flink job
#     into the same database (schema flinkpeer), the Python peer into another
#     fresh database; each under /usr/bin/time (wall, user+sys CPU, peak
#     RSS), with PostgreSQL's CPU over the same interval (the postmaster's own
#     and its children's, from /proc, when the server runs on this host) and
#     the load average at the start of each run;
#  3. row-by-row comparison of the Flink job's table with ours, checksum
#     comparison of the Python peer's with ours; the table with the goals.
#
# "Final" for the Flink job: its Kafka source is bounded by the end offsets
# at job start (lag 0 when it finishes) and the job ends only after the last
# JDBC flush, so the process's exit is the moment its sink table stops
# changing. Ours: --exit-at-end; the Python peer: its exit at the end.
#
# Needs: the stack (eval "$(deploy/stack.sh env)"), or --stack to bring up a
# fresh one in .stack-peers (TRADEFLOW_KAFKA_PORT / TRADEFLOW_PG_PORT, taken
# down at the end); a build (TF_BUILD_DIR, default build/); Java 17 and Maven
# (the peer's jars come from Maven Central into ~/.m2); kcat, psql,
# /usr/bin/time; PYTHON with confluent-kafka, fastavro, psycopg.
# GENFEED overrides the feed generator (default producers/tradeflow-genfeed).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${TF_BUILD_DIR:-$REPO/build}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
AGG="$BUILD/bin/tradeflow-aggregate"
PRODUCE="$BUILD/bin/tradeflow-produce"
GENFEED="${GENFEED:-$REPO/producers/tradeflow-genfeed}"
PEER="$REPO/bench/peer_aggregate.py"
FLINK_DIR="$REPO/bench/peers/flink"
PARTS="${PARTITIONS:-6}"
FLINK_HEAP="${FLINK_HEAP:-2g}"
FLINK_ARGS="${FLINK_ARGS:-}"
N=1000000
SHAPES="sample realistic"
CASES=1
RUNS=1
PY=1
STACK=0
KEEP=0

usage() {
    sed -n '2,3s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 64
}
while [ $# -gt 0 ]; do
    case "$1" in
    --records) N="${2:?}"; shift 2 ;;
    --shape) case "${2:?}" in both) SHAPES="sample realistic" ;; sample | realistic) SHAPES="$2" ;;
             *) echo "bench_peers: --shape: sample, realistic or both" >&2; exit 64 ;; esac; shift 2 ;;
    --no-cases) CASES=0; shift ;;
    --cases-only) RUNS=0; shift ;;
    --no-python) PY=0; shift ;;
    --stack) STACK=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage ;;
    *) echo "bench_peers: unknown argument $1" >&2; usage ;;
    esac
done
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "bench_peers: --records: a positive integer" >&2; exit 64; }

die() { echo "bench_peers: $*" >&2; exit 1; }
say() { echo "bench_peers: $*" >&2; }
. "$REPO/bench/lib.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench_peers.XXXXXX")"
TAG="$(date +%Y%m%d%H%M%S)_$$"
DBS=()
cleanup() {
    if [ "$KEEP" = 0 ] && command -v psql >/dev/null; then
        for d in "${DBS[@]}"; do psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS $d" 2>/dev/null || true; done
    fi
    if [ "$STACK" = 1 ]; then
        TRADEFLOW_STACK_DIR="$REPO/.stack-peers" "$REPO/deploy/stack.sh" down >&2 || true
    fi
    if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "bench_peers: kept $WORK" >&2; fi
}
trap cleanup EXIT

if [ "$STACK" = 1 ]; then
    say "bringing up a fresh stack in .stack-peers"
    TRADEFLOW_STACK_DIR="$REPO/.stack-peers" "$REPO/deploy/stack.sh" up --fresh >&2 ||
        die "deploy/stack.sh up failed"
    eval "$(TRADEFLOW_STACK_DIR="$REPO/.stack-peers" "$REPO/deploy/stack.sh" env)"
fi
: "${TRADEFLOW_BROKERS:?set TRADEFLOW_BROKERS (eval \"\$(deploy/stack.sh env)\"), or use --stack}"
B="$TRADEFLOW_BROKERS"
for x in "$AGG" "$PRODUCE"; do [ -x "$x" ] || die "$x not built (TF_BUILD_DIR=$BUILD)"; done
for c in kcat psql java mvn; do command -v "$c" >/dev/null || die "$c not found"; done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
if [ "$PY" = 1 ]; then
    "$PYTHON" -c 'import confluent_kafka, fastavro, psycopg' 2>/dev/null ||
        die "$PYTHON lacks confluent-kafka/fastavro/psycopg (see bench/README.md), or use --no-python"
fi
psql -XAtqc 'SELECT 1' >/dev/null || die "PostgreSQL not reachable with the PG* variables"

# ---------------------------------------------------------------- the Flink job
if [ ! -d "$FLINK_DIR/target/lib" ] || [ ! -f "$FLINK_DIR/target/classes/tradeflow/peer/FlinkPeer.class" ] ||
    [ -n "$(find "$FLINK_DIR/pom.xml" "$FLINK_DIR/src" -newer "$FLINK_DIR/target/classes/tradeflow/peer/FlinkPeer.class" -type f)" ]; then
    say "building the Flink job (mvn package; first time: downloads from Maven Central)"
    (cd "$FLINK_DIR" && nice mvn -q -B package) || die "mvn package in $FLINK_DIR failed"
fi
FLINK_VERSION="$(sed -n 's:.*<flink.version>\(.*\)</flink.version>.*:\1:p' "$FLINK_DIR/pom.xml")"
JAVA_VERSION="$(java -version 2>&1 | head -1)"
# Flink's own scripts open these JDK packages to its serializers on Java 17.
JOPTS=()
for p in java.util java.lang java.lang.reflect java.io java.nio sun.nio.ch java.time java.math \
    java.net java.text java.util.concurrent java.util.concurrent.atomic; do
    JOPTS+=("--add-opens=java.base/$p=ALL-UNNAMED")
done

# ---------------------------------------------------------------- helpers
fresh_db() {
    local db="$1"
    DBS+=("$db")
    sql postgres "CREATE DATABASE $db"
    sql postgres "ALTER DATABASE $db SET track_functions = 'pl'"
    "$AGG" migrate --pg "dbname=$db" --log-level warning || die "migrating $db failed"
    # The Flink job's sink: a table shaped like reporting.partner_ranking.
    sql "$db" "CREATE SCHEMA flinkpeer; CREATE TABLE flinkpeer.partner_ranking
               (LIKE tradeflow.ranking INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
}

timed() { # "$1" receives "wall user sys maxrss_kb"
    local out="$1"
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$out" "$@"
}

# PostgreSQL's CPU seconds so far: the postmaster's own and reaped children's
# (cutime/cstime: backends that have exited) plus its live children's.
PG_PID=""
dd="$(sql postgres 'SHOW data_directory' 2>/dev/null || true)"
[ -n "$dd" ] && [ -r "$dd/postmaster.pid" ] && PG_PID="$(head -1 "$dd/postmaster.pid")"
TCK="$(getconf CLK_TCK)"
pg_cpu() {
    [ -n "$PG_PID" ] && [ -r "/proc/$PG_PID/stat" ] || { echo "nan"; return; }
    local f t=0
    for f in /proc/[0-9]*/stat; do
        # fields after the ")" of comm: 1 state, 2 ppid, ..., 12 utime, 13 stime, 14 cutime, 15 cstime
        read -r line <"$f" 2>/dev/null || continue
        line="${line##*) }"
        set -- $line
        if [ "${2}" = "$PG_PID" ]; then t=$((t + ${12} + ${13}))
        elif [ "$f" = "/proc/$PG_PID/stat" ]; then t=$((t + ${12} + ${13} + ${14} + ${15})); fi
    done
    awk -v t="$t" -v k="$TCK" 'BEGIN { printf "%.2f", t / k }'
}
load1() { awk '{ print $1 }' /proc/loadavg; }

# run NAME CMD...: timed, with PostgreSQL's CPU and the load; writes
# $WORK/NAME.time ("wall user sys rss") and $WORK/NAME.pg ("pgcpu load").
run() {
    local name="$1" a b l
    shift
    l="$(load1)"
    a="$(pg_cpu)"
    timed "$WORK/$name.time" "$@" || { tail -30 "$WORK/$name.log" >&2 2>/dev/null || true; die "$name failed"; }
    b="$(pg_cpu)"
    echo "$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == "nan" || b == "nan") print "nan"; else printf "%.2f", b - a }') $l" >"$WORK/$name.pg"
}

run_ours() { # NAME DB TOPIC
    run "$1" "$AGG" --pg "dbname=$2" -b "$B" -t "$3" -g "bench-peers-$1-$TAG" --exit-at-end \
        --log-level notice 2>"$WORK/$1.log"
}
run_flink() { # NAME DB TOPIC
    local url="jdbc:postgresql://${PGHOST:-127.0.0.1}:${PGPORT:-5432}/$2"
    # shellcheck disable=SC2086
    run "$1" nice java "${JOPTS[@]}" "-Xmx$FLINK_HEAP" -cp "$FLINK_DIR/target/classes:$FLINK_DIR/target/lib/*" \
        tradeflow.peer.FlinkPeer --brokers "$B" --topic "$3" --group "bench-peers-$1-$TAG" \
        --schema-file "$REPO/schemas/CustomsRecord.avsc" --sql "$FLINK_DIR/partner_ranking.sql" \
        --jdbc-url "$url" --sink-table flinkpeer.partner_ranking \
        --checkpoint-dir "$WORK/checkpoints-$1" --threads-out "$WORK/$1.threads" $FLINK_ARGS >"$WORK/$1.json" 2>"$WORK/$1.log"
}
run_python() { # NAME DB TOPIC
    run "$1" "$PYTHON" "$PEER" --pg "dbname=$2" -b "$B" -t "$3" -g "bench-peers-$1-$TAG" \
        >"$WORK/$1.json" 2>"$WORK/$1.log"
}

ranking_sum() { # DB TABLE
    sql "$1" "SELECT count(*) || ' ' || coalesce(md5(string_agg(
                  concat_ws(',', dataset, reporter, flow, basis, period, level, partner, rank,
                            value_usd, share_pct::numeric(30, 4), prev_year_value_usd,
                            yoy_pct::numeric(30, 4), share_change_pp::numeric(30, 4)),
                  '|' ORDER BY dataset, reporter, flow, basis, period, level, partner)), '-')
             FROM $2"
}

# Row-by-row: ours (reporting.partner_ranking) against the Flink job's table
# in the same database. Classes: only_ours, only_flink, rank_tie (only the
# rank differs, and ours has another partner of the same value in that
# scope, basis and period: ROW_NUMBER gave the tied partners different
# ranks), other (any other difference).
DIFF_SQL="
WITH o AS (SELECT * FROM reporting.partner_ranking),
     f AS (SELECT * FROM flinkpeer.partner_ranking),
     j AS (SELECT o.dataset AS o_ds, f.dataset AS f_ds,
                  coalesce(o.dataset, f.dataset) AS dataset, coalesce(o.reporter, f.reporter) AS reporter,
                  coalesce(o.flow, f.flow) AS flow, coalesce(o.level, f.level) AS level,
                  coalesce(o.basis, f.basis) AS basis, coalesce(o.period, f.period) AS period,
                  coalesce(o.partner, f.partner) AS partner,
                  o.rank AS o_rank, f.rank AS f_rank, o.value_usd AS o_value, f.value_usd AS f_value,
                  o.share_pct AS o_share, f.share_pct AS f_share,
                  o.prev_year_value_usd AS o_prev, f.prev_year_value_usd AS f_prev,
                  o.yoy_pct AS o_yoy, f.yoy_pct AS f_yoy,
                  o.share_change_pp AS o_scp, f.share_change_pp AS f_scp
             FROM o FULL JOIN f USING (dataset, reporter, flow, level, basis, period, partner)),
     d AS (SELECT j.*, CASE
                  WHEN o_ds IS NULL THEN 'only_flink'
                  WHEN f_ds IS NULL THEN 'only_ours'
                  WHEN (o_value, o_share, o_prev, o_yoy, o_scp) IS DISTINCT FROM
                       (f_value, f_share, f_prev, f_yoy, f_scp) THEN 'other'
                  WHEN EXISTS (SELECT 1 FROM o o2
                                WHERE (o2.dataset, o2.reporter, o2.flow, o2.level, o2.basis, o2.period)
                                    = (j.dataset, j.reporter, j.flow, j.level, j.basis, j.period)
                                  AND o2.partner <> j.partner AND o2.partner <> 'WLD'
                                  AND o2.value_usd = j.o_value) THEN 'rank_tie'
                  ELSE 'other' END AS class
             FROM j
            WHERE o_ds IS NULL OR f_ds IS NULL
               OR (o_rank, o_value, o_share, o_prev, o_yoy, o_scp) IS DISTINCT FROM
                  (f_rank, f_value, f_share, f_prev, f_yoy, f_scp))"

compare_flink() { # DB -> prints 'rows_ours rows_flink only_ours only_flink rank_tie other'
    sql "$1" "$DIFF_SQL
        SELECT (SELECT count(*) FROM reporting.partner_ranking) || ' ' ||
               (SELECT count(*) FROM flinkpeer.partner_ranking) || ' ' ||
               count(*) FILTER (WHERE class = 'only_ours') || ' ' ||
               count(*) FILTER (WHERE class = 'only_flink') || ' ' ||
               count(*) FILTER (WHERE class = 'rank_tie') || ' ' ||
               count(*) FILTER (WHERE class = 'other') FROM d"
}

# A feed of exactly n records in the given shape (extra genfeed options);
# the generator sizes by a scale factor, so calibrate it on a small run.
gen_shape() { # N OUT SEED GENFEED-OPTIONS...
    local n="$1" out="$2" seed="$3" per scale
    shift 3
    "$GENFEED" --kind customs "$@" --scale 0.05 --seed "$seed" -q --out "$WORK/calib.csv"
    per="$(($(wc -l <"$WORK/calib.csv") - 1))"
    rm -f "$WORK/calib.csv"
    [ "$per" -gt 0 ] || die "genfeed $* gave no records"
    scale="$(awk -v n="$n" -v per="$per" 'BEGIN { s = n * 1.08 / (per / 0.05); if (s < 0.01) s = 0.01; printf "%.4f", s }')"
    local try got
    for try in 1 2 3 4; do # (not linear at small scales: grow until it is enough)
        "$GENFEED" --kind customs "$@" --scale "$scale" --seed "$seed" -q --out "$out.full"
        got="$(($(wc -l <"$out.full") - 1))"
        [ "$got" -ge "$n" ] && break
        scale="$(awk -v s="$scale" -v n="$n" -v g="$got" 'BEGIN { printf "%.4f", s * n * 1.1 / (g > 0 ? g : 1) }')"
    done
    head -n "$((n + 1))" "$out.full" >"$out"
    rm -f "$out.full"
    [ "$(($(wc -l <"$out") - 1))" -eq "$n" ] || die "genfeed $* gave fewer than $n records"
}

produce() { # TOPIC FILE...
    local t="$1"
    shift
    "$PRODUCE" --kind customs -q --partitions "$PARTS" --topic "$t" "$@" || die "tradeflow-produce failed"
}

say "load: $(uptime)"
UPTIME_START="$(uptime)"

# ---------------------------------------------------------------- 1. cases
CASE_RESULT=""
if [ "$CASES" = 1 ]; then
    CT="bench.peers.cases.$TAG"
    DBC="bench_peers_cases_$TAG"
    say "exactness cases: publishing cases1.csv, then cases2.csv, to $CT"
    CASE_MSGS=$(($(wc -l <"$FLINK_DIR/cases/cases1.csv") + $(wc -l <"$FLINK_DIR/cases/cases2.csv") - 2))
    produce "$CT" "$FLINK_DIR/cases/cases1.csv"
    produce "$CT" "$FLINK_DIR/cases/cases2.csv"
    fresh_db "$DBC"
    say "cases: tradeflow-aggregate"
    run_ours cases_ours "$DBC" "$CT"
    say "cases: the Flink job"
    run_flink cases_flink "$DBC" "$CT"
    echo "== exactness cases (bench/peers/flink/cases/README.md): ours vs the Flink job, per case =="
    sql "$DBC" "$DIFF_SQL, c(reporter, name) AS (VALUES ('DUPA', 'duplicates'),
                  ('REVH', 'higher revision replaces lower'),
                  ('OOOR', 'lower revision after a higher one, other partition'),
                  ('MOVE', 'revision moves partner / month / year'),
                  ('NOJN', 'missing-January year'), ('WLDP', 'WLD present'),
                  ('WLDA', 'WLD absent'), ('TIES', 'ties'), ('GRPS', 'group level (GBR leaves the EU)'))
        SELECT rpad(c.reporter || ' ' || c.name, 58) ||
               lpad((SELECT count(*) FROM reporting.partner_ranking r WHERE r.reporter = c.reporter)::text, 5) ||
               ' rows: ' ||
               CASE WHEN count(d.class) = 0 THEN 'identical'
                    ELSE count(d.class) || ' differ (' ||
                         string_agg(DISTINCT d.class, ', ') || ')' END
          FROM c LEFT JOIN d ON d.reporter = c.reporter
         GROUP BY c.reporter, c.name ORDER BY min(c.name) = 'ties', c.reporter"
    echo "-- the differing rows (o_ = ours, f_ = the Flink job):"
    psql -X -q -v ON_ERROR_STOP=1 -d "$DBC" -P pager=off -c "$DIFF_SQL
        SELECT reporter, flow, level, basis, period, partner, class, o_rank, f_rank, o_value, f_value,
               o_share, f_share, o_yoy, f_yoy
          FROM d ORDER BY reporter, flow, level, basis, period, partner"
    CASE_RESULT="$(compare_flink "$DBC")"
fi

# ---------------------------------------------------------------- 2. feeds
RESULTS="$WORK/results"
: >"$RESULTS"
if [ "$RUNS" = 1 ]; then
    for shape in $SHAPES; do
        opts=()
        if [ "$shape" = realistic ]; then
            if ! "$GENFEED" --help 2>&1 | grep -q -- '--realistic'; then
                say "$GENFEED has no --realistic/--reporters/--partners/--hs options (issue 15's" \
                    "genfeed): the realistic shape is skipped; sample shape only"
                echo "realistic skipped" >>"$RESULTS"
                continue
            fi
            opts=(--realistic)
        fi
        say "[$shape] generating $N SYNTHETIC customs records (${opts[*]:-default shape})"
        gen_shape "$N" "$WORK/$shape.csv" 7 "${opts[@]}"
        T="bench.peers.$shape.$TAG"
        say "[$shape] publishing them to $T ($PARTS partitions)"
        produce "$T" "$WORK/$shape.csv"
        got="$(kcat -C -b "$B" -t "$T" -e -q -o beginning -f '%o\n' | wc -l)"
        [ "$got" -eq "$N" ] || die "the topic holds $got messages, expected $N"
        rm -f "$WORK/$shape.csv"
        DBO="bench_peers_${shape}_$TAG"
        fresh_db "$DBO"
        say "[$shape] tradeflow-aggregate (load $(load1))"
        run_ours "${shape}_ours" "$DBO" "$T"
        grep 'done:' "$WORK/${shape}_ours.log" | sed 's/^.*done: /  ours: /' >&2 || true
        say "[$shape] the Flink job (load $(load1))"
        run_flink "${shape}_flink" "$DBO" "$T"
        sed 's/^/  flink: /' "$WORK/${shape}_flink.json" >&2
        echo "== [$shape] the Flink job's CPU by thread (ThreadMXBean, sampled every 0.5 s) =="
        sed 's/^/  /' "$WORK/${shape}_flink.threads" 2>/dev/null || true
        echo "== [$shape] PostgreSQL time per function, ours =="
        sql "$DBO" "SELECT '  ' || funcname || ' calls=' || calls || ' total_ms=' || round(total_time::numeric)
                    FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 4"
        cmp="$(compare_flink "$DBO")"
        sum_o="$(ranking_sum "$DBO" reporting.partner_ranking)"
        same_py="-"
        if [ "$PY" = 1 ]; then
            DBP="bench_peers_${shape}_py_$TAG"
            fresh_db "$DBP"
            say "[$shape] the Python peer (load $(load1))"
            run_python "${shape}_py" "$DBP" "$T"
            sed 's/^/  python: /' "$WORK/${shape}_py.json" >&2
            sum_p="$(ranking_sum "$DBP" reporting.partner_ranking)"
            same_py=no
            [ "$sum_o" = "$sum_p" ] && same_py=yes
        fi
        echo "$shape $cmp $same_py" >>"$RESULTS"
        [ "$KEEP" = 1 ] || sql postgres "DROP DATABASE IF EXISTS $DBO" || true
    done
fi

# ---------------------------------------------------------------- 3. report
echo
if [ "$RUNS" = 1 ]; then
    echo "== tradeflow-aggregate vs its peers: $N SYNTHETIC customs records per feed, $PARTS partitions =="
else
    echo "== tradeflow-aggregate vs the Flink job: the exactness cases only =="
fi
echo "versions: $("$AGG" --version 2>&1 | head -1); Flink $FLINK_VERSION (MiniCluster, $JAVA_VERSION);" \
    "$("$PYTHON" --version 2>&1) + bench/peer_aggregate.py; $(psql -XAtqc 'SHOW server_version' | cut -d' ' -f1) PostgreSQL;" \
    "flink args: ${FLINK_ARGS:-defaults}"
echo "load at the start: $UPTIME_START"
echo "load at the end:   $(uptime)"
printf "%-10s %-22s %8s %10s %9s %8s %8s %9s %7s\n" feed system "wall s" records/s "CPU s" "us/rec" "PG CPU s" "peak RSS" load1
line() { # shape label name [messages]
    local f="$WORK/$3.time" w u s r pc l
    [ -s "$f" ] || return 0
    read -r w u s r <"$f"
    read -r pc l <"$WORK/$3.pg"
    awk -v sh="$1" -v lab="$2" -v n="${4:-$N}" -v w="$w" -v u="$u" -v s="$s" -v r="$r" -v pc="$pc" -v l="$l" 'BEGIN {
        printf "%-10s %-22s %8.2f %10.0f %9.2f %8.1f %8s %7.0f MB %7s\n", sh, lab, w, n / w, u + s,
               (u + s) / n * 1e6, pc, r / 1024, l }'
}
for shape in $SHAPES; do
    line "$shape" tradeflow-aggregate "${shape}_ours"
    line "$shape" "Flink $FLINK_VERSION SQL" "${shape}_flink"
    line "$shape" "Python peer" "${shape}_py"
done
if [ -n "$CASE_RESULT" ]; then
    line cases tradeflow-aggregate cases_ours "$CASE_MSGS"
    line cases "Flink $FLINK_VERSION SQL" cases_flink "$CASE_MSGS"
fi
echo "(records/s = feed records / wall time of the whole process, JVM start and job planning included;"
echo " CPU = user+sys of the client process; PG CPU = PostgreSQL server processes over the same interval)"

echo
printf "%-10s %-44s %10s %10s %s\n" feed goal measured target ""
goal_lines() {
    local shape="$1" o f
    [ -s "$WORK/${shape}_ours.time" ] && [ -s "$WORK/${shape}_flink.time" ] || return 0
    read -r ow ou os _ <"$WORK/${shape}_ours.time"
    read -r fw fu fs _ <"$WORK/${shape}_flink.time"
    awk -v sh="$shape" -v ow="$ow" -v ou="$ou" -v os="$os" -v fw="$fw" -v fu="$fu" -v fs="$fs" 'BEGIN {
        r = fw / ow; c = (ou + os) / (fu + fs);
        printf "%-10s %-44s %9.2fx %10s %s\n", sh, "ours / Flink, records/s", r, ">= 3x", (r >= 3 ? "met" : "MISSED");
        printf "%-10s %-44s %10.3f %10s %s\n", sh, "ours / Flink, client CPU per record", c, "<= 0.2", (c <= 0.2 ? "met" : "MISSED") }'
}
for shape in $SHAPES; do goal_lines "$shape"; done
echo
echo "row-by-row, reporting.partner_ranking (ours) vs flinkpeer.partner_ranking (Flink):"
echo "  feed: rows ours / rows Flink / only ours / only Flink / rank differs on a tie / other differences; Python peer identical (checksum)"
[ -n "$CASE_RESULT" ] && echo "  cases: $CASE_RESULT"
while read -r shape a b c d e f g; do
    [ "$a" = skipped ] && { echo "  $shape: skipped (no --realistic in $GENFEED)"; continue; }
    echo "  $shape: $a / $b / $c / $d / $e / $f; Python peer identical: $g"
done <"$RESULTS"
