#!/usr/bin/env python3
"""report_check.py - checks what headless Chromium rendered of a
tradeflow-report HTML page against the reporting views.

  report_check.py dom DOM.html --dataset customs --reporter CHN --flow total \
      --basis ytd --level group --period 2020-11 --top 10 [--expect-ranks ASEAN=3,2,1]
  report_check.py png SHOT.png --min-colour '#4e79a7' ...

`dom` parses the DOM that `chromium --dump-dom` serialised (after Chromium
parsed the page: an element in the wrong place or namespace would show)
and compares, with the truth read independently from PostgreSQL through
psql (PG* variables):
  - the top-partner table rows (order, rank, partner, value in US$ bn, YoY,
    share, share change) and the WLD total row;
  - the bump chart's periods (each earlier year's last period, then the
    report's period) and every series' ranks in those periods;
  - the share chart's every series (share_pct in each period, 2 decimals);
  - the alerts table (the latest standing shifts of the scope).
`png` decodes the screenshot (RGB/RGBA, 8 bit, no interlace: what Chromium
writes) and checks its size and that the given series colours cover at least
some pixels, i.e. the charts were painted.

Python standard library only. Exit 0 if everything matches, 1 otherwise.
"""

import argparse
import os
import struct
import subprocess
import sys
import zlib
from decimal import Decimal, ROUND_HALF_UP
from html.parser import HTMLParser

failures = []


def check(cond, what):
    if cond:
        print("ok: " + what)
    else:
        print("FAIL: " + what, file=sys.stderr)
        failures.append(what)


