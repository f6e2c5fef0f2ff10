#!/usr/bin/env python3
"""peer_aggregate.py - the Python peer of tradeflow-aggregate, for the benchmark.

This is the consumer a competent user might write instead of ours, with the
usual libraries: confluent-kafka (a librdkafka binding), fastavro and psycopg 3.
It sends PostgreSQL exactly the statements tradeflow-aggregate sends, so that
bench/bench_aggregate.sh measures the difference on the CLIENT side:

  once per connection   SELECT tradeflow.prepare_session()
  per batch, one tx     BEGIN
                        COPY tf_stage (...) FROM STDIN       (deduplicated batch)
                        SELECT ... FROM tradeflow.apply_stage()
                        INSERT INTO tradeflow.consumer_offsets ... ON CONFLICT ...
                        [SELECT ... FROM tradeflow.settle_alerts(top, from)]
                        COMMIT

A batch closes at --batch-size messages, after --batch-ms, or when every
assigned partition is at its end (the same rules as ours; bench_aggregate.sh
passes ours' default bounds). The
settle point (alert evaluation) runs in the batch's transaction when caught up
or when --settle-interval seconds passed, as ours does. Offsets come from
PostgreSQL on assignment, so the effect is exactly once like ours.

Messages are Avro single-object encoded: C3 01, the 8-byte CRC-64-AVRO
fingerprint of the writer schema's canonical form (little-endian), then Avro
binary. Unknown fingerprints, undecodable payloads and records failing
validation are counted as poison and skipped (their offsets still advance);
unlike ours the peer does not publish them to a dead-letter topic, which the
benchmark's clean feed never exercises.

The peer always stops at the end (like tradeflow-aggregate --exit-at-end) and
prints one JSON line of statistics on stdout. It is a benchmark peer, not a
product: no reconnect loop for PostgreSQL outages.
"""

import argparse
import io
import json
import os
import re
import resource
import sys
import time

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

COLUMNS = ("dataset, record_id, revision, reporter, partner, flow, period, value_usd, "
           "hs_code, quantity, unit, sector, source")
COPY_SQL = "COPY tf_stage (%s) FROM STDIN" % COLUMNS
APPLY_SQL = "SELECT applied, superseded, duplicates FROM tradeflow.apply_stage()"
OFFSETS_SQL = (
    "INSERT INTO tradeflow.consumer_offsets (group_id, topic, partition, next_offset) "
    "SELECT %s, u.t, u.p, u.o FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS u(t, p, o) "
    "ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = "
    "greatest(tradeflow.consumer_offsets.next_offset, excluded.next_offset), "
    "updated_at = now()")
SETTLE_SQL = "SELECT evaluated, raised FROM tradeflow.settle_alerts(%s::int, %s::date)"
LOAD_SQL = ("SELECT topic, partition, next_offset FROM tradeflow.consumer_offsets "
            "WHERE group_id = %s")
RETRYABLE = {"40001", "40P01", "23505"}

CODE_RE = re.compile(r"[A-Z][A-Z0-9]{1,15}\Z")
HS_RE = re.compile(r"[0-9]{2,10}\Z")
FLOWS = {"customs": {"EXPORT": "export", "IMPORT": "import"},
         "investment": {"OUTWARD": "outward", "INWARD": "inward"}}


class Poison(Exception):
    pass


def load_schemas(schema_dir):
    """fingerprint (8 bytes as in the message) -> (dataset, parsed schema)."""
    out = {}
    for name, dataset in (("CustomsRecord.avsc", "customs"),
                          ("InvestmentRecord.avsc", "investment")):
        with open(os.path.join(schema_dir, name), encoding="utf-8") as fh:
            raw = json.load(fh)
        # fastavro prints the CRC-64-AVRO fingerprint in the byte order the
        # single-object encoding puts on the wire (little-endian).
        fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO"))
        out[fp] = (dataset, fastavro.parse_schema(raw))
    return out


