# bench/lib.sh - sourced by the benchmark scripts (needs $GENFEED and die()).

now() { date +%s.%N; }
sql() { psql -XAtq -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# Exactly n synthetic customs records in $2 (the first n of a slightly larger
# feed: genfeed sizes by a scale factor, about 19,350 records per unit).
gen_feed() {
    local n="$1" out="$2" seed="$3" scale
    scale="$(awk -v n="$n" 'BEGIN { s = n * 1.08 / 19000; if (s < 0.01) s = 0.01; printf "%.4f", s }')"
    "$GENFEED" --kind customs --scale "$scale" --seed "$seed" -q --out "$out.full"
    head -n "$((n + 1))" "$out.full" >"$out"
    rm -f "$out.full"
    [ "$(($(wc -l <"$out") - 1))" -eq "$n" ] || die "genfeed gave fewer than $n records"
}