def psql(sql, params):
    """Rows of a query; params are passed as psql variables (:'name')."""
    cmd = ["psql", "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1"]
    for k, v in params.items():
        cmd += ["-v", "%s=%s" % (k, v)]
    out = subprocess.run(cmd, input=sql, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("psql failed: " + out.stderr)
    return [line.split("\t") for line in out.stdout.splitlines() if line]


class Dom(HTMLParser):
    """Collects the elements with the attributes the checks need, and the
    text of table cells."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.svgs = {}  # id -> attrs
        self.series = {}  # svg id -> list of attrs
        self.rows = {}  # table id -> list of (attrs, [cell texts])
        self.cell = None
        self.note = None
        self.in_note = False
        self.tags = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        # Void elements never get an end tag.
        if tag not in ("meta", "br", "img", "input", "link", "hr", "wbr", "source"):
            self.stack.append((tag, a))
        if tag == "svg":
            self.svgs[a.get("id")] = a
        if tag == "g" and a.get("class") == "series":
            svg = next((x[1].get("id") for x in reversed(self.stack) if x[0] == "svg"), None)
            self.series.setdefault(svg, []).append(a)
        if tag == "tr":
            table = next((x[1].get("id") for x in reversed(self.stack) if x[0] == "table"), None)
            self.rows.setdefault(table, []).append((a, []))
        if tag in ("td", "th"):
            self.cell = []
        if tag == "p" and a.get("id") == "note":
            self.in_note = True
            self.note = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            table = next((x[1].get("id") for x in reversed(self.stack) if x[0] == "table"), None)
            if table in self.rows and self.rows[table]:
                self.rows[table][-1][1].append("".join(self.cell).strip())
            self.cell = None
        if tag == "p":
            self.in_note = False
        if any(t == tag for t, _ in self.stack):
            while self.stack:
                t, _ = self.stack.pop()
                if t == tag:
                    break

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        if self.in_note:
            self.note += data


def r1(s):
    """The report's 1-decimal display of an exact numeric text."""
    return None if s == "" else Decimal(s).quantize(Decimal("0.1"), ROUND_HALF_UP)


def num(cell):
    if cell in ("n/a", ""):
        return None
    return Decimal(cell.replace(",", "").replace("+", "").replace("\u25b2", "").strip())


SCOPE = ("dataset = :'ds' AND reporter = :'rep' AND flow = :'flow' AND basis = :'basis' "
         "AND level = :'level'")


def check_dom(args):
    html = open(args.file, encoding="utf-8").read()
    dom = Dom()
    dom.feed(html)
    p = {"ds": args.dataset, "rep": args.reporter, "flow": args.flow, "basis": args.basis,
         "level": args.level, "per": args.period + "-01", "top": str(args.top)}

    check("script" not in dom.tags, "no <script> element")
    if args.note is not None:
        check(dom.note == args.note, "the note is shown verbatim (escaped): %r" % dom.note)

    # The table.
    truth = psql("SELECT coalesce(rank::text, ''), partner, value_usd, coalesce(yoy_pct::text, ''),"
                 " coalesce(share_pct::text, ''), coalesce(share_change_pp::text, '')"
                 " FROM reporting.partner_ranking WHERE " + SCOPE +
                 " AND period = :'per'::date AND (rank <= :'top'::int OR partner = 'WLD')"
                 " ORDER BY rank NULLS LAST, partner;", p)
    rows = [r for r in dom.rows.get("top-partners", []) if r[0].get("data-partner")]
    check(len(rows) == len(truth) and len(truth) > 1,
          "table has %d rows (view: %d)" % (len(rows), len(truth)))
    for (attrs, cells), t in zip(rows, truth):
        rank, partner, value, yoy, share, chg = t
        bn = (Decimal(value) / Decimal(10**9)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        got = (attrs.get("data-partner"), cells[0], num(cells[2]), num(cells[3]), num(cells[4]),
               num(cells[5]))
        want = (partner, rank, bn, r1(yoy), r1(share), r1(chg))
        check(got == want and attrs.get("data-value-usd") == value,
              "table row %s %s: %s" % (rank or "-", partner, got))

    # The bump chart: the periods chosen independently here.
    if args.basis == "ytd":
        periods = [r[0] for r in psql(
            "SELECT to_char(max(period), 'YYYY-MM') FROM reporting.partner_ranking WHERE " +
            SCOPE + " AND period <= :'per'::date GROUP BY date_trunc('year', period)"
            " ORDER BY 1;", p)][-10:]
        svg = dom.svgs.get("bump-chart", {})
        check(svg.get("data-periods", "").split(",") == periods,
              "bump chart periods %s (view: %s)" % (svg.get("data-periods"), periods))
    else:
        periods = dom.svgs.get("bump-chart", {}).get("data-periods", "").split(",")
    top = [r[1] for r in truth if r[0] != ""]
    series = dom.series.get("bump-chart", [])
    check([s.get("data-partner") for s in series] == top,
          "bump chart has one series per top partner, in rank order")
    hist = {}
    for per, partner, rank in psql(
            "SELECT to_char(period, 'YYYY-MM'), partner, coalesce(rank::text, '') FROM"
            " reporting.partner_ranking WHERE " + SCOPE + " AND period <= :'per'::date;", p):
        hist[(per, partner)] = rank
    for s in series:
        want = ",".join(hist.get((per, s["data-partner"]), "") for per in periods)
        check(s.get("data-ranks") == want,
              "bump series %s ranks %s (view: %s)" % (s["data-partner"], s.get("data-ranks"), want))
    for spec in args.expect_ranks or []:
        partner, ranks = spec.split("=", 1)
        got = next((s.get("data-ranks") for s in series if s.get("data-partner") == partner), None)
        check(got == ranks, "bump chart: %s ranks %s (expected %s)" % (partner, got, ranks))

    # The share chart.
    sp = dom.svgs.get("share-chart", {}).get("data-periods", "").split(",")
    allp = [r[0] for r in psql(
        "SELECT DISTINCT to_char(period, 'YYYY-MM') FROM reporting.partner_ranking WHERE " +
        SCOPE + " AND period <= :'per'::date ORDER BY 1;", p)]
    check(sp == allp[-args.share_months:], "share chart periods: the last %d with data"
          % min(args.share_months, len(allp)))
    shares = {}
    for per, partner, share in psql(
            "SELECT to_char(period, 'YYYY-MM'), partner, coalesce(share_pct::text, '') FROM"
            " reporting.partner_ranking WHERE " + SCOPE + " AND period <= :'per'::date;", p):
        shares[(per, partner)] = share
    sseries = dom.series.get("share-chart", [])
    check([s.get("data-partner") for s in sseries] == top, "share chart: one series per top partner")
    for s in sseries:
        want = []
        for per in sp:
            v = shares.get((per, s["data-partner"]), "")
            want.append("" if v == "" else "%.2f" % float(v))
        check(s.get("data-shares") == ",".join(want), "share series %s" % s["data-partner"])

    # The alerts.
    if args.alerts > 0:
        p["lim"] = str(args.alerts)
        truth = psql(
            "SELECT to_char(a.period, 'YYYY-MM'), a.partner, coalesce(a.old_rank, 0),"
            " coalesce(a.new_rank, 0) FROM reporting.ranking_alerts a WHERE " +
            SCOPE.replace("dataset", "a.dataset") +
            " AND a.kind = 'shift' AND a.period <= :'per'::date AND a.alert_id NOT IN"
            " (SELECT retracts FROM reporting.ranking_alerts WHERE retracts IS NOT NULL)"
            " ORDER BY a.period DESC, a.alert_id DESC LIMIT :'lim'::int;", p)
        got = [[a.get("data-period"), a.get("data-partner"), a.get("data-old-rank"),
                a.get("data-new-rank")] for a, _ in dom.rows.get("alerts-table", [])
               if a.get("data-alert-id")]
        check(got == truth and len(truth) > 0,
              "alerts table: %d standing shifts as in the view" % len(truth))


def png_pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("not a PNG: " + path)
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        sys.exit("unsupported PNG (depth %d, colour type %d, interlace %d)" % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    i = 0
    for _ in range(h):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def check_png(args):
    w, h, bpp, rows = png_pixels(args.file)
    check((w, h) == (args.width, args.height), "screenshot is %dx%d" % (w, h))
    counts = {}
    for line in rows:
        for x in range(0, len(line), bpp):
            px = line[x:x + 3]
            counts[px] = counts.get(px, 0) + 1
    check(len(counts) > 50, "screenshot is not blank (%d distinct colours)" % len(counts))
    for col in args.min_colour or []:
        rgb = bytes.fromhex(col.lstrip("#"))
        n = counts.get(rgb, 0)
        check(n >= args.min_pixels, "colour %s painted on %d pixels" % (col, n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["dom", "png"])
    ap.add_argument("file")
    ap.add_argument("--dataset", default="customs")
    ap.add_argument("--reporter", default="CHN")
    ap.add_argument("--flow", default="total")
    ap.add_argument("--basis", default="ytd")
    ap.add_argument("--level", default="group")
    ap.add_argument("--period")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--alerts", type=int, default=10)
    ap.add_argument("--share-months", type=int, default=60)
    ap.add_argument("--note")
    ap.add_argument("--expect-ranks", action="append")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--min-colour", action="append")
    ap.add_argument("--min-pixels", type=int, default=200)
    args = ap.parse_args()
    if args.mode == "dom":
        check_dom(args)
    else:
        check_png(args)
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
