#!/usr/bin/env python3
"""pace.py FILE RATE SECONDS - writes FILE's CSV header, then its records at
RATE records per second for at most SECONDS (or until the file ends), in
ticks of 50 ms, flushing each tick. Prints the number of records written to
stderr at the end. Used by bench/load.sh to feed tradeflow-produce's live mode.
"""
import sys
import time


def main():
    path, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    out = sys.stdout
    sent = 0
    with open(path, encoding="utf-8") as f:
        out.write(f.readline())
        start = time.monotonic()
        done = False
        while not done:
            now = time.monotonic() - start
            if now >= seconds:
                break
            due = int(rate * now) - sent
            for _ in range(max(due, 0)):
                line = f.readline()
                if not line:
                    done = True
                    break
                out.write(line)
                sent += 1
            out.flush()
            time.sleep(0.05)
    out.flush()
    print(sent, file=sys.stderr)


if __name__ == "__main__":
    main()
