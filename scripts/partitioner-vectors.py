#!/usr/bin/env python3
"""Derive key -> partition test vectors for src/producer/partitioner.rs.

    set -a; eval "$(scripts/test-broker start)"; set +a   # export KLAMM_TEST_BROKERS
    $HOME/.cache/klamm/venv-ck/bin/python scripts/partitioner-vectors.py
    scripts/test-broker stop

Needs confluent-kafka==2.16.1 (librdkafka 2.16) in the interpreter that runs it
(e.g. python3 -m venv $HOME/.cache/klamm/venv-ck &&
$HOME/.cache/klamm/venv-ck/bin/pip install confluent-kafka==2.16.1) and a running
test broker (KLAMM_TEST_BROKERS). With --no-broker only the FNV-1a vectors are
printed.

murmur2 and consistent (CRC-32) vectors come from a real client: for every
partition count, a topic is created with scripts/test-broker create-topic, every
key is produced three times with librdkafka's `partitioner=murmur2_random`
(Java-compatible murmur2) or `partitioner=consistent`, and the partition in
each delivery report is recorded. The three reports of one key must agree (the
partitioner is deterministic for non-null keys). For `consistent`, a record
with a null key is produced as well.

FNV-1a vectors come from the small implementation below, written from the
FNV-1a definition (offset basis 2166136261, prime 16777619, xor then multiply,
mod 2^32), followed by Sarama's NewHashPartitioner conversion: the hash as a
signed 32-bit int, Go's truncated remainder by the partition count, negated if
negative.

Output: one Rust-ish tuple line per key, ready to paste into the tests.
"""

import os
import subprocess
import sys
import time

PARTITION_COUNTS = (6, 13)

KEYS = [
    b"",
    b"a",
    b"b",
    b"ab",
    b"abc",
    b"abcd",
    b"abcde",
    b"hello",
    b"kafka",
    b"klamm",
    b"key-0",
    b"key-1",
    b"key-2",
    b"key-17",
    b"user:42",
    b"order/2024-01-01/0001",
    b"The quick brown fox jumps over the lazy dog",
    "Grüße".encode("utf-8"),
    "日本語".encode("utf-8"),
    "🦀".encode("utf-8"),
    bytes([0x00]),
    bytes([0xFF]),
    bytes([0x80, 0x81, 0xFE, 0xFF]),
    bytes(range(256))[200:213],
    bytes([0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0x02]),
]


def fnv1a32(data: bytes) -> int:
    h = 2166136261
    for byte in data:
        h ^= byte
        h = (h * 16777619) % (1 << 32)
    return h


def sarama_fnv1a_partition(key: bytes, n: int) -> int:
    h = fnv1a32(key)
    signed = h - (1 << 32) if h >= (1 << 31) else h
    # Go's % truncates toward zero: the remainder has the dividend's sign.
    rem = abs(signed) % n
    rem = -rem if signed < 0 else rem
    return -rem if rem < 0 else rem


def rust_bytes(key: bytes) -> str:
    return 'b"' + "".join(
        chr(c) if 0x20 <= c < 0x7F and chr(c) not in '"\\' else f"\\x{c:02x}" for c in key
    ) + '"'


def produce_vectors(brokers: str, partitioner: str, n: int, null_key: bool):
    from confluent_kafka import Producer

    topic = f"vectors-{partitioner.replace('_', '-')}-{n}-{int(time.time() * 1000)}"
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(
        [os.path.join(here, "test-broker"), "create-topic", topic, str(n)], check=True
    )
    producer = Producer(
        {"bootstrap.servers": brokers, "partitioner": partitioner, "linger.ms": 0}
    )
    seen = {}
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
            return
        seen.setdefault(msg.key(), []).append(msg.partition())

    keys = list(KEYS) + ([None] if null_key else [])
    for _ in range(3):
        for key in keys:
            producer.produce(topic, key=key, value=b"v", on_delivery=report)
        producer.flush(30)
    if errors:
        sys.exit(f"delivery failed on {topic}: {errors[0]}")
    out = {}
    for key in keys:
        parts = seen.get(key)
        if not parts or len(parts) != 3 or len(set(parts)) != 1:
            sys.exit(f"{partitioner}/{n}: key {key!r} gave {parts}")
        out[key] = parts[0]
    return out


def main():
    if "--no-broker" not in sys.argv:
        brokers = os.environ.get("KLAMM_TEST_BROKERS")
        if not brokers:
            sys.exit("KLAMM_TEST_BROKERS is not set (eval \"$(scripts/test-broker start)\")")
        import confluent_kafka

        print(
            f"// confluent-kafka {confluent_kafka.version()[0]}, "
            f"librdkafka {confluent_kafka.libversion()[0]}"
        )
        for partitioner, null_key in (("murmur2_random", False), ("consistent", True)):
            results = {n: produce_vectors(brokers, partitioner, n, null_key) for n in PARTITION_COUNTS}
            print(f"// {partitioner}: (key, partition with {PARTITION_COUNTS[0]}, with {PARTITION_COUNTS[1]})")
            keys = list(KEYS) + ([None] if null_key else [])
            for key in keys:
                shown = "None" if key is None else f"Some({rust_bytes(key)})"
                cols = ", ".join(str(results[n][key]) for n in PARTITION_COUNTS)
                print(f"({shown}, {cols}),")
    print(f"// sarama fnv1a (independent Python): (key, hash, partition with {PARTITION_COUNTS[0]}, with {PARTITION_COUNTS[1]})")
    for key in KEYS:
        cols = ", ".join(str(sarama_fnv1a_partition(key, n)) for n in PARTITION_COUNTS)
        print(f"({rust_bytes(key)}, 0x{fnv1a32(key):08x}, {cols}),")


if __name__ == "__main__":
    main()
