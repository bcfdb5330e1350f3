#!/usr/bin/env python3
"""A SASL front for tansu, for klamm's SASL integration tests.

tansu 0.6.0 cannot complete a SASL login (no PLAIN; SCRAM always ends
e=unknown-user), so this proxy listens on 127.0.0.1, answers SaslHandshake
(API key 17) and SaslAuthenticate (36) itself, and forwards every other
frame byte-for-byte to tansu (and tansu's answers back). Like a Kafka
broker with SASL it:

  * refuses (closes the connection on) any request other than ApiVersions,
    SaslHandshake and SaslAuthenticate before a successful login;
  * reports a session lifetime (KIP-368) for some users and closes the
    connection if a request other than a re-authentication arrives after
    the session expired;
  * answers a failed login with SASL_AUTHENTICATION_FAILED (58) and a
    message, an unknown mechanism with UNSUPPORTED_SASL_MECHANISM (33) and
    the enabled list.

Mechanisms: PLAIN (checked against USERS), SCRAM-SHA-256 and SCRAM-SHA-512
(the server side is the `scramp` package, an implementation independent of
klamm's, with 4096 iterations), OAUTHBEARER (TOKENS; a bad token gets the
RFC 7628 JSON error, then failure after the client's %x01).

    sasl-front.py --upstream 127.0.0.1:9092 --port 19092 [--scram-only-port 19093]

It prints the address it listens on as its first stdout line. With
--scram-only-port it also listens there with only SCRAM-SHA-512 enabled (for
the unsupported-mechanism path) and prints that address as a second line.

Runs until SIGTERM/SIGINT. Standard library + scramp only.
"""

import argparse
import asyncio
import signal
import struct
import sys
import time

from scramp import ScramException, ScramMechanism

# username -> (password, session lifetime in ms; 0 = none)
USERS = {
    "alice": ("alice-secret", 0),
    # Exercises SCRAM's saslname escaping (=2C, =3D) and odd passwords.
    "we=ird,user": ("p=ss,wörd with spaces", 0),
    "reauth": ("reauth-secret", 1500),
}
# OAUTHBEARER token -> session lifetime in ms
TOKENS = {"klamm-good-token": 0}
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
SCRAM = {name: ScramMechanism(name) for name in ("SCRAM-SHA-256", "SCRAM-SHA-512")}
SCRAM_INFO = {
    name: {u: m.make_auth_info(pw, iteration_count=4096) for u, (pw, _) in USERS.items()}
    for name, m in SCRAM.items()
}

API_SASL_HANDSHAKE = 17
API_API_VERSIONS = 18
API_SASL_AUTHENTICATE = 36
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58


def log(*args):
    print("sasl-front:", *args, file=sys.stderr, flush=True)


# ---- wire helpers -----------------------------------------------------------

def read_uvarint(buf, at):
    shift = value = 0
    while True:
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, at
        shift += 7


def uvarint(n):
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def skip_tagged(buf, at):
    count, at = read_uvarint(buf, at)
    for _ in range(count):
        _, at = read_uvarint(buf, at)
        size, at = read_uvarint(buf, at)
        at += size
    return at


def parse_header(frame):
    """(api_key, version, correlation_id, offset of the body)."""
    api, version, corr = struct.unpack_from(">hhi", frame, 0)
    (cid_len,) = struct.unpack_from(">h", frame, 8)
    at = 10 + max(cid_len, 0)
    flexible = api == API_SASL_AUTHENTICATE and version >= 2
    if flexible:
        at = skip_tagged(frame, at)
    return api, version, corr, at


def frame_of(corr, body, flexible_header=False):
    header = struct.pack(">i", corr) + (b"\x00" if flexible_header else b"")
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def handshake_response(corr, error, mechanisms):
    body = struct.pack(">hi", error, len(mechanisms))
    for m in mechanisms:
        b = m.encode()
        body += struct.pack(">h", len(b)) + b
    return frame_of(corr, body)


