#!/usr/bin/env python3
"""Drive reference Kafka clients through scripts/capture-produce.py and turn the
recorded Produce requests into fixtures under tests/fixtures/produce/.

Run by scripts/capture-fixtures.sh inside a venv holding confluent-kafka,
kafka-python, python-snappy, lz4 and zstandard (exact pins in that script).

    capture-clients.py all --bootstrap 127.0.0.1:P --topic T --proxy-dir D --fixtures-dir F
    capture-clients.py run-one NAME --bootstrap ... --topic T --client-id CID
    capture-clients.py verify --fixtures-dir F        # re-check fixtures vs MANIFEST.json

Every capture uses the same deterministic records (RECORDS below; legacy message
sets carry no headers, so those runs send the records without headers). Each
client run is a subprocess bounded by a timeout; its Produce frame is found in the
proxy's index.jsonl by its unique client.id. The first Produce frame of the run is
kept (later ones would be retries of the same batch).
"""

import argparse
import gzip
import hashlib
import importlib.metadata as md
import json
import os
import struct
import subprocess
import sys
import time

BASE_TS = 1700000000000  # 2023-11-14T22:13:20Z, CreateTime in ms
FILLER = "the quick brown fox jumps over the lazy dog; "


def make_records(with_headers=True, null_header_value=True):
    """The records every capture sends. kafka-python refuses None header values,
    so its h2 header carries an empty value instead of null."""
    h2 = None if null_header_value else ""
    recs = []
    for i in range(5):
        recs.append({
            "key": None if i == 3 else f"key-{i}",
            "value": f"value-{i}: " + FILLER * 6,
            "headers": ([["h1", "a"], ["h1", "b"], ["h2", h2]]
                        if with_headers and i == 1 else []),
            "timestamp": BASE_TS + 1000 * i,
        })
    return recs


CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

# name -> (client, codec, legacy fallback or None, idempotent)
CAPTURES = {}
for c in CODECS:
    CAPTURES[f"confluent-{c}"] = ("confluent-kafka", c, None, False)
CAPTURES["confluent-lz4-idempotent"] = ("confluent-kafka", "lz4", None, True)
for c in CODECS:
    CAPTURES[f"kafka-python-{c}"] = ("kafka-python", c, None, False)
for magic, fallback in ((0, "0.9.0"), (1, "0.10.0")):
    for c in CODECS:
        CAPTURES[f"confluent-{c}-magic{magic}"] = ("confluent-kafka", c, fallback, False)
for magic, apiv in ((0, "0.9"), (1, "0.10")):
    for c in ("none", "gzip"):
        CAPTURES[f"kafka-python-{c}-magic{magic}"] = ("kafka-python", c, apiv, False)

RUN_TIMEOUT_S = 40
# capture-fixtures.sh runs the proxy with --cap-produce-version=<this marker>:2
PRODUCE_V2_MARK = "-cap-produce-v2"


def records_for(client, legacy):
    return make_records(with_headers=legacy is None,
                        null_header_value=client != "kafka-python")


# ---------------------------------------------------------------------------
# Client runs (each in its own process)

def run_confluent(bootstrap, topic, client_id, codec, legacy, idempotent, records):
    from confluent_kafka import Producer
    conf = {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "compression.type": codec,
        "linger.ms": 5000,
        "acks": "all",
        "enable.idempotence": idempotent,
        "message.timeout.ms": 15000,
        "socket.timeout.ms": 10000,
    }
    if legacy == "0.9.0":
        # No ApiVersions request at all: librdkafka assumes a 0.9.0 broker
        # (Produce v1, MessageSet magic 0).
        conf.update({"api.version.request": False, "broker.version.fallback": legacy})
    # legacy == "0.10.0": librdkafka 2.x always sends ApiVersions for fallbacks
    # >= 0.10, so the fallback cannot force magic 1; instead the proxy caps the
    # advertised Produce version at 2 for this client id (PRODUCE_V2_MARK).
    if legacy:
        conf.update({"message.send.max.retries": 0, "message.timeout.ms": 8000})
    results = []
    p = Producer(conf)
    for r in records:
        hdrs = [(k, None if v is None else v.encode()) for k, v in r["headers"]]
        p.produce(topic, value=r["value"].encode(),
                  key=None if r["key"] is None else r["key"].encode(),
                  partition=0, timestamp=r["timestamp"], headers=hdrs or None,
                  on_delivery=lambda err, msg: results.append(
                      str(err) if err else f"ok offset {msg.offset()}"))
    left = p.flush(20)
    return {"undelivered": left, "reports": results}