def to_row(schemas, payload, source):
    """Decodes and validates one message into a tf_stage row (a tuple)."""
    if payload is None or len(payload) < 10 or payload[0] != 0xC3 or payload[1] != 0x01:
        raise Poison("not Avro single-object encoding")
    try:
        dataset, schema = schemas[bytes(payload[2:10])]
    except KeyError:
        raise Poison("unknown writer schema fingerprint %s" % payload[2:10].hex())
    try:
        r = fastavro.schemaless_reader(io.BytesIO(payload[10:]), schema, None)
    except Exception as e:  # fastavro raises several types on short/bad input
        raise Poison("undecodable: %s" % e)
    flow = FLOWS[dataset].get(r["flow"])
    rid, rep, par, per, val = (r["record_id"], r["reporter"], r["partner"], r["period"],
                               r["value_usd"])
    if (not rid or len(rid.encode()) > 64 or r["revision"] < 0 or flow is None
            or not CODE_RE.match(rep) or not CODE_RE.match(par) or rep == par
            or per.day != 1 or not 1900 <= per.year <= 2999 or val < 0):
        raise Poison("invalid record")
    if dataset == "customs":
        hs, qty, unit = r["hs_code"], r["quantity"], r["unit"]
        if (hs is not None and not HS_RE.match(hs)) or (qty is not None and qty < 0):
            raise Poison("invalid record")
        return (dataset, rid, r["revision"], rep, par, flow, per, val,
                hs or None, qty, unit or None, None, source)
    return (dataset, rid, r["revision"], rep, par, flow, per, val,
            None, None, None, r["sector"] or None, source)


