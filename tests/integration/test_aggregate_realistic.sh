#!/usr/bin/env bash
# The realistic shape (issue 15), small enough for the oracle: two reporters
# (CHN calibrated, USA), 60 partners incl. the ASEAN and EU members, 2017-2021,
# one line per HS chapter, 3% revisions reaching back up to 24 releases (a
# fifth to another partner, a tenth to another period), 1% duplicates
# (tradeflow-genfeed --reporters 2 --partners 60 --hs, SYNTHETIC).
#   1. Consumed in small batches, settling every second with a settle budget
#      of 1 ms, so that every settle point re-derives one reporter-year and
#      leaves the rest pending (settle_alerts' bounded path, the evaluations
#      it puts off, and --exit-at-end waiting until nothing is pending);
#      reporting views = the oracle to the cent, active shifts = the alerts
#      oracle.
#   2. A second feed of revisions of old periods (the first feed's last
#      revisions of every record_id, re-valued, some moved to another partner
#      or period), consumed the same way: still exact, to the cent and in the
#      alerts, against the oracle given both feeds.
#   3. The same two feeds into a second database with the default budget:
#      the same ranking rows (md5) as with budget 1 ms.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
. "$TF_SOURCE_DIR/tests/integration/alerts_lib.sh"
tf_require_stack
tf_new_db agg_realistic
tf_new_workdir W
TC="$(tf_topic realistic)"
TR="$(tf_topic realistic_rev)"
GEN="$TF_SOURCE_DIR/producers/tradeflow-genfeed"

"$TF_PYTHON" "$GEN" --kind customs --reporters 2 --partners 60 --years 2017-2021 --hs \
    --scale 0.6 --seed 31 -q --out "$W/feed.csv" || fail "genfeed"
expect "record_ids are synthetic" "$(tail -n +2 "$W/feed.csv" | awk '!/^SYN-/' | wc -l)" 0
"$TF_PYTHON" "$GEN" --kind customs --reporters 2 --partners 60 --years 2017-2021 --hs \
    --scale 0.6 --seed 31 -q --out "$W/again.csv" || fail "genfeed"
cmp -s "$W/feed.csv" "$W/again.csv" || fail "genfeed --reporters is not deterministic per seed"
# The mix: ~3% of record_ids revised (a fifth of those to another partner, a
# tenth to another period), ~1% exact duplicates, 61 partner codes (60 + WLD).
"$TF_PYTHON" - "$W/feed.csv" <<'PY' || fail "the realistic feed's mix is off"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
by = {}
for r in rows:
    by.setdefault(r["record_id"], []).append(r)
ids = len(by)
rev = [v for v in by.values() if len({x["revision"] for x in v}) > 1]
moved_p = sum(1 for v in rev if len({x["partner"] for x in v}) > 1)
moved_t = sum(1 for v in rev if len({x["period"] for x in v}) > 1)
dups = len(rows) - sum(len({tuple(x.values()) for x in v}) for v in by.values())
partners = {r["partner"] for r in rows}
print(f"ok: {ids} record_ids, {len(rev)} revised ({100 * len(rev) / ids:.1f}%; "
      f"{100 * moved_p / len(rev):.0f}% to another partner, {100 * moved_t / len(rev):.0f}% "
      f"to another period), {dups} exact duplicates ({100 * dups / ids:.1f}%), "
      f"{len(partners)} partner codes")
assert 0.025 < len(rev) / ids < 0.035 and 0.14 < moved_p / len(rev) < 0.26
assert 0.05 < moved_t / len(rev) < 0.15 and 0.007 < dups / ids < 0.013
assert len(partners) == 61 and {"VNM", "DEU", "GBR", "WLD"} <= partners
PY
expect "reporters" "$(tail -n +2 "$W/feed.csv" | cut -d, -f3 | sort -u | tr '\n' ' ')" "CHN USA "
# Revisions of old periods: the highest revision of 3% of the record_ids of
# 2017-2019, one higher, another value; a fifth to another partner of the
# same reporter, a tenth to the neighbouring month.
"$TF_PYTHON" - "$W/feed.csv" "$W/revisions.csv" <<'PY'
import csv, random, sys
rows = {}
with open(sys.argv[1], newline="") as fh:
    rd = csv.DictReader(fh)
    cols = rd.fieldnames
    for r in rd:
        o = rows.get(r["record_id"])
        if o is None or int(r["revision"]) > int(o["revision"]):
            rows[r["record_id"]] = r
