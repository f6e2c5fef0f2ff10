#!/usr/bin/env python3
"""Interop of the tradeflow codec with an independent Avro implementation.

fastavro reads the bytes our C codec writes (single-object encoding, schemas
read only from schemas/*.avsc) and writes bytes that our C decoder reads,
including through an older writer schema that only fastavro writes; the
Parsing Canonical Form and CRC-64-AVRO fingerprint of every schema must be the
same on both sides. Drives the C side through the codec_tool helper.

Usage: codec_interop.py CODEC_TOOL SCHEMA_DIR
Prints "N passed, N failed" and exits non-zero on any failure.
"""
import datetime
import io
import json
import os
import random
import subprocess
import sys
import tempfile
from decimal import Decimal

import fastavro
import fastavro.schema

TOOL, SCHEMA_DIR = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def load(name):
    with open(os.path.join(SCHEMA_DIR, name + ".avsc")) as f:
        return fastavro.parse_schema(json.load(f))


def fp_int(parsed):
    """CRC-64-AVRO of the canonical form, as the integer our tool prints."""
    canon = fastavro.schema.to_parsing_canonical_form(parsed)
    return canon, int.from_bytes(bytes.fromhex(fastavro.schema.fingerprint(canon, "CRC-64-AVRO")), "little")


def tool(args, lines, env=None):
    out = subprocess.run([TOOL] + args, input="".join(l + "\n" for l in lines), capture_output=True,
                         text=True, timeout=120, env=env)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
    check(out.returncode == 0, "codec_tool %s exit %d" % (args, out.returncode))
    return out.stdout.splitlines()


def single_object(parsed, record):
    _, fp = fp_int(parsed)
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + fp.to_bytes(8, "little"))
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


def read_single_object(parsed, data):
    _, fp = fp_int(parsed)
    check(data[:2] == b"\xc3\x01", "magic C3 01")
    check(int.from_bytes(data[2:10], "little") == fp, "fingerprint in header matches the schema")
    return fastavro.schemaless_reader(io.BytesIO(data[10:]), parsed)


SCHEMAS = {n: load(n) for n in ("CustomsRecord", "InvestmentRecord", "RankingAlert")}

# 1. Canonical form and fingerprint: ours == fastavro's.
for name, parsed in SCHEMAS.items():
    canon, fp = fp_int(parsed)
    out = subprocess.run([TOOL, "fingerprint", os.path.join(SCHEMA_DIR, name + ".avsc")],
                         capture_output=True, text=True, timeout=60).stdout.splitlines()
    check(len(out) == 2 and out[0] == canon, "%s canonical form: %s vs %s" % (name, out[:1], canon))
    check(len(out) == 2 and int(out[1], 16) == fp, "%s fingerprint" % name)

# 2. Our bytes, read by fastavro.
rnd = random.Random(20201130)
partners = ["VNM", "THA", "MYS", "SGP", "IDN", "ASEAN", "EU", "USA", "WLD"]
customs_lines, expect = [], []
for i in range(200):
    value = Decimal(rnd.randrange(0, 10**17)) / 100 if i % 10 else Decimal("999999999999999.99")
    qty = (Decimal(rnd.randrange(0, 10**12)) / 1000) if i % 3 else None
    year, month = 1990 + rnd.randrange(40), 1 + rnd.randrange(12)
    line = "customs|rec-%d-\u00e9|%d|CHN|%s|%s|%04d-%02d|%s|%s|%s|%s" % (
        i, i % 4, partners[i % len(partners)], "export" if i % 2 else "import", year, month,
        "%04d" % (i * 37 % 10000) if i % 5 else "", format(value.quantize(Decimal("0.01")), "f"),
        format(qty.quantize(Decimal("0.001")), "f") if qty is not None else "", "kg" if qty is not None else "")
    customs_lines.append(line)
    expect.append(dict(record_id="rec-%d-\u00e9" % i, revision=i % 4, reporter="CHN",
                       partner=partners[i % len(partners)], flow="EXPORT" if i % 2 else "IMPORT",
                       period=datetime.date(year, month, 1),
                       hs_code=("%04d" % (i * 37 % 10000)) if i % 5 else None,
                       value_usd=value.quantize(Decimal("0.01")),
                       quantity=qty.quantize(Decimal("0.001")) if qty is not None else None,
                       unit="kg" if qty is not None else None, record_kind="FACT"))
inv_line = "investment|MOFCOM-Q3|1|CHN|ASEAN|outward|2020-09|Manufacturing|10720000000.00"
alert_line = "alert|7|customs|CHN|total|ytd|partner|2020-11|ASEAN|2|1|60958000000.00|shift|1606780800123456"
hexes = tool(["encode"], customs_lines + [inv_line, alert_line])
check(len(hexes) == len(customs_lines) + 2, "one output line per input line")
for h, want in zip(hexes, expect):
    got = read_single_object(SCHEMAS["CustomsRecord"], bytes.fromhex(h))
    check(got == want, "fastavro reads our customs record: %r != %r" % (got, want))
