#!/usr/bin/env python3
"""Independent reader for tradeflow-produce's output (test helper).

Reads a whole topic as a read_committed consumer with confluent-kafka and
decodes every message with fastavro, using nothing of the project but its
.avsc files: the Avro single-object header (C3 01 + CRC-64-AVRO fingerprint
of the schema's Parsing Canonical Form, little-endian) is matched against the
fingerprints of schemas/*.avsc computed here from the specification.

Prints one line per record in the format of test_produce_dump:
  KEY<TAB>dataset|record_id|revision|reporter|partner|flow|period|value_usd|
          hs_code|quantity|unit|sector
Exit: 0 ok, 1 a message could not be decoded, 2 error/timeout.
"""
import argparse
import datetime
import decimal
import glob
import io
import json
import os
import struct
import sys
import time

import fastavro
import fastavro.schema
from confluent_kafka import Consumer, KafkaError, TopicPartition

CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table():
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Avro specification's 64-bit Rabin fingerprint."""
    fp = CRC64_EMPTY
    for b in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ b) & 0xFF]
    return fp


def load_schemas(schema_dir):
    known = {}
    for path in sorted(glob.glob(os.path.join(schema_dir, "*.avsc"))):
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        canonical = fastavro.schema.to_parsing_canonical_form(raw)
        parsed = fastavro.parse_schema(raw)
        known[struct.pack("<Q", crc64_avro(canonical.encode("utf-8")))] = (raw["name"], parsed)
    return known


def fmt(name, rec):
    dataset = {"CustomsRecord": "customs", "InvestmentRecord": "investment"}[name]

    def opt(v):
        return "" if v is None else str(v)

    def dec(v, places):
        if v is None:
            return ""
        return str(v.quantize(decimal.Decimal(1).scaleb(-places)))

    period = rec["period"]
    if not isinstance(period, datetime.date) or period.day != 1:
        raise ValueError(f"period {period!r} is not the first day of a month")
    fields = [
        dataset,
        rec["record_id"],
        str(rec["revision"]),
        rec["reporter"],
        rec["partner"],
        rec["flow"].lower(),
        f"{period.year:04d}-{period.month:02d}",
        dec(rec["value_usd"], 2),
        opt(rec.get("hs_code")),
        dec(rec.get("quantity"), 3),
        opt(rec.get("unit")),
        opt(rec.get("sector")),
    ]
    return "|".join(fields)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-b", "--brokers", default=os.environ.get("TRADEFLOW_BROKERS"))
    ap.add_argument("-t", "--topic", required=True)
    ap.add_argument("--schema-dir", default=os.environ.get("TRADEFLOW_SCHEMA_DIR"))
    ap.add_argument("-T", "--timeout", type=float, default=60.0)
    a = ap.parse_args()
    known = load_schemas(a.schema_dir)
    if not known:
        print(f"no .avsc in {a.schema_dir}", file=sys.stderr)
        return 2
    c = Consumer({
        "bootstrap.servers": a.brokers,
        "group.id": "tf-test-pyread",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    })
    md = c.list_topics(a.topic, timeout=10)
    parts = md.topics[a.topic].partitions
    c.assign([TopicPartition(a.topic, p, 0) for p in parts])
    eof, bad, deadline = set(), 0, time.time() + a.timeout
    while len(eof) < len(parts):
        if time.time() > deadline:
            print(f"timeout: {len(eof)} of {len(parts)} partitions at the end", file=sys.stderr)
            return 2
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
                continue
            print(f"consume: {m.error()}", file=sys.stderr)
            return 2
        v = m.value()
        try:
            if v[:2] != b"\xc3\x01" or v[2:10] not in known:
                raise ValueError(f"unknown header {v[:10].hex()}")
            name, schema = known[v[2:10]]
            rec = fastavro.schemaless_reader(io.BytesIO(v[10:]), schema)
            print(f"{m.key().decode()}\t{fmt(name, rec)}")
        except Exception as e:  # report every undecodable message, go on
            print(f"partition {m.partition()} offset {m.offset()}: {e}", file=sys.stderr)
            bad += 1
    c.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
