#!/usr/bin/env python3
"""tf_oracle.py - an independent implementation of tradeflow's reporting
semantics, for tests: feed files in, expected reporting rows out.

It shares no code with the C producer/consumer or the PostgreSQL views, on
purpose: it re-implements the producer's validation (so that feeds with bad
rows can be used) and the reporting rules of issue 5 (see docs/sample-data.md)
in plain Python with exact integer / decimal arithmetic.

Usage:
  tf_oracle.py --customs FEED [--customs FEED2 ...] [--investment FEED ...]
               [--ranking-out FILE] [--monthly-out FILE] [--headline]
               [--rejects] [--no-header] [--reporter CHN]

FEED files are CSV (header row, columns by name) or JSON Lines, chosen by the
extension (.jsonl / .ndjson / .json = JSON Lines, anything else CSV) or forced
with a "csv:" / "jsonl:" prefix. Files of one dataset are read in the order
given, which is taken as the order in which the records were sent.

Output CSV (RFC 4180, "\\n" line ends, header row unless --no-header), sorted
by the key columns in byte (C collation) order:

  partner_ranking: dataset,reporter,flow,basis,period,level,partner,rank,
                   value_usd,share_pct,prev_year_value_usd,yoy_pct,
                   share_change_pp
  partner_monthly: dataset,reporter,partner,flow,period,value_usd,
                   ytd_value_usd

Formats (PostgreSQL's text form of the numeric values): period "YYYY-MM-01";
money with exactly 2 decimals ("609580000000.00"); share/yoy/share change with
exactly 4 decimals ("5.6000", "-0.1234"); rank an integer; NULL = empty field.

Standard library only.
"""

import argparse
import csv
import itertools
import json
import sys

ASEAN = ("BRN", "KHM", "IDN", "LAO", "MYS", "MMR", "PHL", "SGP", "THA", "VNM")
EU27 = ("AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU",
        "GRC", "HUN", "IRL", "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT",
        "ROU", "SVK", "SVN", "ESP", "SWE")
BREXIT = 2020 * 12 + 1  # period 2020-02: the first month of EU27 (GBR out)

FLOWS = {"customs": ("export", "import"), "investment": ("outward", "inward")}
REQUIRED = ("record_id", "reporter", "partner", "flow", "period", "value_usd")
OPTIONAL = {"customs": ("revision", "hs_code", "quantity", "unit"),
            "investment": ("revision", "sector")}
INT64_MAX = 2 ** 63 - 1
RECORD_ID_MAX, UNIT_MAX, SECTOR_MAX = 64, 16, 128

RANKING_COLS = ["dataset", "reporter", "flow", "basis", "period", "level", "partner", "rank",
                "value_usd", "share_pct", "prev_year_value_usd", "yoy_pct", "share_change_pp"]
MONTHLY_COLS = ["dataset", "reporter", "partner", "flow", "period", "value_usd",
                "ytd_value_usd"]


class Invalid(Exception):
    def __init__(self, column, reason):
        super().__init__("%s: %s" % (column, reason))
        self.column = column
        self.reason = reason


# ---------------------------------------------------------------------------
# Validation: the producer's rules (common/tf_record.c), re-stated.
# ---------------------------------------------------------------------------
def parse_decimal(s, scale, column):
    """Non-negative decimal text with at most `scale` fractional digits ->
    integer scaled by 10**scale (fits int64). No signs, exponents, spaces."""
    if s == "":
        raise Invalid(column, "empty number")
    if s.startswith("-"):
        raise Invalid(column, "negative value")
    intpart, dot, frac = s.partition(".")
    if not all(c in "0123456789" for c in intpart + frac) or (intpart + frac) == "" \
            or (dot and frac == ""):
        raise Invalid(column, "not a decimal number")
    if len(frac) > scale:
        raise Invalid(column, "too many decimal places (at most %d)" % scale)
    v = int(intpart + frac.ljust(scale, "0"))
    if v > INT64_MAX:
        raise Invalid(column, "value too large")
    return v


def parse_period(s):
    if len(s) != 7 or s[4] != "-" or not (s[:4] + s[5:]).isdigit() or not s.isascii():
        raise Invalid("period", "malformed period: expected YYYY-MM")
    y, m = int(s[:4]), int(s[5:])
    if not 1 <= m <= 12:
        raise Invalid("period", "impossible period: month must be 01..12")
    if not 1900 <= y <= 2999:
        raise Invalid("period", "impossible period: year must be 1900..2999")
    return y * 12 + (m - 1)


