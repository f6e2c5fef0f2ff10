#!/usr/bin/env python3
"""Steady customs feed for bench_alert_latency.sh (SYNTHETIC data).

Writes a customs CSV to stdout at --rate records/s (in 10 ms ticks) for
--seconds: background records (reporter CHN, 40 made-up partners B00..B39,
export, 2021-03, US$1.00 each, far below the leaders, so they never move the
top 2) and, every --event-every seconds, one record that swaps the two
leaders XA and XB of 2021-03 (both start at US$1 bn in 2021-02 and 2021-03,
XA ahead; see --base). Each swap makes tradeflow-aggregate raise alerts:
odd events a shift (XB 2 -> 1), even events its retraction.

For each event it appends "EVENT_NO<TAB>UNIX_TIME<TAB>KIND" to --events-out,
UNIX_TIME being taken just before the record is written and flushed.
--base FILE writes the initial file (XA, XB in 2021-02 and 2021-03) and exits.
"""
import argparse
import sys
import time

HEADER = "record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit\n"
BASE_CENTS = 100_000_000_000  # US$1 bn


def line(rid, partner, cents, period="2021-03"):
    return f"{rid},0,CHN,{partner},export,{period},,{cents // 100}.{cents % 100:02d},,\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--event-every", type=float, default=1.5)
    ap.add_argument("--events-out")
    ap.add_argument("--base")
    ap.add_argument("--tag", default="r", help="record_id prefix (unique per run)")
    a = ap.parse_args()
    if a.base:
        with open(a.base, "w") as f:
            f.write(HEADER)
            for p in ("2021-02", "2021-03"):
                f.write(line(f"{a.tag}-xa-{p}", "XA", BASE_CENTS + 100, p))
                f.write(line(f"{a.tag}-xb-{p}", "XB", BASE_CENTS, p))
        return 0
    ev = open(a.events_out, "a", buffering=1)
    out = sys.stdout
    out.write(HEADER)
    out.flush()
    tick = 0.01
    xa, xb = BASE_CENTS + 100, BASE_CENTS
    start = time.time()
    next_event = start + a.event_every
    sent = 0.0
    n = 0
    events = 0
    while True:
        now = time.time()
        if now - start >= a.seconds:
            break
        if now >= next_event:
            events += 1
            # Overtake the leader by US$1.00 with a new record of the other.
            if xa > xb:
                d = xa - xb + 100
                xb += d
                rec = line(f"{a.tag}-ev{events}", "XB", d)
            else:
                d = xb - xa + 100
                xa += d
                rec = line(f"{a.tag}-ev{events}", "XA", d)
            t = time.time()
            out.write(rec)
            out.flush()
            ev.write(f"{events}\t{t:.6f}\t{'shift' if events % 2 else 'retraction'}\n")
            next_event += a.event_every
        target = (now - start) * a.rate
        chunk = []
        while sent < target:
            chunk.append(line(f"{a.tag}-bg{n}", f"B{n % 40:02d}", 100))
            n += 1
            sent += 1
        if chunk:
            out.write("".join(chunk))
            out.flush()
        time.sleep(max(0.0, tick - (time.time() - now)))
    ev.close()
    print(f"feed: {n} background records and {events} events in {time.time() - start:.1f} s "
          f"({n / (time.time() - start):.0f} records/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
