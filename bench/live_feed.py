#!/usr/bin/env python3
"""live_feed.py - the live phase of bench/bench_realistic.sh (SYNTHETIC data).

  live_feed.py prepare --out STATE --tag TAG
      reads from the database of a realistic backfill (PG* variables, psql):
      a sample of stored facts of old periods (to revise) and event
      candidates: partners ranked 11-20 on the month basis (partner level,
      export) of an old period, with one of their facts and the value of
      that period's leader; writes them as JSON to STATE.
  live_feed.py run --state STATE --rate R --seconds S --revisions F
                   --event-every E --events-out FILE
      writes a customs CSV to stdout at R records/s (10 ms ticks) for S
      seconds: new records of the period after the history (each reporter's
      partners, small values), a fraction F of revisions of stored facts of
      old periods (revision + 1, value x 0.8-1.2), and every E seconds one
      event: a revision that lifts a candidate partner above its period's
      leader (a certain shift to rank 1). Appends "NO<TAB>UNIX_TIME<TAB>
      REPORTER<TAB>YYYY-MM<TAB>PARTNER" per event to FILE (the time taken
      just before the line is written and flushed) and the number of lines
      written to FILE.count.
  live_feed.py report --events FILE --seen SEEN --log LOG
      latency of each event = arrival at the LISTENing client (SEEN:
      "UNIX_TIME<TAB>alert JSON" lines, tests/integration/alerts_peer.py
      stamp) of its shift (same reporter, period, partner, flow export,
      basis month, level partner, new rank 1) - write time; p50/p99/max;
      also to detected_at (the start of the detecting transaction); and from
      the consumer's debug LOG the longest batch transaction and settle point.
Standard library only.
"""
import argparse
import datetime
import json
import random
import subprocess
import sys
import time

HEADER = "record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit\n"