def code_valid(s):
    return (2 <= len(s) <= 16 and "A" <= s[0] <= "Z"
            and all("A" <= c <= "Z" or "0" <= c <= "9" for c in s))


def check_text(s, maxlen, required, column):
    """Length in UTF-8 bytes; encoding problems are caught by check_bytes()."""
    n = len(s.encode("utf-8"))
    if n > maxlen:
        raise Invalid(column, "longer than %d bytes" % maxlen)
    if required and n == 0:
        raise Invalid(column, "empty required field")


def check_bytes(rec):
    """Invalid UTF-8 arrives as lone surrogates (the files are decoded with
    errors='surrogateescape'); NUL is refused like the producer does."""
    for k, v in rec.items():
        if "\0" in v:
            raise Invalid(k, "contains a NUL byte")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(k, "invalid UTF-8")


def validate(dataset, raw):
    """raw: {column: str} (a column that is absent is missing from the dict;
    'reason', which rejects files add, is ignored). Values are trimmed of
    spaces and tabs, as the producer does. Returns the fact tuple
    (record_id, revision, reporter, partner, flow, period, cents), or raises
    Invalid(column, reason)."""
    allowed = set(REQUIRED) | set(OPTIONAL[dataset]) | {"reason"}
    for k in raw:
        if k not in allowed:
            raise Invalid(k, "unknown column for %s" % dataset)
    rec = {k: v.strip(" \t") for k, v in raw.items() if k != "reason"}
    check_bytes(rec)
    for k in REQUIRED:
        if k not in rec:
            raise Invalid(k, "missing required column")
        if rec[k] == "":
            raise Invalid(k, "empty required field")
    rid = rec["record_id"]
    check_text(rid, RECORD_ID_MAX, True, "record_id")
    rev_s = rec.get("revision", "")
    if rev_s == "":
        rev = 0
    else:
        if not (rev_s.isascii() and rev_s.isdigit()):
            raise Invalid("revision", "not a non-negative integer")
        rev = int(rev_s)
        if rev > INT64_MAX:
            raise Invalid("revision", "too large")
    reporter, partner = rec["reporter"], rec["partner"]
    if not code_valid(reporter):
        raise Invalid("reporter", "bad economy code")
    if not code_valid(partner):
        raise Invalid("partner", "bad economy code")
    if partner == reporter:
        raise Invalid("partner", "partner equals reporter")
    flow = rec["flow"]
    if flow not in FLOWS[dataset]:
        raise Invalid("flow", "not valid for %s" % dataset)
    period = parse_period(rec["period"])
    cents = parse_decimal(rec["value_usd"], 2, "value_usd")
    if dataset == "customs":
        hs = rec.get("hs_code", "")
        if hs and not (2 <= len(hs) <= 10 and hs.isascii() and hs.isdigit()):
            raise Invalid("hs_code", "HS code must be 2-10 digits")
        q = rec.get("quantity", "")
        if q:
            parse_decimal(q, 3, "quantity")
        check_text(rec.get("unit", ""), UNIT_MAX, False, "unit")
    else:
        check_text(rec.get("sector", ""), SECTOR_MAX, False, "sector")
    return (rid, rev, reporter, partner, flow, period, cents)


# ---------------------------------------------------------------------------
# Readers: yield (line number, {column: str}) or (line number, Invalid).
# A header problem (unknown, duplicate, empty or missing required column) is
# fatal for the whole file, as in the producer: nothing of it counts.
# ---------------------------------------------------------------------------
class HeaderError(Exception):
    pass


def check_header(dataset, header):
    allowed = set(REQUIRED) | set(OPTIONAL[dataset]) | {"reason"}
    names = []
    for h in header:
        h = h.strip(" \t")
        if h == "":
            raise HeaderError("empty column name in header")
        if h not in allowed:
            raise HeaderError("%s: unknown column for %s" % (h, dataset))
        if h in names:
            raise HeaderError("%s: duplicate column" % h)
        names.append(h)
    for k in REQUIRED:
        if k not in names:
            raise HeaderError("%s: missing required column" % k)
    return names


def _blank(row):
    return all(f.strip(" \t") == "" for f in row) and len(row) <= 1