if len(hexes) == len(customs_lines) + 2:
    inv = read_single_object(SCHEMAS["InvestmentRecord"], bytes.fromhex(hexes[-2]))
    check(inv == dict(record_id="MOFCOM-Q3", revision=1, reporter="CHN", partner="ASEAN", flow="OUTWARD",
                      period=datetime.date(2020, 9, 1), sector="Manufacturing",
                      value_usd=Decimal("10720000000.00")), "investment record: %r" % inv)
    al = read_single_object(SCHEMAS["RankingAlert"], bytes.fromhex(hexes[-1]))
    check(al["flow"] == "TOTAL" and al["basis"] == "YTD" and al["old_rank"] == 2 and al["new_rank"] == 1
          and al["value_usd"] == Decimal("60958000000.00")
          and al["detected_at"] == datetime.datetime(2020, 12, 1, 0, 0, 0, 123456, tzinfo=datetime.timezone.utc),
          "alert: %r" % al)

# 3. fastavro's bytes, read by us: the same records back in text form.
msgs = [single_object(SCHEMAS["CustomsRecord"], r).hex() for r in expect]
back = tool(["decode"], msgs)
check(back == customs_lines, "we read fastavro's records: first difference %r" %
      (next(((a, b) for a, b in zip(back, customs_lines) if a != b), None),))

# 4. Evolution across implementations: an older writer schema (no revision,
# hs_code, quantity or unit; an extra field; a flow symbol the reader lacks)
# that only fastavro writes. Our reader fills defaults and maps the unknown
# symbol to UNKNOWN.
v0 = {"type": "record", "name": "CustomsRecord", "namespace": "tradeflow", "fields": [
    {"name": "record_id", "type": "string"},
    {"name": "office", "type": "string"},
    {"name": "reporter", "type": "string"},
    {"name": "partner", "type": "string"},
    {"name": "flow", "type": {"type": "enum", "name": "CustomsFlow", "symbols": ["EXPORT", "IMPORT", "REEXPORT"]}},
    {"name": "period", "type": {"type": "int", "logicalType": "date"}},
    {"name": "value_usd", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}}]}
with tempfile.TemporaryDirectory() as extra:
    with open(os.path.join(extra, "CustomsRecord.v0.avsc"), "w") as f:
        json.dump(v0, f)
    pv0 = fastavro.parse_schema(v0)
    old = [dict(record_id="old-%d" % i, office="Nanning", reporter="CHN", partner="VNM",
                flow=["EXPORT", "IMPORT", "REEXPORT"][i % 3], period=datetime.date(2019, 1 + i, 1),
                value_usd=Decimal("%d.05" % (1000 + i))) for i in range(3)]
    lines = tool(["--extra", extra, "decode"], [single_object(pv0, r).hex() for r in old])
    check(lines == ["customs|old-0|0|CHN|VNM|export|2019-01||1000.05||",
                    "customs|old-1|0|CHN|VNM|import|2019-02||1001.05||",
                    "customs|old-2|0|CHN|VNM|unknown|2019-03||1002.05||"], "old writer: %r" % lines)
    # Without the older schema its fingerprint is unknown.
    lines = tool(["decode"], [single_object(pv0, old[0]).hex()])
    check(len(lines) == 1 and lines[0].startswith("ERROR") and "fingerprint" in lines[0], "unknown: %r" % lines)

# 4b. Version 1 of CustomsRecord (before record_kind, kept as
# CustomsRecord.v1.avsc): fastavro writes with it, we read facts; and the
# v1 fingerprint is known without --extra.
pv1 = load("CustomsRecord.v1")
v1recs = [{k: v for k, v in r.items() if k != "record_kind"} for r in expect[:5]]
lines = tool(["decode"], [single_object(pv1, r).hex() for r in v1recs])
check(lines == customs_lines[:5], "version-1 messages still decode: %r" % lines[:2])
check(fp_int(pv1)[1] != fp_int(SCHEMAS["CustomsRecord"])[1], "v1 and v2 fingerprints differ")

# 5. Bad bytes: every line gives a result or an ERROR, never a crash.
good = bytes.fromhex(msgs[1])
bad = [b"", b"\xc3", b"\xc3\x01", good[:-1], good + b"\x00", b"\x00\x00\x00\x00\x01" + good[10:],
       good[:10] + b"\xff" * 12, good[:10] + b"\x04\xc0\xaf" + good[12:]]
for i in range(300):
    m = bytearray(good)
    for _ in range(rnd.randrange(1, 4)):
        m[rnd.randrange(len(m))] = rnd.randrange(256)
    bad.append(bytes(m))
lines = tool(["decode"], [b.hex() for b in bad])
# A corrupted byte may become a newline inside a valid string, so there can
# be more lines than messages, never fewer.
check(len(lines) >= len(bad), "an answer per bad message")
check(all(l.startswith("ERROR") for l in lines[:8]), "the crafted bad messages are refused: %r" % lines[:8])

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
