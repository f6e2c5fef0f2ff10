#!/usr/bin/env python3
"""Independent peers for the alert tests and the latency benchmark.

  alerts_peer.py listen [--ready FILE] [--seconds S]
      LISTEN tradeflow_alerts with psycopg (PG* environment) and print every
      notification payload as one JSON line, with "_recv" = arrival time
      (Unix seconds, float) added. Touches FILE once LISTEN is in place.
      Stops on SIGTERM/SIGINT or after S seconds.

  alerts_peer.py dump --brokers B --topic T --schema-dir DIR
      Read the whole topic as a read_committed consumer (confluent-kafka) and
      decode every message with fastavro, using nothing of the project but
      RankingAlert.avsc: the single-object header's CRC-64-AVRO fingerprint
      must be that of the schema's Parsing Canonical Form (computed by
      fastavro). Prints one CSV line per message:
        offset,alert_id,kind,retracts,dataset,reporter,flow,basis,level,
        period(YYYY-MM),partner,old_rank,new_rank,value_usd,key

  alerts_peer.py stamp
      Copy stdin to stdout line by line, prefixing each line with its arrival
      time (Unix seconds, float) and a tab (used on tradeflow-alerts --json).

Exit: 0 ok, 1 a message could not be decoded, 2 error.
"""
import argparse
import io
import json
import os
import select
import signal
import struct
import sys
import time


def listen(a):
    import psycopg

    conn = psycopg.connect(autocommit=True)
    conn.execute("LISTEN tradeflow_alerts")
    if a.ready:
        open(a.ready, "w").close()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    deadline = time.time() + a.seconds if a.seconds else None
    out = sys.stdout
    while not stop and (deadline is None or time.time() < deadline):
        for n in conn.notifies(timeout=0.2):
            d = json.loads(n.payload)
            d["_recv"] = time.time()
            out.write(json.dumps(d) + "\n")
            out.flush()
    return 0


def dump(a):
    import fastavro
    import fastavro.schema
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    with open(os.path.join(a.schema_dir, "RankingAlert.avsc")) as f:
        schema_json = json.load(f)
    parsed = fastavro.parse_schema(schema_json)
    pcf = fastavro.schema.to_parsing_canonical_form(schema_json)
    fp = fastavro.schema.fingerprint(pcf, "CRC-64-AVRO")
    # fastavro gives the fingerprint as the bytes of its little-endian form:
    # exactly what follows C3 01 on the wire.
    header = b"\xc3\x01" + bytes.fromhex(fp)
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": "alerts-peer-dump",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    md = c.list_topics(a.topic, timeout=10)
    parts = md.topics[a.topic].partitions
    if len(parts) != 1:
        print(f"topic {a.topic} has {len(parts)} partitions, expected 1", file=sys.stderr)
        return 2
    c.assign([TopicPartition(a.topic, 0, 0)])
    rc = 0
    deadline = time.time() + 30
    while True:
        m = c.poll(1.0)
        if m is None:
            if time.time() > deadline:
                print("timeout reading the topic", file=sys.stderr)
                return 2
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                break
            print(f"kafka: {m.error()}", file=sys.stderr)
            return 2
        v = m.value()
        if not v.startswith(header):
            print(f"offset {m.offset()}: not single-object RankingAlert", file=sys.stderr)
            rc = 1
            continue
        rec = fastavro.schemaless_reader(io.BytesIO(v[10:]), parsed)
        hdrs = dict((k, (val or b"").decode()) for k, val in (m.headers() or []))
        period = rec["period"]
        row = [m.offset(), rec["alert_id"], hdrs.get("tf.kind", ""), hdrs.get("tf.retracts", ""),
               rec["dataset"].lower(), rec["reporter"], rec["flow"].lower(), rec["basis"].lower(),
               rec["level"].lower(), period.strftime("%Y-%m"), rec["partner"],
               "" if rec["old_rank"] is None else rec["old_rank"],
               "" if rec["new_rank"] is None else rec["new_rank"], f"{rec['value_usd']:.2f}",
               (m.key() or b"").decode()]
        print(",".join(str(x) for x in row))
    c.close()
    return rc


def stamp(_a):
    out = sys.stdout
    for line in sys.stdin:
        out.write(f"{time.time():.6f}\t{line}")
        out.flush()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("listen")
    p.add_argument("--ready")
    p.add_argument("--seconds", type=float, default=0)
    p = sub.add_parser("dump")
    p.add_argument("--brokers", default=os.environ.get("TRADEFLOW_BROKERS"))
    p.add_argument("--topic", required=True)
    p.add_argument("--schema-dir", required=True)
    sub.add_parser("stamp")
    a = ap.parse_args()
    return {"listen": listen, "dump": dump, "stamp": stamp}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