def run_kafka_python(bootstrap, topic, client_id, codec, legacy, idempotent, records):
    from kafka import KafkaProducer
    kw = dict(
        bootstrap_servers=bootstrap, client_id=client_id,
        compression_type=None if codec == "none" else codec,
        linger_ms=5000, acks="all", enable_idempotence=idempotent,
        request_timeout_ms=10000, max_block_ms=10000,
    )
    if legacy:
        kw.update(api_version=tuple(int(x) for x in legacy.split(".")), retries=0)
    p = KafkaProducer(**kw)
    futs = []
    for r in records:
        hdrs = [(k, None if v is None else v.encode()) for k, v in r["headers"]]
        futs.append(p.send(topic, value=r["value"].encode(),
                           key=None if r["key"] is None else r["key"].encode(),
                           headers=hdrs, partition=0, timestamp_ms=r["timestamp"]))
    p.flush(timeout=20)
    out = []
    for f in futs:
        try:
            out.append(f"ok offset {f.get(timeout=1).offset}")
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            out.append(f"error {type(e).__name__}: {e}")
    p.close(timeout=5)
    return {"reports": out}


def cmd_run_one(args):
    client, codec, legacy, idem = CAPTURES[args.name]
    records = records_for(client, legacy)
    fn = run_confluent if client == "confluent-kafka" else run_kafka_python
    res = fn(args.bootstrap, args.topic, args.client_id, codec, legacy, idem, records)
    print(json.dumps(res))


# ---------------------------------------------------------------------------
# Produce request / record parsing (independent of the clients)

