#!/usr/bin/env python3
"""compare.py EXPECTED.csv ACTUAL.csv - compare reporting rows exactly.

EXPECTED comes from tf_oracle.py (--ranking-out / --monthly-out), ACTUAL from
PostgreSQL. The table is recognised by its number of columns (13 =
partner_ranking, 7 = partner_monthly); a header row (first field "dataset")
is skipped on either side, and row order does not matter (rows are matched by
their key columns). Exit status: 0 identical, 1 any difference, 2 bad input.

Produce ACTUAL with exactly these queries (column order and formats matter):

  psql -X -At -c "copy (select dataset, reporter, flow, basis,
      to_char(period, 'YYYY-MM-DD'), level, partner, rank, value_usd,
      share_pct, prev_year_value_usd, yoy_pct, share_change_pp
      from reporting.partner_ranking
      order by dataset, reporter, flow, basis, period, level, partner)
      to stdout with (format csv)" > actual_ranking.csv

  psql -X -At -c "copy (select dataset, reporter, partner, flow,
      to_char(period, 'YYYY-MM-DD'), value_usd, ytd_value_usd
      from reporting.partner_monthly
      order by dataset, reporter, partner, flow, period)
      to stdout with (format csv)" > actual_monthly.csv

That is PostgreSQL's canonical text of the values: money as numeric with
scale 2 ("609580000000.00"), percentages as round(..., 4) ("5.6000",
"-0.1234"), rank as an integer, NULL as an empty unquoted field, period as
"YYYY-MM-01".

Comparison rules: text columns and periods must be equal as text (a period
"YYYY-MM" is read as "YYYY-MM-01"); numbers are compared as exact decimals, so
"5.6" equals "5.6000" but "5.60001" does not; empty (NULL) equals only empty.

Standard library only.
"""

import csv
import sys
from decimal import Decimal, InvalidOperation

TABLES = {
    13: ("partner_ranking",
         ["dataset", "reporter", "flow", "basis", "period", "level", "partner", "rank",
          "value_usd", "share_pct", "prev_year_value_usd", "yoy_pct", "share_change_pp"], 7),
    7: ("partner_monthly",
        ["dataset", "reporter", "partner", "flow", "period", "value_usd", "ytd_value_usd"], 5),
}
MAX_SHOWN = 20


class BadInput(Exception):
    pass


def norm_period(s):
    if len(s) == 7 and s[4] == "-":
        return s + "-01"
    return s


def load(path):
    """Returns (table name, columns, {key: values}, duplicates)."""
    try:
        fh = open(path, "r", encoding="utf-8", newline="")
    except OSError as e:
        raise BadInput(str(e))
    with fh:
        rows = [r for r in csv.reader(fh) if r]
    if rows and rows[0] and rows[0][0].lstrip("\ufeff") == "dataset":
        rows = rows[1:]
    if not rows:
        return None, None, {}, []
    n = len(rows[0])
    if n not in TABLES:
        raise BadInput("%s: %d columns: expected 13 (partner_ranking) or 7 "
                       "(partner_monthly)" % (path, n))
    name, cols, nkey = TABLES[n]
    pcol = cols.index("period")
    out = {}
    dups = []
    for i, r in enumerate(rows, 1):
        if len(r) != n:
            raise BadInput("%s: row %d has %d fields, expected %d" % (path, i, len(r), n))
        r[pcol] = norm_period(r[pcol])
        key = tuple(r[:nkey])
        if key in out:
            dups.append(key)
        out[key] = r[nkey:]
    return name, cols, out, dups


def same_value(a, b):
    if a == b:
        return True
    if a == "" or b == "":
        return False
    try:
        return Decimal(a) == Decimal(b)
    except InvalidOperation:
        return False


def compare(expected_path, actual_path, out=sys.stdout):
    """Prints the differences; returns the number of differing rows."""
    ename, cols, exp, edups = load(expected_path)
    aname, acols, act, adups = load(actual_path)
    if ename and aname and ename != aname:
        raise BadInput("EXPECTED is %s but ACTUAL is %s" % (ename, aname))
    name = ename or aname or "(empty)"
    cols = cols or acols or []
    nkey = TABLES[len(cols)][2] if cols else 0
    problems = 0
    shown = 0

    def show(msg):
        nonlocal shown
        if shown < MAX_SHOWN:
            print(msg, file=out)
        shown += 1

    for label, dups in (("EXPECTED", edups), ("ACTUAL", adups)):
        for k in dups:
            problems += 1
            show("duplicate key in %s: %s" % (label, ",".join(k)))
    missing = sorted(k for k in exp if k not in act)
    extra = sorted(k for k in act if k not in exp)
    for k in missing:
        problems += 1
        show("missing in ACTUAL:    %s -> %s" % (",".join(k), ",".join(exp[k])))
    for k in extra:
        problems += 1
        show("unexpected in ACTUAL: %s -> %s" % (",".join(k), ",".join(act[k])))
    differing = 0
    for k in sorted(k for k in exp if k in act):
        e, a = exp[k], act[k]
        diffs = [(cols[nkey + i], ev, av) for i, (ev, av) in enumerate(zip(e, a))
                 if not same_value(ev, av)]
        if diffs:
            differing += 1
            problems += 1
            show("differs: %s: %s" % (",".join(k), "; ".join(
                "%s expected %s got %s" % (c, ev or "NULL", av or "NULL") for c, ev, av in diffs)))
    if shown > MAX_SHOWN:
        print("... and %d more" % (shown - MAX_SHOWN), file=out)
    print("%s: %d expected rows, %d actual rows, %d missing, %d unexpected, %d differing%s"
          % (name, len(exp), len(act), len(missing), len(extra), differing,
             "" if problems else " - identical"), file=out)
    return problems


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(argv) != 2 else sys.stdout)
        return 0 if len(argv) == 2 else 2
    try:
        return 1 if compare(argv[1], argv[2]) else 0
    except BadInput as e:
        print("compare.py: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
