#!/usr/bin/env python3
"""Independent computation of the ranking shifts that should be alerted.

Reads the oracle's expected reporting.partner_ranking CSV (tf_oracle.py
--ranking-out, with its header) and writes, for the final state of the data,
every shift that issue 6 defines, one CSV line each, sorted:

    dataset,reporter,flow,basis,level,period(YYYY-MM),partner,old_rank,new_rank,value_usd

A scope is (dataset, reporter, flow, basis, level). In each period of a scope
but the first, every partner ranked within the top N now or in the most
recent earlier period of the scope that has data, whose rank (counted as
empty when outside the top N) differs between the two, is a shift. Empty
old_rank = entered the top N, empty new_rank = left it.

After any sequence of loads, replays, revisions and crashes, the active
shifts of tradeflow.alerts (kind 'shift', not retracted) must equal this
list: that is what the integration tests compare. Standard library only.
"""
import argparse
import csv
import sys
from collections import defaultdict


def shifts(rows, top):
    scopes = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        key = (r["dataset"], r["reporter"], r["flow"], r["basis"], r["level"])
        period = r["period"][:7]
        # Every row gives the period data (WLD too, unranked); only ranked
        # rows take part in the comparison.
        part = scopes[key][period]
        if r["rank"] not in ("", None):
            part[r["partner"]] = (int(r["rank"]), r["value_usd"])
    out = []
    for key, periods in scopes.items():
        prev = None
        for period in sorted(periods):
            cur = periods[period]
            if prev is not None:
                for partner in set(cur) | set(prev):
                    o = prev.get(partner, (None, None))[0]
                    n, value = cur.get(partner, (None, ""))
                    o = o if o is not None and o <= top else None
                    n2 = n if n is not None and n <= top else None
                    if o != n2:
                        out.append(key + (period, partner, "" if o is None else str(o),
                                          "" if n2 is None else str(n2), value or ""))
            prev = cur
    out.sort()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ranking_csv", help="expected ranking CSV from tf_oracle.py (with header)")
    ap.add_argument("--top", type=int, default=10, help="ranks watched (default 10)")
    ap.add_argument("--from", dest="since", default=None,
                    help="only periods >= YYYY-MM (what reaches NOTIFY/Kafka with --alerts-from)")
    ap.add_argument("--out", default="-", help="output file (default stdout)")
    a = ap.parse_args()
    with open(a.ranking_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    res = shifts(rows, a.top)
    if a.since:
        res = [s for s in res if s[5] >= a.since]
    f = sys.stdout if a.out == "-" else open(a.out, "w", newline="")
    w = csv.writer(f, lineterminator="\n")
    for s in res:
        w.writerow(s)
    if f is not sys.stdout:
        f.close()


if __name__ == "__main__":
    main()
