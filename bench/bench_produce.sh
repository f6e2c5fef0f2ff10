#!/usr/bin/env bash
# bench/bench_produce.sh [N] - tradeflow-produce against kcat, same run.
#
# 1. Generates a customs CSV of N records (default 1,000,000; synthetic).
# 2. Times tradeflow-produce from the file to every record acknowledged and
#    the file's transaction committed (defaults: transaction, idempotent,
#    acks=all).
# 3. Reads back the key and value size of every message we published and
#    writes a kcat input with the same number of messages of the same key and
#    value sizes; times `kcat -P` producing it to a topic created the same way
#    (same partition count), with kcat's defaults plus the same guarantees we
#    give (acks=all, idempotence). KCAT_X="-X k=v ..." adds kcat properties.
# 4. Repeats 2-3 ROUNDS times (default 3), alternating, and prints the median
#    rate of each, the CPU time, and the ratio (goal: >= 0.70).
#
# Needs: a broker ($TRADEFLOW_BROKERS, from `deploy/stack.sh env`), kcat,
# a build (TF_BUILD_DIR or build/). PRODUCE_ARGS adds tradeflow-produce
# options (e.g. "--no-transaction" or "-X compression.type=lz4").
set -euo pipefail

N="${1:-${N:-1000000}}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${TF_BUILD_DIR:-$REPO/build}"
PRODUCE="$BUILD/bin/tradeflow-produce"
: "${TRADEFLOW_BROKERS:?set TRADEFLOW_BROKERS (eval \"\$(deploy/stack.sh env)\")}"
B="$TRADEFLOW_BROKERS"
PARTS="${PARTITIONS:-6}"
[ -x "$PRODUCE" ] || { echo "bench_produce: $PRODUCE not built" >&2; exit 2; }
command -v kcat >/dev/null || { echo "bench_produce: kcat not found" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench_produce.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
TAG="$(date +%s)-$$"

now() { date +%s.%N; }

echo "bench_produce: generating $N synthetic customs records" >&2
awk -v n="$N" 'BEGIN {
    srand(42);
    split("VNM MYS THA SGP IDN PHL MMR KHM LAO BRN USA JPN KOR HKG TWN AUS DEU FRA ITA NLD ESP BEL POL SWE AUT IRL DNK FIN CZE PRT HUN ROU GRC BRA RUS IND CAN MEX GBR WLD", P, " ");
    np = 0; for (k in P) np++;
    print "record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit";
    for (i = 1; i <= n; i++) {
        p = P[1 + int(rand() * np)];
        f = rand() < 0.5 ? "export" : "import";
        y = 2018 + int(rand() * 4); m = 1 + int(rand() * 12);
        hs = sprintf("%02d", 1 + int(rand() * 97));
        v = sprintf("%d.%02d", int(rand() * 100000000), int(rand() * 100));
        q = sprintf("%d.%03d", int(rand() * 1000000), int(rand() * 1000));
        printf "SYN-%09d,%d,CHN,%s,%s,%04d-%02d,%s,%s,%s,kg\n", i, (i % 10 == 0), p, f, y, m, hs, v, q;
    }
}' >"$WORK/feed.csv"
head -1 "$WORK/feed.csv" >"$WORK/empty.csv"
echo "bench_produce: $(du -h "$WORK/feed.csv" | cut -f1) of CSV" >&2

ROUNDS="${ROUNDS:-3}"
# Times one command: appends "wall user sys" (seconds) to file $1.
timed() {
    local out="$1"
    shift
    /usr/bin/time -a -o "$out" -f '%e %U %S' "$@"
}

for round in $(seq 1 "$ROUNDS"); do
    T_OURS="bench.produce.ours.$TAG.$round"
    T_KCAT="bench.produce.kcat.$TAG.$round"
    # Creates both topics the same way (Admin API, PARTS partitions).
    "$PRODUCE" --kind customs -q --partitions "$PARTS" --topic "$T_OURS" "$WORK/empty.csv"
    "$PRODUCE" --kind customs -q --partitions "$PARTS" --topic "$T_KCAT" "$WORK/empty.csv"

    echo "bench_produce: round $round/$ROUNDS: tradeflow-produce ${PRODUCE_ARGS:-}" >&2
    # shellcheck disable=SC2086
    timed "$WORK/t_ours" "$PRODUCE" --kind customs -q --topic "$T_OURS" ${PRODUCE_ARGS:-} "$WORK/feed.csv"

    if [ "$round" -eq 1 ]; then
        # The key and value sizes of what we published, in order.
        kcat -C -b "$B" -t "$T_OURS" -e -q -f '%k %S\n' >"$WORK/sizes"
        got="$(wc -l <"$WORK/sizes")"
        [ "$got" -eq "$N" ] || { echo "bench_produce: read back $got messages, expected $N" >&2; exit 1; }
        avg="$(awk '{k += length($1); v += $2} END {printf "key %.1f B, value %.1f B", k / NR, v / NR}' "$WORK/sizes")"
        # kcat input: the same keys, values of the same sizes (printable
        # filler, so the line-oriented input of kcat -P cannot split them).
        awk '{ v = sprintf("%*s", $2, ""); gsub(/ /, "x", v); print $1 "\t" v }' "$WORK/sizes" >"$WORK/kcat.in"
    fi

    echo "bench_produce: round $round/$ROUNDS: kcat -P" >&2
    # shellcheck disable=SC2086
    timed "$WORK/t_kcat" kcat -P -b "$B" -t "$T_KCAT" -K $'\t' -X enable.idempotence=true -X acks=all \
        ${KCAT_X:-} -l "$WORK/kcat.in"
    if [ "$round" -eq 1 ]; then
        kgot="$(kcat -C -b "$B" -t "$T_KCAT" -e -q -f '\n' | wc -l)"
        [ "$kgot" -eq "$N" ] || { echo "bench_produce: kcat topic has $kgot messages, expected $N" >&2; exit 1; }
    fi
done

# Median wall time of the rounds (the machine is shared: one round can be
# slowed by others' work), and the median CPU time (user + sys).
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ow="$(awk '{print $1}' "$WORK/t_ours" | median)"
kw="$(awk '{print $1}' "$WORK/t_kcat" | median)"
oc="$(awk '{print $2 + $3}' "$WORK/t_ours" | median)"
kc="$(awk '{print $2 + $3}' "$WORK/t_kcat" | median)"
awk -v n="$N" -v ow="$ow" -v kw="$kw" -v oc="$oc" -v kc="$kc" -v avg="$avg" -v r="$ROUNDS" \
    -v all_o="$(awk '{printf "%s ", $1}' "$WORK/t_ours")" -v all_k="$(awk '{printf "%s ", $1}' "$WORK/t_kcat")" 'BEGIN {
    printf "messages:          %d per run (%s), %d rounds, median of each\n", n, avg, r;
    printf "tradeflow-produce: %.2f s, %.0f records/s, CPU %.2f s (CSV file -> committed) [runs: %s]\n", ow, n / ow, oc, all_o;
    printf "kcat -P:           %.2f s, %.0f messages/s, CPU %.2f s (same count and sizes) [runs: %s]\n", kw, n / kw, kc, all_k;
    printf "ratio:             %.2f (goal >= 0.70)\n", kw / ow;
}'