def authenticate_response(corr, version, error=0, message=None, auth=b"", lifetime_ms=0):
    if version >= 2:
        body = struct.pack(">h", error)
        if message is None:
            body += b"\x00"
        else:
            m = message.encode()
            body += uvarint(len(m) + 1) + m
        body += uvarint(len(auth) + 1) + auth
        body += struct.pack(">q", lifetime_ms) + b"\x00"
        return frame_of(corr, body, flexible_header=True)
    body = struct.pack(">h", error)
    if message is None:
        body += struct.pack(">h", -1)
    else:
        m = message.encode()
        body += struct.pack(">h", len(m)) + m
    body += struct.pack(">i", len(auth)) + auth
    if version >= 1:
        body += struct.pack(">q", lifetime_ms)
    return frame_of(corr, body)


async def read_frame(reader):
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    if size < 0 or size > 100 * 1024 * 1024:
        raise ValueError(f"bad frame size {size}")
    return await reader.readexactly(size)


# ---- one client connection ---------------------------------------------------

class Session:
    def __init__(self, peer, mechanisms):
        self.peer = peer
        self.mechanisms = mechanisms
        self.mechanism = None  # chosen by the last SaslHandshake
        self.scram = None  # scramp server of the exchange in progress
        self.oauth_failed = False
        self.authenticated = False
        self.expires_at = None  # monotonic seconds, or None

    def fail(self, corr, version, why):
        log(f"{self.peer}: {self.mechanism} login failed: {why}")
        self.mechanism = None
        self.scram = None
        return authenticate_response(
            corr, version, SASL_AUTHENTICATION_FAILED,
            f"Authentication failed during authentication due to invalid credentials "
            f"with SASL mechanism {self.mechanism_name}",
        )

    def succeed(self, corr, version, lifetime_ms, auth=b""):
        log(f"{self.peer}: {self.mechanism} login ok (lifetime {lifetime_ms} ms)")
        self.authenticated = True
        self.expires_at = time.monotonic() + lifetime_ms / 1000 if lifetime_ms else None
        self.mechanism = None
        self.scram = None
        return authenticate_response(corr, version, auth=auth, lifetime_ms=lifetime_ms)

    def handshake(self, frame, at, corr):
        (n,) = struct.unpack_from(">h", frame, at)
        mech = frame[at + 2 : at + 2 + n].decode()
        if mech not in self.mechanisms:
            log(f"{self.peer}: unsupported mechanism {mech}")
            return handshake_response(corr, UNSUPPORTED_SASL_MECHANISM, self.mechanisms)
        self.mechanism = mech
        self.mechanism_name = mech
        self.scram = None
        self.oauth_failed = False
        return handshake_response(corr, 0, self.mechanisms)

    def authenticate(self, frame, at, corr, version):
        if version >= 2:
            n, at = read_uvarint(frame, at)
            data = bytes(frame[at : at + n - 1])
        else:
            (n,) = struct.unpack_from(">i", frame, at)
            data = bytes(frame[at + 4 : at + 4 + n])
        if self.mechanism is None:
            return authenticate_response(
                corr, version, ILLEGAL_SASL_STATE, "SaslAuthenticate without SaslHandshake"
            )
        if self.mechanism == "PLAIN":
            parts = data.split(b"\x00")
            if len(parts) != 3:
                return self.fail(corr, version, "malformed PLAIN message")
            user, password = parts[1].decode(errors="replace"), parts[2].decode(errors="replace")
            entry = USERS.get(user)
            if entry is None or entry[0] != password:
                return self.fail(corr, version, f"bad PLAIN credentials for {user!r}")
            return self.succeed(corr, version, entry[1])
        if self.mechanism.startswith("SCRAM-"):
            return self.scram_round(data, corr, version)
        return self.oauth_round(data, corr, version)

    def scram_round(self, data, corr, version):
        text = data.decode(errors="replace")
        if self.scram is None:
            infos = SCRAM_INFO[self.mechanism]

            def auth_fn(saslname):
                user = saslname.replace("=2C", ",").replace("=3D", "=")
                if user not in infos:
                    raise ScramException(f"unknown user {user!r}", "unknown-user")
                self.scram_user = user
                return infos[user]

            self.scram = SCRAM[self.mechanism].make_server(auth_fn)
            try:
                self.scram.set_client_first(text)
                server_first = self.scram.get_server_first()
            except ScramException as e:
                return self.fail(corr, version, str(e))
            return authenticate_response(corr, version, auth=server_first.encode())
        try:
            self.scram.set_client_final(text)
            server_final = self.scram.get_server_final()
        except ScramException as e:
            return self.fail(corr, version, str(e))
        return self.succeed(corr, version, USERS[self.scram_user][1], server_final.encode())

    def oauth_round(self, data, corr, version):
        if self.oauth_failed:
            # The client's %x01 after our JSON error: end the exchange.
            return self.fail(corr, version, "invalid token")
        token = None
        if data.startswith(b"n,,\x01"):
            for kv in data[4:].split(b"\x01"):
                if kv.startswith(b"auth=Bearer "):
                    token = kv[len(b"auth=Bearer ") :].decode(errors="replace")
        if token in TOKENS:
            return self.succeed(corr, version, TOKENS[token])
        self.oauth_failed = True
        log(f"{self.peer}: OAUTHBEARER token rejected")
        return authenticate_response(
            corr, version, auth=b'{"status":"invalid_token","scope":"kafka"}'
        )


