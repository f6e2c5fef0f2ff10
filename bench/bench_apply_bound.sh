#!/usr/bin/env bash
# bench/bench_apply_bound.sh [--records N] [--batch-size N] [--keep]
#
# How fast can PostgreSQL on this machine apply tradeflow-aggregate's batches
# at all, with no Kafka and no client? A bound for bench_aggregate.sh's goal
# "≥ 50% of the lower limit" (docs/performance.md explains the use):
#
#  1. generates N SYNTHETIC customs records (as bench_aggregate.sh) and loads
#     them into public.feed of two fresh, migrated scratch databases;
#  2. ONE session applies them in batches of --batch-size lines of the feed:
#     tf_stage filled by INSERT ... SELECT (the highest revision per
#     record_id of the batch, as our client stages it), apply_stage(),
#     COMMIT; then one settle point (settle_alerts), timed on its own;
#  3. TWO sessions at once, each applying the half of every batch whose
#     record_id hashes to it, with an EXPERIMENTAL variant installed in that
#     scratch database only: shared reporter locks in apply_stage, and a
#     probe that locks the facts rows it reads, in record_id order (what
#     several apply connections of one reporter would need); then a settle
#     point;
#     (the time inside apply_stage is kept apart, and a COPY of all records
#     into an unindexed temporary table gives what staging by COPY, as our
#     client does it, costs);
#  4. prints the wall time and the machine's busy CPU (from /proc/stat, so
#     run it on an otherwise quiet machine) of 2 and 3, the bound "one
#     session staged by COPY + settle point" (no Kafka, no client, no start),
#     and checks that both databases end with the same facts, monthly and
#     ranking tables.
#
# Needs the stack's PostgreSQL (eval "$(deploy/stack.sh env)": a role that
# may create databases), a build (TF_BUILD_DIR, default build/) and psql.
# Databases are named bench_bound_*; --keep keeps them.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${TF_BUILD_DIR:-$REPO/build}"
AGG="$BUILD/bin/tradeflow-aggregate"
GENFEED="$REPO/producers/tradeflow-genfeed"
N=200000
BATCH=20000
KEEP=0
die() { echo "bench_apply_bound: $*" >&2; exit 1; }
say() { echo "bench_apply_bound: $*" >&2; }
. "$REPO/bench/lib.sh"
while [ $# -gt 0 ]; do
    case "$1" in
    --records) N="${2:?}"; shift 2 ;;
    --batch-size) BATCH="${2:?}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,3s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 64 ;;
    *) die "unknown argument $1" ;;
    esac
done
[[ "$N" =~ ^[1-9][0-9]*$ && "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "--records and --batch-size: positive integers"
[ -x "$AGG" ] || die "$AGG not built (TF_BUILD_DIR=$BUILD)"
command -v psql >/dev/null || die "psql not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench_apply_bound.XXXXXX")"
TAG="$(date +%Y%m%d%H%M%S)_$$"
ONE="bench_bound_one_$TAG"
TWO="bench_bound_two_$TAG"
cleanup() {
    if [ "$KEEP" = 0 ]; then
        for d in "$ONE" "$TWO"; do psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS $d" || true; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
HZ="$(getconf CLK_TCK)"

say "generating $N SYNTHETIC customs records"
gen_feed "$N" "$WORK/feed.csv" 7

for db in "$ONE" "$TWO"; do
    sql postgres "CREATE DATABASE $db"
    "$AGG" migrate --pg "dbname=$db" --log-level warning || die "migrating $db failed"
    psql -XAtq -v ON_ERROR_STOP=1 -d "$db" <<SQL || die "loading the feed into $db failed"
CREATE TABLE public.feed_raw (record_id text, revision bigint, reporter text, partner text,
    flow text, period text, hs_code text, value_usd numeric, quantity numeric, unit text);
\\copy public.feed_raw FROM '$WORK/feed.csv' CSV HEADER
CREATE TABLE public.feed AS
SELECT row_number() OVER () AS n, 'customs'::text AS dataset, record_id, revision, reporter,
       partner, flow, (period || '-01')::date AS period, value_usd::numeric(20,2) AS value_usd,
       hs_code, quantity::numeric(23,3) AS quantity, unit, NULL::text AS sector,
       'bench/0/0'::text AS source
  FROM public.feed_raw;
CREATE INDEX ON public.feed (n);
ANALYZE public.feed;
-- Applies the feed in batches of bsize lines; with nlanes > 1 only the
-- records whose record_id hashes to this lane.
CREATE TABLE public.apply_time (lane int, seconds double precision);
-- Records the time spent in apply_stage in public.apply_time.
CREATE PROCEDURE public.apply_feed(bsize int, lane int, nlanes int)
LANGUAGE plpgsql AS \$\$
DECLARE
    lo bigint := 1;
    maxn bigint;
    t timestamptz;
    spent double precision := 0;
BEGIN
    PERFORM tradeflow.prepare_session();
    SELECT max(n) INTO maxn FROM public.feed;
    COMMIT;
    WHILE lo <= maxn LOOP
        INSERT INTO tf_stage (dataset, record_id, revision, reporter, partner, flow, period,
                              value_usd, hs_code, quantity, unit, sector, source)
        SELECT DISTINCT ON (dataset, record_id) dataset, record_id, revision, reporter, partner,
               flow, period, value_usd, hs_code, quantity, unit, sector, source
          FROM public.feed
         WHERE n BETWEEN lo AND lo + bsize - 1 AND abs(hashtext(record_id)) % nlanes = lane
         ORDER BY dataset, record_id, revision DESC;
        t := clock_timestamp();
        PERFORM tradeflow.apply_stage();
        spent := spent + extract(epoch FROM clock_timestamp() - t);
        COMMIT;
        lo := lo + bsize;
    END LOOP;
    INSERT INTO public.apply_time VALUES (lane, spent);
END \$\$;
SQL
done

# The experimental variant, in the second database only.
variant() { # $1 function signature, $2 text to find, $3 its replacement
    local def
    def="$(sql "$TWO" "SELECT pg_get_functiondef('$1'::regprocedure)")"
    case "$def" in *"$2"*) ;; *) die "$1 no longer contains '$2': update this script" ;; esac
    sql "$TWO" "${def//"$2"/"$3"}"
}
variant 'tradeflow.apply_stage(boolean)' 'PERFORM pg_advisory_xact_lock(k);' \
    'PERFORM pg_advisory_xact_lock_shared(k);'