rng = random.Random(5)
partners = {}
for r in rows.values():
    partners.setdefault(r["reporter"], set()).add(r["partner"])
partners = {k: sorted(v - {"WLD"}) for k, v in partners.items()}
old = sorted(rid for rid, r in rows.items() if r["period"] < "2020")
with open(sys.argv[2], "w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for rid in rng.sample(old, len(old) * 3 // 100):
        r = dict(rows[rid])
        r["revision"] = str(int(r["revision"]) + 1)
        cents = int(r["value_usd"].replace(".", ""))
        cents = int(cents * rng.uniform(0.2, 3.0)) + rng.randint(0, 999)
        r["value_usd"] = "%d.%02d" % divmod(cents, 100)
        r["quantity"] = ""
        r["unit"] = ""
        x = rng.random()
        if x < 0.2 and r["partner"] != "WLD":
            r["partner"] = rng.choice(partners[r["reporter"]])
        elif x < 0.3:
            y, m = int(r["period"][:4]), int(r["period"][5:7])
            m = m + 1 if m < 12 else m - 1
            r["period"] = "%04d-%02d" % (y, m)
        w.writerow(r)
PY
echo "ok: $(($(wc -l <"$W/feed.csv") - 1)) realistic lines, $(($(wc -l <"$W/revisions.csv") - 1)) revisions of old periods"

"$(tf_bin tradeflow-aggregate)" migrate --log-level warning || fail "migrate"
produce customs "$TC" "$W/feed.csv"
TF_AGG_LOG=debug aggregate "grp-$TC" "$TC" -- --batch-size 700 --settle-interval 1 \
    --settle-budget 1 2>"$W/agg1.log"
partial="$(grep -c 'settle point: .* ms, [1-9][0-9]* (scope, period)s left' "$W/agg1.log" || true)"
[ "$partial" -gt 0 ] || fail "no settle point left work pending: the bounded path was not exercised"
echo "ok: $partial settle points ran out of their 1 ms budget and left work pending"
expect "nothing pending at the exit" "$(q "select count(*) from tradeflow.settle_pending")" 0
check_oracle "$W" --customs "$W/feed.csv"
check_alerts_oracle "$W" 10 --customs "$W/feed.csv"

produce customs "$TR" "$W/revisions.csv"
TF_AGG_LOG=debug aggregate "grp-$TC" "$TC" "$TR" -- --batch-size 300 --settle-interval 1 \
    --settle-budget 1 2>"$W/agg2.log"
expect "nothing pending at the exit" "$(q "select count(*) from tradeflow.settle_pending")" 0
expect "revisions applied" "$(q "select count(*) from tradeflow.facts where source like '$TR/%'")" \
    "$(($(wc -l <"$W/revisions.csv") - 1))"
check_oracle "$W" --customs "$W/feed.csv" --customs "$W/revisions.csv"
check_alerts_oracle "$W" 10 --customs "$W/feed.csv" --customs "$W/revisions.csv"
md5_a="$(q "select md5(string_agg(t::text, '|' order by dataset, reporter, flow, basis, period, level, partner)) from reporting.partner_ranking t")"

tf_new_db agg_realistic_b
"$(tf_bin tradeflow-aggregate)" migrate --log-level warning || fail "migrate"
aggregate "grpb-$TC" "$TC" "$TR"
md5_b="$(q "select md5(string_agg(t::text, '|' order by dataset, reporter, flow, basis, period, level, partner)) from reporting.partner_ranking t")"
expect "the same rankings with the default settle budget" "$md5_b" "$md5_a"
check_alerts_oracle "$W" 10 --customs "$W/feed.csv" --customs "$W/revisions.csv"
echo "PASS"
