#!/usr/bin/env python3
"""An independent reader for klamm's round-trip tests.

Reads every partition of a topic from offset 0 with confluent-kafka
(librdkafka), up to the given number of records per partition, and checks
each record against the pattern klamm's tests write (the same pattern is
written out in tests/support/pattern.rs):

  partition p, the i-th record written to it (i = 0, 1, ...):
    key        b"k-{p}-{i}"
    value      b"v-{p}-{i}-" followed by FILL[(7*i) % 256 :] up to SIZE bytes,
               where FILL is the bytes 0..255 repeated
    headers    [("seq", b"{i}"), ("part", b"{p}")], in that order
    timestamp  BASE_TS + i (CreateTime)

Prints one JSON line: {"records": N, "partitions": {p: n}, "errors": E,
"first_errors": [...]} and exits 0 only when every partition holds exactly
the expected records, in order, each once.

usage: peer-read.py BOOTSTRAP TOPIC COUNTS SIZE BASE_TS [TIMEOUT_S]
  COUNTS: the records expected in partitions 0, 1, ..., comma-separated
"""

import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition, KafkaError

FILL = bytes(range(256)) * 40


def expected_value(p, i, size):
    prefix = b"v-%d-%d-" % (p, i)
    start = (7 * i) % 256
    return prefix + FILL[start : start + size - len(prefix)]


def main():
    if len(sys.argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic = sys.argv[1], sys.argv[2]
    counts = [int(c) for c in sys.argv[3].split(",")]
    partitions = len(counts)
    size, base_ts = int(sys.argv[4]), int(sys.argv[5])
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 120.0

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "klamm-peer-read",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.queue.backoff.ms": 10,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])

    next_seq = {p: 0 for p in range(partitions)}
    errors = []
    error_count = 0
    total = 0
    want = sum(counts)
    deadline = time.monotonic() + timeout

    def fail(msg):
        nonlocal error_count
        error_count += 1
        if len(errors) < 10:
            errors.append(msg)

    while total < want and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=10000, timeout=1.0):
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    fail("consumer error: %s" % err)
                continue
            p = m.partition()
            i = next_seq.get(p)
            if i is None:
                fail("record from unexpected partition %d" % p)
                continue
            total += 1
            next_seq[p] = i + 1
            if i >= counts[p]:
                fail("partition %d: more than %d records (offset %d)" % (p, counts[p], m.offset()))
                continue
            if m.key() != b"k-%d-%d" % (p, i):
                fail("partition %d offset %d: key %r, expected record %d" % (p, m.offset(), m.key(), i))
                continue
            if m.value() != expected_value(p, i, size):
                fail("partition %d offset %d: value differs for record %d" % (p, m.offset(), i))
            hdrs = m.headers() or []
            if hdrs != [("seq", b"%d" % i), ("part", b"%d" % p)]:
                fail("partition %d offset %d: headers %r" % (p, m.offset(), hdrs))
            ts_type, ts = m.timestamp()
            if ts != base_ts + i:
                fail("partition %d offset %d: timestamp %d, expected %d" % (p, m.offset(), ts, base_ts + i))
    consumer.close()

    for p, n in next_seq.items():
        if n != counts[p]:
            fail("partition %d: read %d records, expected %d" % (p, n, counts[p]))
    print(
        json.dumps(
            {
                "records": total,
                "partitions": {str(p): n for p, n in next_seq.items()},
                "errors": error_count,
                "first_errors": errors,
            }
        )
    )
    return 0 if error_count == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
