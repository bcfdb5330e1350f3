#!/usr/bin/env python3
"""Write test records with an independent client (confluent-kafka, i.e.
librdkafka), for klamm's interop tests.

    peer-write.py --bootstrap HOST:PORT --topic-prefix P --count N \
                  --partitions K --codecs none,gzip,snappy,lz4,zstd

For each codec C, writes N records to topic "P-C" (which must exist with K
partitions), compressed with C: record i goes to partition i % K with key
"key-i", value "value-i-C" followed by i % 50 dots, headers
[("idx", "i"), ("codec", C)] and timestamp TS + i, where TS is 1.7e12.
Prints one line per codec: "C delivered". Exits non-zero on any delivery
error. Run it with the venv of scripts/mock-cluster (confluent-kafka 2.16.1).
"""
import argparse
import sys

from confluent_kafka import Producer

TS = 1_700_000_000_000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic-prefix", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--codecs", required=True)
    args = ap.parse_args()
    errors = []
    for codec in args.codecs.split(","):
        topic = f"{args.topic_prefix}-{codec}"
        p = Producer({
            "bootstrap.servers": args.bootstrap,
            "compression.type": codec,
            "linger.ms": 20,
            "acks": "all",
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": 1,
        })

        def on_delivery(err, msg):
            if err is not None:
                errors.append(f"{topic}: {err}")

        for i in range(args.count):
            p.produce(
                topic,
                key=f"key-{i}".encode(),
                value=(f"value-{i}-{codec}" + "." * (i % 50)).encode(),
                partition=i % args.partitions,
                headers=[("idx", str(i).encode()), ("codec", codec.encode())],
                timestamp=TS + i,
                on_delivery=on_delivery,
            )
            p.poll(0)
        left = p.flush(30)
        if left:
            errors.append(f"{topic}: {left} records not delivered in 30 s")
        print(f"{codec} delivered", flush=True)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
