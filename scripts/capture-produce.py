#!/usr/bin/env python3
"""Recording TCP proxy for Kafka Produce requests (stdlib only).

    capture-produce.py --upstream 127.0.0.1:9092 --out-dir DIR [--listen 127.0.0.1:0]

Listens on 127.0.0.1 (port 0 = pick a free one) and forwards every connection to
the upstream broker, bytes unchanged in both directions (relayed frame by frame:
int32 size prefix + body). Every request frame whose api_key
(the int16 right after the size prefix) is 0 (Produce) is written, complete with
its 4-byte size prefix, to

    DIR/NNNN-<client_id>-v<api_version>.bin

*before* the frame is forwarded (so it is on disk even when the broker then drops
the connection), and one JSON line describing it is appended to DIR/index.jsonl:
{"seq", "file", "client_id", "api_version", "correlation_id", "size", "conn"}.

One exception, only when asked: with --cap-produce-version SUBSTR:N, on every
connection whose ApiVersions request carries a client_id containing SUBSTR, the
broker's ApiVersions response is patched in place (same length) so that it
advertises Produce max version N. This is how a librdkafka >= 2 client is made to
write legacy MessageSets (N=2 -> magic 1), since its broker.version.fallback only
works below 0.10. Requests are never changed.

The first line on stdout is "listening on 127.0.0.1:PORT". Stop it with SIGTERM or
SIGINT. Only loopback addresses are accepted for --listen and --upstream.
"""

import argparse
import asyncio
import ipaddress
import json
import os
import re
import signal
import struct
import sys

PRODUCE = 0
API_VERSIONS = 18
MAX_FRAME = 64 * 1024 * 1024


def parse_addr(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"{text}: only loopback addresses are allowed")
    return host, int(port)


def parse_cap(text):
    sub, _, n = text.rpartition(":")
    if not sub:
        raise argparse.ArgumentTypeError("expected SUBSTR:N")
    return sub, int(n)


class Recorder:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.seq = 0
        self.conns = 0
        os.makedirs(out_dir, exist_ok=True)
        self.index = open(os.path.join(out_dir, "index.jsonl"), "a", encoding="utf-8")

    def record(self, conn, frame):
        # Request header v1/v2: api_key int16, api_version int16, correlation_id
        # int32, client_id nullable int16-length string (not compact in v2 either).
        api_key, api_version, correlation_id = struct.unpack_from(">hhi", frame, 4)
        client_id = client_id_of(frame)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", client_id or "null")[:80]
        name = f"{self.seq:04d}-{safe}-v{api_version}.bin"
        with open(os.path.join(self.out_dir, name), "wb") as f:
            f.write(frame)
            f.flush()
            os.fsync(f.fileno())
        entry = {
            "seq": self.seq, "file": name, "client_id": client_id,
            "api_version": api_version, "correlation_id": correlation_id,
            "size": len(frame), "conn": conn,
        }
        self.index.write(json.dumps(entry) + "\n")
        self.index.flush()
        self.seq += 1
        print(f"captured Produce v{api_version} from {client_id!r}: {name} "
              f"({len(frame)} bytes)", file=sys.stderr, flush=True)


def client_id_of(frame):
    if len(frame) < 14:
        return None
    (n,) = struct.unpack_from(">h", frame, 12)
    return frame[14:14 + n].decode("utf-8", "replace") if n >= 0 else None


async def pump_requests(conn, rec, reader, writer, state, cap=None):
    """Client -> broker: forward whole frames, recording Produce requests."""
    try:
        while True:
            try:
                prefix = await reader.readexactly(4)
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    writer.write(e.partial)
                break
            (size,) = struct.unpack(">i", prefix)
            if size < 0 or size > MAX_FRAME:
                # Not Kafka framing: stop parsing, just relay the rest.
                writer.write(prefix)
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                break
            try:
                body = await reader.readexactly(size)
            except asyncio.IncompleteReadError as e:
                writer.write(prefix + e.partial)
                break
            frame = prefix + body
            api_key = struct.unpack_from(">h", body, 0)[0] if size >= 8 else None
            if api_key == PRODUCE:
                rec.record(conn, frame)
            elif api_key == API_VERSIONS and cap and cap[0] in (client_id_of(frame) or ""):
                # (correlation id, request version) of the response to patch
                state["cap"] = (struct.unpack_from(">i", body, 4)[0],
                                struct.unpack_from(">h", body, 2)[0], cap[1])
            writer.write(frame)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        await close(writer)


def cap_produce(frame, req_version, max_version):
    """Patches the Produce (api_key 0) max version in an ApiVersions response."""
    out = bytearray(frame)
    pos = 4 + 4 + 2  # size, correlation id (header v0 always), error_code
    if req_version >= 3:
        n, shift = 0, 0
        while True:
            b = out[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        n -= 1
    else:
        (n,) = struct.unpack_from(">i", out, pos)
        pos += 4
    for _ in range(n):
        key, lo, hi = struct.unpack_from(">hhh", out, pos)
        if key == PRODUCE:
            new = max(lo, min(hi, max_version))
            struct.pack_into(">h", out, pos + 4, new)
            return bytes(out), (hi, new)
        pos += 6
        if req_version >= 3:
            if out[pos] != 0:
                raise ValueError("tagged fields inside ApiVersions entries not handled")
            pos += 1
    return frame, None


async def pump_responses(conn, reader, writer, state):
    """Broker -> client: frame-wise relay (patching one response if asked)."""
    try:
        while True:
            try:
                prefix = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">i", prefix)[0])
            except asyncio.IncompleteReadError as e:
                writer.write(e.partial)
                break
            data = prefix + body
            if state.get("cap"):
                corr, req_version, max_version = state["cap"]
                if struct.unpack_from(">i", body, 0)[0] == corr:
                    data, change = cap_produce(data, req_version, max_version)
                    state["cap"] = None
                    print(f"conn {conn}: ApiVersions response: Produce max version "
                          f"{change[0]} -> {change[1]}" if change else
                          f"conn {conn}: ApiVersions response lists no Produce",
                          file=sys.stderr, flush=True)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        await close(writer)


async def close(writer):
    try:
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        pass
    try:
        writer.close()
        await writer.wait_closed()
    except (OSError, RuntimeError):
        pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=parse_addr, default=("127.0.0.1", 0))
    ap.add_argument("--upstream", type=parse_addr, required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--cap-produce-version", metavar="SUBSTR:N", type=parse_cap,
                    help="advertise Produce max version N to clients whose client_id "
                         "contains SUBSTR")
    args = ap.parse_args()
    rec = Recorder(args.out_dir)
    up_host, up_port = args.upstream

    async def handle(c_reader, c_writer):
        rec.conns += 1
        conn = rec.conns
        try:
            u_reader, u_writer = await asyncio.open_connection(up_host, up_port)
        except OSError as e:
            print(f"conn {conn}: upstream connect failed: {e}", file=sys.stderr, flush=True)
            await close(c_writer)
            return
        state = {}
        await asyncio.gather(
            pump_requests(conn, rec, c_reader, u_writer, state, args.cap_produce_version),
            pump_responses(conn, u_reader, c_writer, state),
        )

    server = await asyncio.start_server(handle, args.listen[0], args.listen[1])
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    rec.index.close()


if __name__ == "__main__":
    asyncio.run(main())