def psql(sql):
    out = subprocess.run(["psql", "-XAtq", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def prepare(a):
    last = psql("SELECT to_char(max(period), 'YYYY-MM-DD') FROM tradeflow.facts")[0][0]
    cut = psql("SELECT to_char(date_trunc('year', max(period)), 'YYYY-MM-DD') "
               "FROM tradeflow.facts")[0][0]
    # Facts of old periods (before the last year), about 20,000, to revise.
    old = psql(f"""SELECT record_id, revision, reporter, partner, flow,
                          to_char(period, 'YYYY-MM'), coalesce(hs_code, ''), value_usd
                     FROM tradeflow.facts TABLESAMPLE SYSTEM (3) REPEATABLE (7)
                    WHERE period < DATE '{cut}' LIMIT 20000""")
    # Event candidates: one per (reporter, period), a sampled export fact
    # whose partner ranks 11-20 that month (index lookups by full key: the
    # statistics of a just-loaded ranking table are no guide).
    ev = psql(f"""WITH s AS MATERIALIZED (
                      SELECT * FROM tradeflow.facts TABLESAMPLE SYSTEM (3) REPEATABLE (7)
                       WHERE period < DATE '{cut}' AND flow = 'export' AND partner <> 'WLD')
                  SELECT DISTINCT ON (s.reporter, s.period)
                         s.reporter, to_char(s.period, 'YYYY-MM'), s.partner, t.value_usd,
                         s.record_id, s.revision, coalesce(s.hs_code, ''), s.value_usd
                    FROM s
                   CROSS JOIN LATERAL (
                         SELECT r.rank FROM tradeflow.ranking r
                          WHERE r.dataset = 'customs' AND r.reporter = s.reporter
                            AND r.flow = 'export' AND r.level = 'partner' AND r.basis = 'month'
                            AND r.period = s.period AND r.partner = s.partner OFFSET 0) r
                   CROSS JOIN LATERAL (
                         SELECT t.value_usd FROM tradeflow.ranking t
                          WHERE t.dataset = 'customs' AND t.reporter = s.reporter
                            AND t.flow = 'export' AND t.level = 'partner' AND t.basis = 'month'
                            AND t.period = s.period AND t.rank = 1 LIMIT 1) t
                   WHERE r.rank BETWEEN 11 AND 20
                   ORDER BY s.reporter, s.period, s.record_id""")
    partners = {}
    for rep, p in psql(f"SELECT DISTINCT reporter, partner FROM tradeflow.monthly "
                       f"WHERE level = 'partner' AND partner <> 'WLD' "
                       f"AND period >= DATE '{cut}' ORDER BY 1, 2"):
        partners.setdefault(rep, []).append(p)
    y, m = int(last[:4]), int(last[5:7])
    nxt = "%04d-%02d" % ((y + 1, 1) if m == 12 else (y, m + 1))
    if nxt.endswith("-01"):  # (CHN has no January period: Jan+Feb combined)
        nxt_chn = nxt[:5] + "02"
    else:
        nxt_chn = nxt
    state = {"tag": a.tag, "next": nxt, "next_chn": nxt_chn, "old": old, "events": ev,
             "partners": partners}
    with open(a.out, "w") as fh:
        json.dump(state, fh)
    print(f"live_feed: {len(old)} old facts to revise, {len(ev)} event candidates, "
          f"new records for {nxt}", file=sys.stderr)


def money(c):
    return "%d.%02d" % divmod(c, 100)


def cents(s):
    a, _, b = s.partition(".")
    return int(a) * 100 + int((b + "00")[:2])


def run(a):
    st = json.load(open(a.state))
    rng = random.Random(3)
    old = st["old"]
    events = st["events"]
    rng.shuffle(events)
    reps = sorted(st["partners"])
    revised = {}  # record_id -> last revision written
    out = sys.stdout
    out.write(HEADER)
    out.flush()
    evf = open(a.events_out, "w")
    sent = seq = nev = 0
    start = time.monotonic()
    next_event = start + 1.0
    while True:
        now = time.monotonic()
        if now - start >= a.seconds:
            break
        lines = []
        if now >= next_event and nev < len(events):
            rep, per, partner, top, rid, rev, hs, val = events[nev]
            rev = max(int(rev), revised.get(rid, -1)) + 1
            revised[rid] = rev
            v = cents(val) + cents(top) * 3 // 2
            line = f"{rid},{rev},{rep},{partner},export,{per},{hs},{money(v)},,\n"
            nev += 1
            t = time.time()
            out.write(line)
            out.flush()
            sent += 1
            evf.write(f"{nev}\t{t:.6f}\t{rep}\t{per}\t{partner}\n")
            evf.flush()
            next_event += a.event_every
        due = int(a.rate * (now - start)) - sent
        for _ in range(max(due, 0)):
            if rng.random() < a.revisions and old:
                rid, rev, rep, partner, flow, per, hs, val = old[rng.randrange(len(old))]
                rev = max(int(rev), revised.get(rid, -1)) + 1
                revised[rid] = rev
                v = int(cents(val) * rng.uniform(0.8, 1.2))
                lines.append(f"{rid},{rev},{rep},{partner},{flow},{per},{hs},{money(v)},,\n")
            else:
                rep = reps[seq % len(reps)]
                seq += 1
                p = rng.choice(st["partners"][rep])
                per = st["next_chn"] if rep == "CHN" else st["next"]
                flow = "export" if seq % 2 else "import"
                v = rng.randint(100_000_00, 5_000_000_00)
                lines.append(f"SYN-LIVE{st['tag']}-{seq:08d},0,{rep},{p},{flow},{per},"
                             f"{rng.randint(1, 97):02d},{money(v)},,\n")
        if lines:
            out.write("".join(lines))
            out.flush()
            sent += len(lines)
        time.sleep(0.01)
    out.flush()
    evf.close()
    with open(a.events_out + ".count", "w") as fh:
        fh.write(f"{sent}\n")


def pct(xs, p):
    if not xs:
        return float("nan")
    i = min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[i]


def report(a):
    evs = [l.rstrip("\n").split("\t") for l in open(a.events) if l.strip()]
    first = {}
    for l in open(a.seen):
        ts, js = l.split("\t", 1)
        x = json.loads(js)
        if (x["kind"] == "shift" and x["flow"] == "export" and x["basis"] == "month"
                and x["level"] == "partner" and x["new_rank"] == 1):
            k = (x["reporter"], x["period"], x["partner"])
            if k not in first:
                det = datetime.datetime.strptime(x["detected_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
                first[k] = (float(ts),
                            det.replace(tzinfo=datetime.timezone.utc).timestamp())
    lat, det, missing = [], [], 0
    for no, t, rep, per, partner in evs:
        hit = first.get((rep, per, partner))
        if hit is None or hit[0] < float(t):
            missing += 1
            continue
        lat.append(hit[0] - float(t))
        det.append(hit[1] - float(t))
    lat.sort()
    det.sort()
    print(f"events: {len(evs)}, shifts seen on NOTIFY: {len(lat)}, missing: {missing}")
    print(f"latency produce -> NOTIFY at the client: p50 {pct(lat, 50)*1000:.0f} ms, "
          f"p99 {pct(lat, 99)*1000:.0f} ms, max {(lat[-1] if lat else float('nan'))*1000:.0f} ms"
          f" (goal p99 < 1000 ms: "
          f"{'met' if lat and pct(lat, 99) < 1.0 and not missing else 'NOT met'})")
    print(f"produce -> detected_at (start of the detecting transaction; the row is visible "
          f"at its commit, i.e. with the NOTIFY): p50 {pct(det, 50)*1000:.0f} ms, "
          f"p99 {pct(det, 99)*1000:.0f} ms")
    batches, settles = [], []
    for l in open(a.log):
        if "batch committed:" in l:
            try:
                batches.append(float(l.split(" records, ")[1].split(" ms")[0]))
            except (IndexError, ValueError):
                pass
        elif "settle point: " in l and " ms, " in l:
            try:
                settles.append(float(l.split("settle point: ")[1].split(" ms")[0]))
            except (IndexError, ValueError):
                pass
    batches.sort()
    settles.sort()
    print(f"consumer: {len(batches)} transactions, longest {batches[-1] if batches else 0:.0f} ms"
          f" (p99 {pct(batches, 99):.0f} ms); {len(settles)} settle points, longest "
          f"{settles[-1] if settles else 0:.0f} ms (p99 {pct(settles, 99):.0f} ms)")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", required=True)
    p.add_argument("--tag", required=True)
    r = sub.add_parser("run")
    r.add_argument("--state", required=True)
    r.add_argument("--rate", type=float, default=2000)
    r.add_argument("--seconds", type=float, default=60)
    r.add_argument("--revisions", type=float, default=0.02)
    r.add_argument("--event-every", type=float, default=1.0)
    r.add_argument("--events-out", required=True)
    q = sub.add_parser("report")
    q.add_argument("--events", required=True)
    q.add_argument("--seen", required=True)
    q.add_argument("--log", required=True)
    a = ap.parse_args()
    {"prepare": prepare, "run": run, "report": report}[a.cmd](a)


if __name__ == "__main__":
    main()