class Buf:
    def __init__(self, data, pos=0):
        self.d, self.p = data, pos

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise ValueError(f"short read: want {n} at {self.p} of {len(self.d)}")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def unpack(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v if len(v) > 1 else v[0]

    def uvarint(self):
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def varint(self):
        u = self.uvarint()
        return (u >> 1) ^ -(u & 1)

    def tagged(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def parse_produce(frame):
    """Returns dict with header fields and [(topic, partition, records_bytes)]."""
    b = Buf(frame)
    size = b.unpack(">i")
    if size != len(frame) - 4:
        raise ValueError(f"size prefix {size} != {len(frame) - 4}")
    api_key, ver, corr = b.unpack(">hhi")
    if api_key != 0:
        raise ValueError(f"api_key {api_key} is not Produce")
    n = b.unpack(">h")
    client_id = b.take(n).decode() if n >= 0 else None
    flexible = ver >= 9
    if flexible:
        b.tagged()

    def string(nullable=False):
        if flexible:
            n = b.uvarint() - 1
        else:
            n = b.unpack(">h")
        if n < 0:
            if not nullable:
                raise ValueError("null non-nullable string")
            return None
        return b.take(n).decode()

    def array_len():
        return b.uvarint() - 1 if flexible else b.unpack(">i")

    txn = string(nullable=True) if ver >= 3 else None
    acks, timeout = b.unpack(">hi")
    parts = []
    for _ in range(array_len()):
        topic = string()
        for _ in range(array_len()):
            idx = b.unpack(">i")
            n = b.uvarint() - 1 if flexible else b.unpack(">i")
            roff = b.p
            recs = b.take(n) if n >= 0 else None
            if flexible:
                b.tagged()
            parts.append((topic, idx, recs, roff))
        if flexible:
            b.tagged()
    if flexible:
        b.tagged()
    if b.p != len(frame):
        raise ValueError(f"{len(frame) - b.p} trailing bytes after Produce request")
    return {"api_version": ver, "correlation_id": corr, "client_id": client_id,
            "transactional_id": txn, "acks": acks, "timeout_ms": timeout,
            "partitions": parts}


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC32C_T = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for x in data:
        c = CRC32C_T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


LEGACY_LZ4_HC_FIXED = []
SNAPPY_FRAMING = []


def decompress(codec, data, magic):
    if codec == 0:
        return data
    if codec == 1:
        return gzip.decompress(data)
    if codec == 2:
        import snappy
        SNAPPY_FRAMING.append("xerial" if data[:8] == b"\x82SNAPPY\x00" else "raw")
        if data[:8] == b"\x82SNAPPY\x00":  # xerial framing (Java client style)
            b, out = Buf(data, 16), b""
            while b.p < len(data):
                out += snappy.uncompress(b.take(b.unpack(">i")))
            return out
        return snappy.uncompress(data)
    if codec == 3:
        import lz4.frame
        try:
            return lz4.frame.decompress(data)
        except RuntimeError:
            if magic != 0:
                raise
        # KAFKA-3160: magic-0 LZ4 frames may carry the old, wrong header checksum
        # (xxh32 over the frame magic too, not only the descriptor). Check that it
        # is exactly that, put in the right one, then decode.
        import xxhash
        if data[:4] != b"\x04\x22\x4d\x18":
            raise ValueError("not an LZ4 frame")
        flg = data[4]
        hc_pos = 4 + 2 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0)
        broken = (xxhash.xxh32_intdigest(data[0:hc_pos]) >> 8) & 0xFF
        if data[hc_pos] != broken:
            raise ValueError("LZ4 frame header checksum is neither right nor KAFKA-3160 style")
        right = (xxhash.xxh32_intdigest(data[4:hc_pos]) >> 8) & 0xFF
        LEGACY_LZ4_HC_FIXED.append(True)
        return lz4.frame.decompress(data[:hc_pos] + bytes([right]) + data[hc_pos + 1:])
    if codec == 4:
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError(f"unknown codec id {codec}")


def decode_v2_batches(data):
    """Returns list of batch dicts (header fields + decoded records)."""
    b, batches = Buf(data), []
    while b.p < len(data):
        start = b.p
        base_offset, blen = b.unpack(">qi")
        end = b.p + blen
        leader_epoch, magic = b.unpack(">ib")
        if magic != 2:
            raise ValueError(f"batch at {start}: magic {magic}, expected 2")
        crc = b.unpack(">I")
        if crc32c(data[b.p:end]) != crc:
            raise ValueError(f"batch at {start}: CRC-32C mismatch")
        (attrs, last_delta, first_ts, max_ts, pid, epoch, seq, count) = b.unpack(">hiqqqhii")
        body = decompress(attrs & 7, data[b.p:end], 2)
        rb, recs = Buf(body), []
        for _ in range(count):
            rlen = rb.varint()
            rend = rb.p + rlen
            rb.take(1)  # record attributes
            ts_delta, off_delta = rb.varint(), rb.varint()
            kl = rb.varint()
            key = rb.take(kl).decode() if kl >= 0 else None
            vl = rb.varint()
            val = rb.take(vl).decode() if vl >= 0 else None
            hdrs = []
            for _ in range(rb.varint()):
                hk = rb.take(rb.varint()).decode()
                hl = rb.varint()
                hdrs.append([hk, rb.take(hl).decode() if hl >= 0 else None])
            if rb.p != rend:
                raise ValueError("record length mismatch")
            recs.append({"key": key, "value": val, "headers": hdrs,
                         "timestamp": first_ts + ts_delta, "offset_delta": off_delta})
        if rb.p != len(body):
            raise ValueError("trailing bytes after records")
        batches.append({
            "magic": 2, "attributes": attrs, "codec": attrs & 7,
            "transactional": bool(attrs & 0x10), "control": bool(attrs & 0x20),
            "timestamp_type": (attrs >> 3) & 1, "base_offset": base_offset,
            "last_offset_delta": last_delta, "first_timestamp": first_ts,
            "max_timestamp": max_ts, "producer_id": pid, "producer_epoch": epoch,
            "base_sequence": seq, "records": recs,
            "compressed_size": end - start - 61, "uncompressed_size": len(body),
        })
        b.p = end
    return batches


def decode_message_set(data, depth=0):
    """Legacy magic 0/1 message set -> list of wrapper/plain message dicts."""
    import zlib
    b, msgs = Buf(data), []
    while b.p < len(data):
        offset, msize = b.unpack(">qi")
        end = b.p + msize
        crc = b.unpack(">I")
        if zlib.crc32(data[b.p:end]) != crc:
            raise ValueError(f"message at offset {offset}: CRC-32 mismatch")
        magic, attrs = b.unpack(">bb")
        if magic not in (0, 1):
            raise ValueError(f"message magic {magic}")
        ts = b.unpack(">q") if magic == 1 else None
        kl = b.unpack(">i")
        key = b.take(kl) if kl >= 0 else None
        vl = b.unpack(">i")
        val = b.take(vl) if vl >= 0 else None
        if b.p != end:
            raise ValueError("message size mismatch")
        m = {"offset": offset, "magic": magic, "attributes": attrs, "codec": attrs & 7,
             "timestamp": ts}
        if attrs & 7:
            if depth:
                raise ValueError("nested compression")
            inner = decompress(attrs & 7, val, magic)
            m["inner"] = decode_message_set(inner, depth + 1)
            m["compressed_size"], m["uncompressed_size"] = len(val), len(inner)
        else:
            m["key"] = None if key is None else key.decode()
            m["value"] = None if val is None else val.decode()
        msgs.append(m)
    return msgs


def analyse(frame, expect_codec, expect_records):
    """Parses one fixture frame; raises on any mismatch. Returns a summary."""
    req = parse_produce(frame)
    if len(req["partitions"]) != 1:
        raise ValueError(f"{len(req['partitions'])} partitions in request, expected 1")
    topic, part, recs, roff = req["partitions"][0]
    if recs is None:
        raise ValueError("null records")
    magic = recs[16]  # same offset for v2 batches and legacy messages
    codec_id = CODEC_IDS[expect_codec]
    summary = {"api_version": req["api_version"], "client_id": req["client_id"],
               "transactional_id": req["transactional_id"], "acks": req["acks"],
               "topic": topic, "partition": part, "magic": magic,
               "records_offset": roff, "records_size": len(recs)}
    LEGACY_LZ4_HC_FIXED.clear()
    SNAPPY_FRAMING.clear()
    if magic == 2:
        batches = decode_v2_batches(recs)
        if len(batches) != 1:
            raise ValueError(f"{len(batches)} batches, expected 1")
        bt = batches[0]
        if bt["codec"] != codec_id:
            raise ValueError(f"batch codec {bt['codec']}, expected {codec_id}")
        got = [{k: r[k] for k in ("key", "value", "headers", "timestamp")} for r in bt["records"]]
        if got != expect_records:
            raise ValueError(f"records differ:\n got {got}\n want {expect_records}")
        summary.update({k: bt[k] for k in (
            "attributes", "timestamp_type", "producer_id", "producer_epoch", "base_sequence",
            "compressed_size", "uncompressed_size")})
    elif magic in (0, 1):
        msgs = decode_message_set(recs)
        if codec_id:
            if len(msgs) != 1 or msgs[0]["codec"] != codec_id:
                raise ValueError(f"expected one wrapper message with codec {codec_id}")
            inner = msgs[0]["inner"]
            summary.update({"attributes": msgs[0]["attributes"],
                            "wrapper_offset": msgs[0]["offset"],
                            "wrapper_timestamp": msgs[0]["timestamp"],
                            "inner_offsets": [m["offset"] for m in inner],
                            "compressed_size": msgs[0]["compressed_size"],
                            "uncompressed_size": msgs[0]["uncompressed_size"]})
        else:
            inner = msgs
            summary["attributes"] = msgs[0]["attributes"]
        got = [{"key": m["key"], "value": m["value"]} for m in inner]
        want = [{"key": r["key"], "value": r["value"]} for r in expect_records]
        if got != want:
            raise ValueError(f"messages differ:\n got {got}\n want {want}")
        if any(m["magic"] != magic for m in inner):
            raise ValueError("inner magic differs from wrapper magic")
        if magic == 1:
            ts = [m["timestamp"] for m in inner]
            summary["inner_timestamps"] = ts
            if ts != [r["timestamp"] for r in expect_records]:
                raise ValueError(f"magic-1 timestamps {ts} differ from those sent")
    else:
        raise ValueError(f"unexpected magic {magic}")
    if SNAPPY_FRAMING:
        summary["snappy_framing"] = SNAPPY_FRAMING[0]
    if LEGACY_LZ4_HC_FIXED:
        summary["lz4_kafka_3160_header_checksum"] = True
    return summary


# ---------------------------------------------------------------------------

def summarise(stdout):
    """Client's delivery reports, condensed: 'ok offset 0..4' or 'N x error'."""
    try:
        reports = json.loads(stdout.strip().splitlines()[-1])["reports"]
    except (ValueError, IndexError, KeyError):
        return stdout.strip()[-600:]
    oks = [r for r in reports if r.startswith("ok offset ")]
    parts = []
    if oks:
        parts.append(f"{len(oks)} delivered (offsets {oks[0][10:]}..{oks[-1][10:]})")
    for r in dict.fromkeys(r for r in reports if r not in oks):
        parts.append(f"{reports.count(r)} x {r}")
    return "; ".join(parts) or "no delivery reports"


def pkg_version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def cmd_all(args):
    os.makedirs(args.fixtures_dir, exist_ok=True)
    index_path = os.path.join(args.proxy_dir, "index.jsonl")
    manifest = {"generated_by": "scripts/capture-fixtures.sh", "topic": args.topic,
                "partition": 0, "fixtures": [], "failed": []}
    names = args.only or list(CAPTURES)
    for name in names:
        client, codec, legacy, idem = CAPTURES[name]
        cid = f"klamm-{name}"
        if client == "confluent-kafka" and legacy == "0.10.0":
            cid += PRODUCE_V2_MARK
        cmd = [sys.executable, os.path.abspath(__file__), "run-one", name,
               "--bootstrap", args.bootstrap, "--topic", args.topic, "--client-id", cid]
        t0 = time.time()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            outcome = f"exit {p.returncode}: {summarise(p.stdout)}"
            if p.returncode:
                outcome += " | stderr: " + p.stderr.strip()[-600:]
        except subprocess.TimeoutExpired:
            outcome = f"timed out after {RUN_TIMEOUT_S}s"
        dt = time.time() - t0
        frames = []
        if os.path.exists(index_path):
            with open(index_path, encoding="utf-8") as f:
                frames = [e for e in map(json.loads, f) if e["client_id"] == cid]
        print(f"{name}: {len(frames)} Produce frame(s) in {dt:.1f}s; client: {outcome}",
              file=sys.stderr, flush=True)
        if not frames:
            manifest["failed"].append({"name": name, "client": client, "codec": codec,
                                       "reason": "no Produce request captured",
                                       "client_outcome": outcome})
            continue
        with open(os.path.join(args.proxy_dir, frames[0]["file"]), "rb") as f:
            frame = f.read()
        records = records_for(client, legacy)
        try:
            summary = analyse(frame, codec, records)
        except Exception as e:  # noqa: BLE001
            reason = f"captured frame failed the check: {e}"
            if codec != "none":
                try:
                    s = analyse(frame, "none", records)
                    reason = (f"{client} sent the records uncompressed (magic {s['magic']}, "
                              f"Produce v{s['api_version']}) although {codec} was asked for: "
                              f"it uses {codec} only with magic 2; duplicate of the 'none' "
                              f"capture, not kept")
                except Exception:  # noqa: BLE001
                    pass
            manifest["failed"].append({"name": name, "client": client, "codec": codec,
                                       "reason": reason, "client_outcome": outcome})
            continue
        fname = f"{name}.bin"
        with open(os.path.join(args.fixtures_dir, fname), "wb") as f:
            f.write(frame)
        manifest["fixtures"].append(entry(fname, name, frame, summary, client, codec, legacy,
                                          idem, records, outcome, len(frames)))
    manifest["fixtures"].sort(key=lambda e: e["file"])
    with open(os.path.join(args.fixtures_dir, "MANIFEST.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"{len(manifest['fixtures'])} fixtures written, {len(manifest['failed'])} failed",
          file=sys.stderr)


def entry(fname, name, frame, s, client, codec, legacy, idem, records, outcome, nframes):
    e = {
        "file": fname,
        "client": client,
        "client_version": pkg_version(client),
        "librdkafka_version": None,
        "codec": codec,
        "codec_id": CODEC_IDS[codec],
        "produce_api_version": s["api_version"],
        "magic": s["magic"],
        "idempotent": idem,
        "legacy_broker_version": legacy,
        "topic": s["topic"],
        "partition": s["partition"],
        "client_id": s["client_id"],
        "transactional_id": s["transactional_id"],
        "acks": s["acks"],
        "frame_size": len(frame),
        "sha256": hashlib.sha256(frame).hexdigest(),
        "records_offset": s["records_offset"],
        "records_size": s["records_size"],
        "attributes": s["attributes"],
        "records": records,
        "decoded": {k: v for k, v in s.items() if k not in (
            "api_version", "client_id", "transactional_id", "acks", "topic", "partition",
            "magic", "records_offset", "records_size", "attributes")},
        "produce_frames_seen": nframes,
        "broker_outcome": "client " + outcome,
    }
    if client == "confluent-kafka":
        import confluent_kafka
        e["librdkafka_version"] = confluent_kafka.libversion()[0]
    else:
        del e["librdkafka_version"]
    if s["magic"] != 2:
        e["note"] = ("legacy message set: no headers; "
                     + ("no timestamps on the wire (magic 0)" if s["magic"] == 0
                        else "timestamps carried per message (magic 1)")
                     + "; tansu 0.6.0 does not accept legacy message sets (see broker_outcome)")
    if legacy == "0.10.0" and client == "confluent-kafka":
        e["note"] += ("; librdkafka was steered to magic 1 by the proxy advertising "
                      "Produce max v2 to it (--cap-produce-version)")
    return e


def cmd_verify(args):
    with open(os.path.join(args.fixtures_dir, "MANIFEST.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    bad = 0
    for e in manifest["fixtures"]:
        with open(os.path.join(args.fixtures_dir, e["file"]), "rb") as f:
            frame = f.read()
        try:
            if hashlib.sha256(frame).hexdigest() != e["sha256"]:
                raise ValueError("sha256 differs from MANIFEST")
            s = analyse(frame, e["codec"], e["records"])
            for k, mk in (("api_version", "produce_api_version"), ("magic", "magic"),
                          ("topic", "topic"), ("partition", "partition"),
                          ("records_offset", "records_offset")):
                if s[k] != e[mk]:
                    raise ValueError(f"{k}={s[k]} but MANIFEST says {e[mk]}")
            print(f"ok   {e['file']:36} {e['client']:16} {e['codec']:6} magic {e['magic']} "
                  f"Produce v{e['produce_api_version']:<2} attrs 0x{e['attributes']:02x} "
                  f"{len(frame)} B")
        except Exception as ex:  # noqa: BLE001
            bad += 1
            print(f"FAIL {e['file']}: {ex}")
    print(f"{len(manifest['fixtures']) - bad} passed, {bad} failed")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all")
    a.add_argument("--bootstrap", required=True)
    a.add_argument("--topic", required=True)
    a.add_argument("--proxy-dir", required=True)
    a.add_argument("--fixtures-dir", required=True)
    a.add_argument("--only", nargs="*", choices=list(CAPTURES))
    r = sub.add_parser("run-one")
    r.add_argument("name", choices=list(CAPTURES))
    r.add_argument("--bootstrap", required=True)
    r.add_argument("--topic", required=True)
    r.add_argument("--client-id", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--fixtures-dir", required=True)
    args = ap.parse_args()
    if args.cmd == "all":
        cmd_all(args)
    elif args.cmd == "run-one":
        cmd_run_one(args)
    else:
        sys.exit(cmd_verify(args))


if __name__ == "__main__":
    main()