variant 'tradeflow.probe_facts()' 'JOIN tradeflow.facts f USING (dataset, record_id);' \
    'JOIN tradeflow.facts f USING (dataset, record_id) ORDER BY s.dataset, s.record_id FOR UPDATE OF f;'

settle() { sql "$1" "SELECT raised FROM tradeflow.settle_alerts(5, DATE '1900-01-01')" >/dev/null; }

# The staging floor: COPY of all records into an unindexed temporary table
# with tf_stage's columns (what our client's COPY costs PostgreSQL).
psql -XAtq -v ON_ERROR_STOP=1 -d "$ONE" -c "\\copy (SELECT dataset, record_id, revision, reporter,
    partner, flow, period, value_usd, hs_code, quantity, unit, sector, source FROM public.feed) TO '$WORK/stage.tsv'"
tc0="$(now)"
psql -XAtq -v ON_ERROR_STOP=1 -d "$ONE" -c "SELECT tradeflow.prepare_session()" \
    -c "CREATE TEMP TABLE stage_all (LIKE tf_stage)" -c "\\copy stage_all FROM '$WORK/stage.tsv'" >/dev/null
tc1="$(now)"
say "one session"
c0="$(busy)"; t0="$(now)"
sql "$ONE" "CALL public.apply_feed($BATCH, 0, 1)"
t1="$(now)"; c1="$(busy)"
settle "$ONE"
t2="$(now)"
APPLY_S="$(sql "$ONE" "SELECT seconds FROM public.apply_time")"

say "two sessions, experimental locks"
c2="$(busy)"; t3="$(now)"
sql "$TWO" "CALL public.apply_feed($BATCH, 0, 2)" &
p0=$!
sql "$TWO" "CALL public.apply_feed($BATCH, 1, 2)" || die "lane 1 failed"
wait "$p0" || die "lane 0 failed"
t4="$(now)"; c3="$(busy)"
settle "$TWO"

tables() {
    sql "$1" "SELECT (SELECT md5(string_agg(format('%s|%s|%s|%s', record_id, revision, partner, value_usd), ','
                              ORDER BY dataset, record_id)) FROM tradeflow.facts)
               || ' ' || (SELECT md5(string_agg(m::text, ',' ORDER BY m::text)) FROM tradeflow.monthly m)
               || ' ' || (SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM tradeflow.ranking r)"
}
SAME=yes
[ "$(tables "$ONE")" = "$(tables "$TWO")" ] || SAME=NO

awk -v n="$N" -v b="$BATCH" -v hz="$HZ" -v ap="$APPLY_S" -v tc0="$tc0" -v tc1="$tc1" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" \
    -v t4="$t4" -v c0="$c0" -v c1="$c1" -v c2="$c2" -v c3="$c3" -v same="$SAME" 'BEGIN {
    w1 = t1 - t0; w2 = t4 - t3; s = t2 - t1; sc = tc1 - tc0;
    printf "== PostgreSQL alone: %d SYNTHETIC customs records, batches of %d feed lines ==\n", n, b;
    printf "%-44s %8s %14s %12s\n", "", "wall s", "busy core-s", "records/s";
    printf "%-44s %8.2f %14.2f %12.0f\n", "one session (apply_stage as shipped)", w1, (c1 - c0) / hz, n / w1;
    printf "%-44s %8.2f %14s\n", "  of which in apply_stage", ap, "";
    printf "%-44s %8.2f %14s\n", "  + one settle point", s, "";
    printf "%-44s %8.2f %14s\n", "COPY of all records into a temp table", sc, "";
    printf "%-44s %8.2f %14.2f %12.0f\n", "two sessions (shared locks, row-locking probe)", w2, (c3 - c2) / hz, n / w2;
    printf "two sessions / one: %.2fx the speed, %.2fx the CPU; cores busy %.0f%%; same tables: %s\n",
           w1 / w2, (c3 - c2) / (c1 - c0), 100 * (c3 - c2) / hz / w2 / 2, same;
    printf "one session, staged by COPY, + settle point: %.2f s = %.0f records/s at most\n",
           ap + sc + s, n / (ap + sc + s);
}'
[ "$SAME" = yes ] || die "the two databases differ"