class Peer:
    def __init__(self, args):
        self.args = args
        self.schemas = load_schemas(args.schema_dir)
        self.pg = psycopg.connect(args.pg, autocommit=True,
                                  application_name="peer_aggregate.py")
        self.pg.execute("SELECT tradeflow.prepare_session()")
        self.batch = {}        # (dataset, record_id) -> row, highest revision
        self.positions = {}    # (topic, partition) -> next offset
        self.pending = 0       # messages since the last commit
        self.batch_started = 0.0
        self.last_settle = time.monotonic()
        self.need_settle = True
        self.assigned = {}     # (topic, partition) -> at end (bool)
        self.stats = dict(consumed=0, poison=0, batches=0, records=0, applied=0,
                          superseded=0, duplicates=0, retries=0, settles=0, alerts=0)
        self.consumer = Consumer({
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 10000,
        })
        self.consumer.subscribe(args.topic, on_assign=self.on_assign,
                                on_revoke=self.on_revoke)

    # -- rebalancing: offsets live in PostgreSQL ---------------------------
    def on_assign(self, consumer, parts):
        stored = {(t, p): o for t, p, o in self.pg.execute(LOAD_SQL, (self.args.group,))}
        for tp in parts:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            self.assigned[(tp.topic, tp.partition)] = False
        consumer.incremental_assign(parts)

    def on_revoke(self, consumer, parts):
        if self.pending:
            self.flush(settle=False)
        for tp in parts:
            self.assigned.pop((tp.topic, tp.partition), None)
        consumer.incremental_unassign(parts)

    def all_eof(self):
        return bool(self.assigned) and all(self.assigned.values())

    # -- one batch, one transaction ------------------------------------------
    def apply_once(self, settle):
        d = {}
        with self.pg.transaction():
            with self.pg.cursor() as cur:
                if self.batch:
                    with cur.copy(COPY_SQL) as cp:
                        for row in self.batch.values():
                            cp.write_row(row)
                    cur.execute(APPLY_SQL)
                    d["applied"], d["superseded"], d["duplicates"] = cur.fetchone()
                if self.positions:
                    keys = list(self.positions)
                    cur.execute(OFFSETS_SQL, (self.args.group, [k[0] for k in keys],
                                              [k[1] for k in keys],
                                              [self.positions[k] for k in keys]))
                if settle:
                    cur.execute(SETTLE_SQL, (self.args.alert_top, "1900-01-01"))
                    d["settles"] = 1
                    d["alerts"] = cur.fetchone()[1]
        return d

    def flush(self, settle):
        for attempt in range(1, 21):
            try:
                d = self.apply_once(settle)
                break
            except psycopg.Error as e:
                if e.sqlstate not in RETRYABLE or attempt == 20:
                    raise
                self.stats["retries"] += 1
                time.sleep(0.001 * (attempt * 5))
        for k, v in d.items():
            self.stats[k] += v
        self.stats["batches"] += 1
        self.stats["records"] += len(self.batch)
        if self.positions:
            self.consumer.commit(offsets=[TopicPartition(t, p, o)
                                          for (t, p), o in self.positions.items()],
                                 asynchronous=True)
        self.batch = {}
        self.positions = {}
        self.pending = 0
        self.batch_started = 0.0
        if settle:
            self.last_settle = time.monotonic()
            self.need_settle = False
        else:
            self.need_settle = True

    # -- messages ------------------------------------------------------------
    def handle(self, m):
        err = m.error()
        topic, part = m.topic(), m.partition()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                if (topic, part) in self.assigned:
                    self.assigned[(topic, part)] = True
                return
            if err.fatal():
                raise SystemExit("peer_aggregate: fatal Kafka error: %s" % err)
            print("peer_aggregate: %s" % err, file=sys.stderr)
            return
        self.assigned[(topic, part)] = False
        off = m.offset()
        self.stats["consumed"] += 1
        if not self.batch_started:
            self.batch_started = time.monotonic()
        key = (topic, part)
        if self.positions.get(key, -1) < off + 1:
            self.positions[key] = off + 1
        self.pending += 1
        try:
            row = to_row(self.schemas, m.value(), "%s/%d/%d" % (topic, part, off))
        except Poison:
            self.stats["poison"] += 1
            return
        k = (row[0], row[1])
        old = self.batch.get(k)
        if old is None or row[2] > old[2]:
            self.batch[k] = row

    def run(self):
        a = self.args
        while True:
            want = max(1, min(1000, a.batch_size - self.pending))
            for m in self.consumer.consume(num_messages=want, timeout=0.05):
                self.handle(m)
            now = time.monotonic()
            caught_up = self.all_eof()
            due = (self.pending >= a.batch_size
                   or (self.pending and now - self.batch_started >= a.batch_ms / 1000.0)
                   or (self.pending and caught_up))
            settle_due = caught_up or now - self.last_settle >= a.settle_interval
            if not due and not self.pending and self.need_settle and settle_due:
                due = True
            if due:
                self.flush(settle_due)
            if caught_up and not self.pending and not self.need_settle:
                break
        self.consumer.close()
        self.pg.close()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Python peer of tradeflow-aggregate "
                                 "(benchmark only; always stops at the end)")
    ap.add_argument("-b", "--brokers", default=os.environ.get("TRADEFLOW_BROKERS"))
    ap.add_argument("-t", "--topic", action="append", required=True)
    ap.add_argument("-g", "--group", default="peer-aggregate")
    ap.add_argument("--pg", default="", help="libpq conninfo (default: PG* variables)")
    ap.add_argument("--schema-dir", default=os.path.join(here, "..", "schemas"))
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--batch-ms", type=int, default=500)
    ap.add_argument("--settle-interval", type=float, default=60.0)
    ap.add_argument("--alert-top", type=int, default=10)
    args = ap.parse_args()
    if not args.brokers:
        ap.error("no brokers: use -b or set TRADEFLOW_BROKERS")
    t0 = time.monotonic()
    peer = Peer(args)
    peer.run()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = dict(peer.stats, wall_s=round(time.monotonic() - t0, 3),
               cpu_s=round(ru.ru_utime + ru.ru_stime, 3), maxrss_kb=ru.ru_maxrss)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
