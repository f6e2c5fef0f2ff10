#!/usr/bin/env python3
"""A local HTTP(S) receiver for the delivery tests (tests/integration/
test_alerts_deliver.sh), and the tools that read what it received.

  deliver_receiver.py serve --log FILE --ready FILE [--port N] [--cert C --key K]
                            [--hold-file FILE] [--auth "Bearer x"] [--flag-dir DIR]
      Listens on 127.0.0.1 and appends one JSON line per request to FILE:
      {"t": arrival (Unix s), "path", "status" (answered), "key"
      (Idempotency-Key), "ctype", "auth" (Authorization matched: true/false),
      "body" (the parsed JSON)}. The line is written when the request arrives,
      before the answer: a request cut by a crash of the sender is recorded too
      (status "held" lines are requests answered after a hold, see below).
      Paths: /status/NNN answers NNN; /slow answers 200 after waiting while
      --hold-file exists (logged at arrival with status 0, then again with
      the real status); /flaky/NAME answers 503 and /stall/NAME waits 3 s
      then answers 503 while the file --flag-dir/NAME exists; any other path
      answers 200 (401 when --auth is given and the Authorization header
      differs). --ready gets the port once
      listening. The dedup by idempotency key is the caller's job (count).
  deliver_receiver.py count FILE PATH [--am]
      Prints "TOTAL DISTINCT IDS..." for the 2xx-answered requests on PATH:
      total requests, distinct idempotency keys, and the sorted distinct ids.
      --am: PATH is Alertmanager's webhook; counts notified alerts by their
      annotation alert_id: "FIRING_TOTAL FIRING_DISTINCT RESOLVED_DISTINCT
      ids-firing... | ids-resolved...".
  deliver_receiver.py latency FILE PATH [--am]
      p50/p90/p99/max of (first 2xx arrival - the body's detected_at) per id;
      --am: of (first firing notification - the alert's startsAt).
"""
import argparse
import datetime
import http.server
import json
import math
import os
import socketserver
import ssl
import sys
import threading
import time

LOCK = threading.Lock()


def log_line(path, rec):
    with LOCK:
        with open(path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()


def serve(args):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: without TCP_NODELAY, Nagle and the
        # client's delayed ACK add 40 ms to every answer on a kept-alive
        # connection (real receivers - Go's Alertmanager, Slack - set it).
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            rec = {"t": time.time(), "path": self.path, "key": self.headers.get("Idempotency-Key"),
                   "ctype": self.headers.get("Content-Type"),
                   "auth": self.headers.get("Authorization") == args.auth if args.auth else None,
                   "body": body}
            status = 200
            flag = None
            if args.flag_dir and self.path.count("/") == 2:
                flag = os.path.join(args.flag_dir, self.path.split("/")[2])
            if self.path.startswith("/status/"):
                status = int(self.path.split("/")[2])
            elif self.path.startswith("/flaky/") and os.path.exists(flag):
                status = 503
            elif self.path.startswith("/stall/") and os.path.exists(flag):
                time.sleep(3)  # past the sender's timeout
                status = 503
            elif args.auth and self.headers.get("Authorization") != args.auth:
                status = 401
            if self.path == "/slow" and args.hold_file and os.path.exists(args.hold_file):
                log_line(args.log, dict(rec, status=0))
                while os.path.exists(args.hold_file):
                    time.sleep(0.05)
            rec["status"] = status
            log_line(args.log, rec)
            out = b'{"ok":true}' if status < 300 else b'{"error":"refused by the test receiver"}'
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except OSError:
                pass  # the sender went away (killed while we held its request)

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = S(("127.0.0.1", args.port), H)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if args.ready:
        tmp = args.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(tmp, args.ready)
    srv.serve_forever()


def records(path, want_path):
    out = []
    if not os.path.exists(path):
        return out
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        if r["path"] == want_path and 200 <= r["status"] < 300:
            out.append(r)
    return out


def body_key(body):
    """The idempotency key as the payload carries it, for each kind."""
    if isinstance(body, list):  # Alertmanager API
        return body[0]["annotations"]["idempotency_key"]
    if "specversion" in body:  # CloudEvents
        return body["id"]
    if "blocks" in body:  # Slack
        return body["blocks"][0]["block_id"]
    if body.get("type") == "message":  # Teams
        facts = body["attachments"][0]["content"]["body"][1]["facts"]
        return [f["value"] for f in facts if f["title"] == "Alert id"][0]
    return body["idempotency_key"]


def count(args):
    recs = records(args.file, args.path)
    if not args.am:
        for r in recs:
            if body_key(r["body"]) != r["key"]:
                sys.exit("%s: Idempotency-Key %s but the payload says %s" % (
                    args.path, r["key"], body_key(r["body"])))
        ids = sorted({int(r["key"]) for r in recs}, key=int)
        print(len(recs), len(ids), *ids)
        return
    firing_total = 0
    firing, resolved = set(), set()
    for r in recs:
        for a in r["body"]["alerts"]:
            aid = int(a["annotations"]["alert_id"])
            if a["status"] == "firing":
                firing_total += 1
                firing.add(aid)
            else:
                resolved.add(aid)
    print(firing_total, len(firing), len(resolved), *sorted(firing), "|", *sorted(resolved))


def detected(body):
    if "specversion" in body:
        body = body["data"]
    return parse_ts(body["detected_at"])


def parse_ts(ts):
    # RFC 3339 UTC with up to nanoseconds (Alertmanager) or microseconds.
    ts = ts.rstrip("Z")
    if "." in ts:
        base, frac = ts.split(".")
        ts = base + "." + frac[:6]
    else:
        ts += ".0"
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def latency(args):
    first = {}
    for r in records(args.file, args.path):
        if args.am:  # Alertmanager's webhook: startsAt is the alert's detected_at
            for a in r["body"]["alerts"]:
                k = int(a["annotations"]["alert_id"])
                if a["status"] == "firing" and k not in first:
                    first[k] = r["t"] - parse_ts(a["startsAt"])
            continue
        k = int(r["key"])
        if k not in first:
            first[k] = r["t"] - detected(r["body"])
    v = sorted(first.values())
    if not v:
        sys.exit("no delivery on " + args.path)

    def pct(p):  # nearest rank
        return v[max(0, math.ceil(p / 100 * len(v)) - 1)]
    print("n=%d p50=%.0f ms p90=%.0f ms p99=%.0f ms max=%.0f ms" % (
        len(v), pct(50) * 1e3, pct(90) * 1e3, pct(99) * 1e3, v[-1] * 1e3))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--log", required=True)
    s.add_argument("--ready")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--cert")
    s.add_argument("--key")
    s.add_argument("--hold-file")
    s.add_argument("--auth")
    s.add_argument("--flag-dir")
    c = sub.add_parser("count")
    c.add_argument("file")
    c.add_argument("path")
    c.add_argument("--am", action="store_true")
    la = sub.add_parser("latency")
    la.add_argument("file")
    la.add_argument("path")
    la.add_argument("--am", action="store_true")
    args = ap.parse_args()
    {"serve": serve, "count": count, "latency": latency}[args.cmd](args)


if __name__ == "__main__":
    main()