def read_csv(fh, dataset):
    rd = csv.reader(fh, strict=True)
    try:
        header = next(rd)
        while _blank(header):
            header = next(rd)
    except StopIteration:
        return
    except csv.Error as e:
        raise HeaderError("malformed CSV header: %s" % e)
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    header = check_header(dataset, header)
    while True:
        try:
            row = next(rd)
        except StopIteration:
            return
        except csv.Error as e:
            yield rd.line_num, Invalid("-", "malformed CSV: %s" % e)
            return
        if _blank(row):
            continue
        if len(row) != len(header):
            yield rd.line_num, Invalid("-", "%d fields, header has %d" % (len(row), len(header)))
            continue
        yield rd.line_num, dict(zip(header, row))


# Columns that may be JSON integers (as in the producer); JSON reals are
# refused everywhere because their text is not exact money.
JSON_INT_COLS = ("record_id", "revision", "value_usd", "quantity")


class _Int(str):
    """A JSON integer kept as its literal text."""


class _Real(str):
    """A JSON real number kept as its literal text."""


def _pairs(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def read_jsonl(fh):
    for n, line in enumerate(fh, 1):
        if n == 1 and line.startswith("\ufeff"):
            line = line[1:]
        line = line.rstrip("\n").rstrip("\r")
        if line.strip(" \t") == "":
            continue
        if "\0" in line or any("\udc80" <= c <= "\udcff" for c in line):
            yield n, Invalid("-", "invalid UTF-8 (or NUL)")
            continue
        try:
            obj = json.loads(line, parse_float=_Real, parse_int=_Int, object_pairs_hook=_pairs)
        except ValueError as e:
            yield n, Invalid("-", "invalid JSON: %s" % e)
            continue
        if not isinstance(obj, dict):
            yield n, Invalid("-", "expected one JSON object per line")
            continue
        rec = {}
        bad = None
        for k, v in obj.items():
            if v is None or k == "reason":
                if k not in rec and k != "reason":
                    rec.setdefault(k, None)
                continue
            if isinstance(v, _Int) and k in JSON_INT_COLS:
                # As jansson: an int64 ("-0" is 0); larger is a JSON error.
                iv = int(v)
                if not -2 ** 63 <= iv < 2 ** 63:
                    bad = Invalid("-", "invalid JSON: integer too big")
                rec[k] = str(iv)
            elif type(v) is str:
                rec[k] = v
            else:
                bad = Invalid(k, "expected a string%s" % (" or an integer"
                                                           if k in JSON_INT_COLS else ""))
        if bad is None:
            # Unknown keys are refused even when null; known nulls are absent.
            for k in list(rec):
                if rec[k] is None:
                    if k in REQUIRED or k in OPTIONAL["customs"] or k in OPTIONAL["investment"]:
                        del rec[k]
                    else:
                        rec[k] = ""
        yield n, (bad if bad else rec)


def open_feed(spec):
    """'csv:PATH', 'jsonl:PATH' or PATH -> (path, format)."""
    for fmt in ("csv", "jsonl"):
        if spec.startswith(fmt + ":"):
            return spec[len(fmt) + 1:], fmt
    low = spec.lower()
    fmt = "jsonl" if low.endswith((".jsonl", ".ndjson", ".json")) else "csv"
    return spec, fmt


# ---------------------------------------------------------------------------
# Formatting (PostgreSQL numeric text form)
# ---------------------------------------------------------------------------
def fmt_scaled(v, scale):
    """Integer v in units of 10**-scale -> text with exactly `scale` decimals."""
    if v is None:
        return ""
    sign = "-" if v < 0 else ""
    q, r = divmod(abs(v), 10 ** scale)
    return "%s%d.%0*d" % (sign, q, scale, r)


def round_ratio4(num, den):
    """round(100 * num / den, 4) in units of 1e-4, half away from zero, exact."""
    n = num * 100 * 10000
    q, r = divmod(abs(n), abs(den))
    if 2 * r >= abs(den):
        q += 1
    return q if (n >= 0) == (den > 0) else -q


def period_date(p):
    return "%04d-%02d-01" % (p // 12, p % 12 + 1)


# Memberships read by --groups (group_code, member, valid_from, valid_to as
# YYYY-MM-DD), replacing the shipped ones; None = the shipped ones.
GROUPS = None


def load_groups(path):
    """CSV group_code,member,valid_from,valid_to (header optional)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.reader(f):
            if not r or r[0] == "group_code":
                continue
            rows.append((r[0], r[1], r[2], r[3]))
    return sorted(rows)


def group_of(code, period):
    """The group a partner code maps to at `period`: the first group (by
    code) whose membership covers the first day of the month, else itself."""
    if GROUPS is not None:
        day1 = period_date(period)
        for g, member, vfrom, vto in GROUPS:
            if member == code and vfrom <= day1 <= vto:
                return g
        return code
    if code in ASEAN:
        return "ASEAN"
    if code in EU27:
        return "EU"
    if code == "GBR" and period < BREXIT:
        return "EU"
    return code


# ---------------------------------------------------------------------------
# The oracle
# ---------------------------------------------------------------------------
class Oracle:
    def __init__(self):
        # (dataset, record_id) -> (revision, reporter, partner, flow, period, cents)
        self.facts = {}
        self.read = 0
        self.rejected = []  # (file, line, column, reason)

    def add(self, dataset, rec, where=("-", 0)):
        """Applies one raw record ({column: str}); returns False if invalid."""
        self.read += 1
        try:
            rid, rev, reporter, partner, flow, period, cents = validate(dataset, rec)
        except Invalid as e:
            self.rejected.append((where[0], where[1], e.column, e.reason))
            return False
        key = (dataset, rid)
        old = self.facts.get(key)
        if old is None or rev > old[0]:
            self.facts[key] = (rev, reporter, partner, flow, period, cents)
        return True

    def add_file(self, dataset, spec):
        path, fmt = open_feed(spec)
        with open(path, "r", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            rows = read_csv(fh, dataset) if fmt == "csv" else read_jsonl(fh)
            try:
                first = next(rows, None)
            except HeaderError as e:
                self.rejected.append((path, 1, "header", str(e)))
                return False
            if first is None:
                return True
            for line, rec in itertools.chain([first], rows):
                if isinstance(rec, Invalid):
                    self.read += 1
                    self.rejected.append((path, line, rec.column, rec.reason))
                else:
                    self.add(dataset, rec, (path, line))
        return True

    # -- derived tables -----------------------------------------------------
    def monthly(self):
        """Partner-level monthly values:
        {(dataset, reporter, flow, partner, period): cents}, incl. 'total'."""
        m = {}
        for (dataset, _), (_, reporter, partner, flow, period, cents) in self.facts.items():
            k = (dataset, reporter, flow, partner, period)
            m[k] = m.get(k, 0) + cents
            if dataset == "customs":
                k = (dataset, reporter, "total", partner, period)
                m[k] = m.get(k, 0) + cents
        return m

    @staticmethod
    def group_monthly(monthly):
        g = {}
        for (dataset, reporter, flow, partner, period), v in monthly.items():
            k = (dataset, reporter, flow, group_of(partner, period), period)
            g[k] = g.get(k, 0) + v
        return g

    @staticmethod
    def ytd(monthly):
        """YTD rows {(dataset, reporter, flow, partner, period): cents}: for
        every scope period p of (dataset, reporter, flow) and every partner
        with a monthly row in year(p) at or before p."""
        scope = {}
        series = {}
        for (dataset, reporter, flow, partner, period), v in monthly.items():
            scope.setdefault((dataset, reporter, flow), set()).add(period)
            series.setdefault((dataset, reporter, flow, partner, period // 12), []).append(
                (period, v))
        out = {}
        scope_by_year = {}
        for s, periods in scope.items():
            for p in periods:
                scope_by_year.setdefault(s + (p // 12,), []).append(p)
        for (dataset, reporter, flow, partner, year), pv in series.items():
            pv.sort()
            sps = sorted(scope_by_year[(dataset, reporter, flow, year)])
            i, acc = 0, 0
            for p in sps:
                while i < len(pv) and pv[i][0] <= p:
                    acc += pv[i][1]
                    i += 1
                if i > 0:
                    out[(dataset, reporter, flow, partner, p)] = acc
        return out

    def compute(self):
        """Returns (ranking_rows, monthly_rows) as sorted lists of tuples of
        strings in the column orders RANKING_COLS / MONTHLY_COLS."""
        pm = self.monthly()
        gm = self.group_monthly(pm)
        pytd = self.ytd(pm)
        tables = {("month", "partner"): pm, ("ytd", "partner"): pytd,
                  ("month", "group"): gm, ("ytd", "group"): self.ytd(gm)}
        ranking = []
        for (basis, level), t in tables.items():
            # Per scope (dataset, reporter, flow, period): rank, denominator, share.
            scopes = {}
            for (dataset, reporter, flow, partner, period), v in t.items():
                scopes.setdefault((dataset, reporter, flow, period), []).append((partner, v))
            share = {}
            rank = {}
            for (dataset, reporter, flow, period), rows in scopes.items():
                vals = sorted((v for p, v in rows if p != "WLD"), reverse=True)
                wld = [v for p, v in rows if p == "WLD"]
                den = wld[0] if wld else sum(vals)
                for p, v in rows:
                    k = (dataset, reporter, flow, p, period)
                    share[k] = None if den == 0 else round_ratio4(v, den)
                    if p != "WLD":
                        # Competition ranking: 1 + the number of strictly larger values.
                        lo, hi = 0, len(vals)
                        while lo < hi:
                            mid = (lo + hi) // 2
                            if vals[mid] > v:
                                lo = mid + 1
                            else:
                                hi = mid
                        rank[k] = lo + 1
            for k, v in t.items():
                dataset, reporter, flow, partner, period = k
                pk = (dataset, reporter, flow, partner, period - 12)
                prev = t.get(pk)
                yoy = None if not prev else round_ratio4(v - prev, prev)
                s, ps = share[k], share.get(pk)
                chg = None if s is None or ps is None else s - ps
                r = rank.get(k)
                ranking.append((dataset, reporter, flow, basis, period_date(period), level,
                                partner, "" if r is None else str(r), fmt_scaled(v, 2),
                                fmt_scaled(s, 4), fmt_scaled(prev, 2), fmt_scaled(yoy, 4),
                                fmt_scaled(chg, 4)))
        ranking.sort(key=lambda r: r[:7])
        monthly = []
        for k, v in pm.items():
            dataset, reporter, flow, partner, period = k
            monthly.append((dataset, reporter, partner, flow, period_date(period),
                            fmt_scaled(v, 2), fmt_scaled(pytd[k], 2)))
        monthly.sort(key=lambda r: r[:5])
        return ranking, monthly


# ---------------------------------------------------------------------------
# Headline figures (DOMAIN.md), at the group level
# ---------------------------------------------------------------------------
def headline(ranking, reporter="CHN"):
    """Returns an ordered list of (name, value-text) pairs; 'n/a' where the
    feed has no such row."""
    idx = {}
    for r in ranking:
        if r[1] == reporter and r[5] == "group" and r[3] == "ytd":
            idx[(r[0], r[2], r[4], r[6])] = r

    def get(dataset, flow, period, partner, col):
        r = idx.get((dataset, flow, period, partner))
        if r is None:
            return "n/a"
        v = r[RANKING_COLS.index(col)]
        return v if v != "" else "NULL"

    out = []
    n20 = "2020-11-01"
    out.append(("asean_jan_nov_2020_usd", get("customs", "total", n20, "ASEAN", "value_usd")))
    out.append(("asean_jan_nov_2019_usd",
                get("customs", "total", n20, "ASEAN", "prev_year_value_usd")))
    out.append(("asean_jan_nov_2020_yoy_pct", get("customs", "total", n20, "ASEAN", "yoy_pct")))
    out.append(("asean_jan_nov_2020_share_pct",
                get("customs", "total", n20, "ASEAN", "share_pct")))
    out.append(("asean_jan_nov_2020_share_change_pp",
                get("customs", "total", n20, "ASEAN", "share_change_pp")))
    out.append(("wld_jan_nov_2020_usd", get("customs", "total", n20, "WLD", "value_usd")))
    n19 = "2019-11-01"
    out.append(("asean_jan_nov_2019_share_pct",
                get("customs", "total", n19, "ASEAN", "share_pct")))
    out.append(("wld_jan_nov_2019_usd", get("customs", "total", n19, "WLD", "value_usd")))
    top = sorted((r for k, r in idx.items() if k[:3] == ("customs", "total", n20) and r[7]),
                 key=lambda r: (int(r[7]), r[6]))
    out.append(("top3_jan_nov_2020", ",".join(r[6] for r in top[:3]) or "n/a"))
    f20 = "2020-02-01"
    for g in ("ASEAN", "EU", "USA", "WLD"):
        out.append(("jan_feb_2020_%s_usd" % g.lower(),
                    get("customs", "total", f20, g, "value_usd")))
    out.append(("jan_feb_2020_asean_share_pct", get("customs", "total", f20, "ASEAN", "share_pct")))
    for y in (2018, 2019, 2020):
        # Year end = the last scope period of the year with an ASEAN row.
        ps = sorted(k[2] for k in idx if k[:2] == ("customs", "total") and k[3] == "ASEAN"
                    and k[2].startswith("%d-" % y))
        out.append(("asean_rank_ytd_%d" % y,
                    get("customs", "total", ps[-1], "ASEAN", "rank") if ps else "n/a"))
    hist = sorted((k[2][:7], idx[k][7]) for k in idx
                  if k[:2] == ("customs", "total") and k[3] == "ASEAN")
    out.append(("asean_rank_history", " ".join("%s:%s" % h for h in hist) or "n/a"))
    s20 = "2020-09-01"
    out.append(("odi_asean_jan_sep_2020_usd",
                get("investment", "outward", s20, "ASEAN", "value_usd")))
    out.append(("odi_asean_jan_sep_2019_usd",
                get("investment", "outward", s20, "ASEAN", "prev_year_value_usd")))
    out.append(("odi_asean_jan_sep_2020_yoy_pct",
                get("investment", "outward", s20, "ASEAN", "yoy_pct")))
    return out


def write_csv(path, cols, rows, header):
    fh = sys.stdout if path == "-" else open(path, "w", encoding="utf-8", newline="")
    try:
        w = csv.writer(fh, lineterminator="\n")
        if header:
            w.writerow(cols)
        w.writerows(rows)
    finally:
        if fh is not sys.stdout:
            fh.close()


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="tf_oracle.py",
        description="Independent reference implementation of tradeflow's reporting tables.")
    ap.add_argument("--customs", action="append", default=[], metavar="FEED",
                    help="customs feed (CSV or JSONL; repeatable, in the order sent)")
    ap.add_argument("--investment", action="append", default=[], metavar="FEED",
                    help="investment feed (repeatable)")
    ap.add_argument("--ranking-out", metavar="FILE",
                    help="write the expected reporting.partner_ranking rows ('-' = stdout)")
    ap.add_argument("--monthly-out", metavar="FILE",
                    help="write the expected reporting.partner_monthly rows ('-' = stdout)")
    ap.add_argument("--headline", action="store_true",
                    help="print the DOMAIN.md headline figures (group level)")
    ap.add_argument("--reporter", default="CHN", help="reporter for --headline (default CHN)")
    ap.add_argument("--no-header", action="store_true", help="no header row in the CSV output")
    ap.add_argument("--rejects", action="store_true",
                    help="list rejected records on stderr as FILE:LINE: column: reason")
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    ap.add_argument("--groups", metavar="CSV",
                    help="group memberships (group_code,member,valid_from,valid_to) "
                         "instead of the shipped ASEAN/EU28->EU27 ones")
    args = ap.parse_args(argv)
    global GROUPS
    GROUPS = load_groups(args.groups) if args.groups else None
    if not (args.customs or args.investment):
        ap.error("give at least one --customs or --investment feed")
    if not (args.ranking_out or args.monthly_out or args.headline):
        ap.error("nothing to do: give --ranking-out, --monthly-out and/or --headline")
    o = Oracle()
    try:
        for f in args.customs:
            o.add_file("customs", f)
        for f in args.investment:
            o.add_file("investment", f)
    except OSError as e:
        print("tf_oracle: %s" % e, file=sys.stderr)
        return 2
    ranking, monthly = o.compute()
    if args.rejects:
        for path, line, col, reason in o.rejected:
            print("%s:%d: %s: %s" % (path, line, col, reason), file=sys.stderr)
    if not args.quiet:
        print("tf_oracle: %d records read, %d rejected, %d facts; %d ranking rows, "
              "%d monthly rows" % (o.read, len(o.rejected), len(o.facts), len(ranking),
                                    len(monthly)), file=sys.stderr)
    if args.ranking_out:
        write_csv(args.ranking_out, RANKING_COLS, ranking, not args.no_header)
    if args.monthly_out:
        write_csv(args.monthly_out, MONTHLY_COLS, monthly, not args.no_header)
    if args.headline:
        for k, v in headline(ranking, args.reporter):
            print("%s: %s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