async def pump_upstream(up_reader, writer):
    try:
        while True:
            frame = await read_frame(up_reader)
            writer.write(struct.pack(">i", len(frame)) + frame)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def handle(reader, writer, upstream, mechanisms):
    peer = "%s:%d" % writer.get_extra_info("peername")[:2]
    host, port = upstream.rsplit(":", 1)
    try:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
    except OSError as e:
        log(f"{peer}: cannot reach upstream {upstream}: {e}")
        writer.close()
        return
    pump = asyncio.create_task(pump_upstream(up_reader, writer))
    s = Session(peer, mechanisms)
    try:
        while True:
            frame = await read_frame(reader)
            api, version, corr, at = parse_header(frame)
            if api == API_SASL_HANDSHAKE:
                writer.write(s.handshake(frame, at, corr))
            elif api == API_SASL_AUTHENTICATE:
                writer.write(s.authenticate(frame, at, corr, version))
            elif api == API_API_VERSIONS or (
                s.authenticated and (s.expires_at is None or time.monotonic() < s.expires_at)
            ):
                up_writer.write(struct.pack(">i", len(frame)) + frame)
                await up_writer.drain()
            else:
                why = "session expired" if s.authenticated else "not authenticated"
                log(f"{peer}: api {api} refused ({why}); closing")
                break
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, struct.error):
        pass
    finally:
        pump.cancel()
        up_writer.close()
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="tansu's HOST:PORT")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any)")
    ap.add_argument("--scram-only-port", type=int, help="also listen here, SCRAM-SHA-512 only")
    args = ap.parse_args()
    listeners = [(args.port, MECHANISMS)]
    if args.scram_only_port is not None:
        listeners.append((args.scram_only_port, ["SCRAM-SHA-512"]))
    servers = []
    for port, mechs in listeners:
        server = await asyncio.start_server(
            lambda r, w, mechs=mechs: handle(r, w, args.upstream, mechs), "127.0.0.1", port
        )
        port = server.sockets[0].getsockname()[1]
        log(f"listening on 127.0.0.1:{port} ({', '.join(mechs)}), forwarding to {args.upstream}")
        print(f"127.0.0.1:{port}", flush=True)
        servers.append(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
