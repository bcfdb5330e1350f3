#!/usr/bin/env python3
"""klamm's driver for librdkafka's built-in mock Kafka cluster (through ctypes).

    mock_cluster_driver.py --lib PATH [--brokers N] [--time-limit SECONDS]

Creates a mock cluster of N brokers (ids 1..N) on 127.0.0.1 ephemeral ports,
opens a control port on 127.0.0.1 (ephemeral), and prints two lines on stdout:

    bootstrap=127.0.0.1:P1,127.0.0.1:P2,...
    ctrl=127.0.0.1:CTRL

Then it serves line commands on the control port until SIGTERM/SIGINT or
the time limit (default 3600 s). Each connection may send any number of
newline-terminated commands; each is answered with one line, `ok [...]` or
`err REASON`:

    ping                               liveness check
    version                            the librdkafka version
    topic NAME PARTITIONS REPLICATION  create a topic (there is no CreateTopics)
    leader TOPIC PARTITION BROKER      move a partition's leader (-1: none)
    errors APIKEY CODE [CODE...]       the next requests of APIKEY (any broker)
                                       fail with these codes, in order; a code is
                                       a number or a librdkafka name, e.g.
                                       NOT_LEADER_FOR_PARTITION or _TRANSPORT
    clear APIKEY                       drop queued errors for APIKEY
    down BROKER | up BROKER            take a broker's listener down / up
    rtt BROKER MS                      delay a broker's responses
    topic_error TOPIC CODE             topic-level error in Metadata answers
    coordinator group|txn KEY BROKER   pin a group / transactional id coordinator

Only the C functions of librdkafka's public mock API (rdkafka_mock.h) are used.
"""

import argparse
import ctypes as C
import os
import signal
import socket
import socketserver
import sys
import threading
import time


def load(path):
    lib = C.CDLL(path)
    vp, cp, i16, i32 = C.c_void_p, C.c_char_p, C.c_int16, C.c_int32
    signatures = {
        "rd_kafka_version_str": ([], cp),
        "rd_kafka_conf_new": ([], vp),
        "rd_kafka_conf_set": ([vp, cp, cp, cp, C.c_size_t], C.c_int),
        "rd_kafka_new": ([C.c_int, vp, cp, C.c_size_t], vp),
        "rd_kafka_destroy": ([vp], None),
        "rd_kafka_err2name": ([C.c_int], cp),
        "rd_kafka_mock_cluster_new": ([vp, C.c_int], vp),
        "rd_kafka_mock_cluster_destroy": ([vp], None),
        "rd_kafka_mock_cluster_bootstraps": ([vp], cp),
        "rd_kafka_mock_topic_create": ([vp, cp, C.c_int, C.c_int], C.c_int),
        "rd_kafka_mock_topic_set_error": ([vp, cp, C.c_int], None),
        "rd_kafka_mock_partition_set_leader": ([vp, cp, i32, i32], C.c_int),
        "rd_kafka_mock_broker_set_down": ([vp, i32], C.c_int),
        "rd_kafka_mock_broker_set_up": ([vp, i32], C.c_int),
        "rd_kafka_mock_broker_set_rtt": ([vp, i32, C.c_int], C.c_int),
        "rd_kafka_mock_push_request_errors_array": (
            [vp, i16, C.c_size_t, C.POINTER(C.c_int)],
            None,
        ),
        "rd_kafka_mock_clear_request_errors": ([vp, i16], None),
        "rd_kafka_mock_coordinator_set": ([vp, cp, cp, i32], C.c_int),
    }
    for name, (args, res) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


class Mock:
    def __init__(self, lib, brokers):
        self.lib = lib
        self.lock = threading.Lock()
        self.version = lib.rd_kafka_version_str().decode()
        errstr = C.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        for key, value in (("client.id", "klamm-mock-driver"), ("log_level", "3")):
            if lib.rd_kafka_conf_set(conf, key.encode(), value.encode(), errstr, 512) != 0:
                raise SystemExit(f"conf {key}: {errstr.value.decode()}")
        # A producer handle owns the mock cluster; it has no bootstrap servers
        # and so never connects anywhere itself. rd_kafka_new owns conf now.
        self.rk = lib.rd_kafka_new(0, conf, errstr, 512)
        if not self.rk:
            raise SystemExit("rd_kafka_new: " + errstr.value.decode())
        self.mc = lib.rd_kafka_mock_cluster_new(self.rk, brokers)
        if not self.mc:
            raise SystemExit("rd_kafka_mock_cluster_new failed")
        self.bootstraps = lib.rd_kafka_mock_cluster_bootstraps(self.mc).decode()
        self.names = None

    def close(self):
        self.lib.rd_kafka_mock_cluster_destroy(self.mc)
        self.lib.rd_kafka_destroy(self.rk)

    def code(self, word):
        try:
            return int(word)
        except ValueError:
            pass
        if self.names is None:
            self.names = {}
            for c in list(range(-200, -99)) + list(range(0, 140)):
                n = self.lib.rd_kafka_err2name(c)
                if n:
                    self.names[n.decode()] = c
        key = word.upper()
        if key not in self.names and "_" + key in self.names:
            key = "_" + key
        if key not in self.names:
            raise ValueError(f"unknown error code {word}")
        return self.names[key]

    def run(self, line):
        """One command; returns the text after `ok`, raises on failure."""
        words = line.split()
        if not words:
            raise ValueError("empty command")
        op, a = words[0], words[1:]
        L, mc = self.lib, self.mc

        def need(n, usage):
            if len(a) < n:
                raise ValueError(f"usage: {usage}")

        with self.lock:
            if op == "ping":
                return ""
            if op == "version":
                return self.version
            if op == "topic":
                need(3, "topic NAME PARTITIONS REPLICATION")
                e = L.rd_kafka_mock_topic_create(mc, a[0].encode(), int(a[1]), int(a[2]))
            elif op == "leader":
                need(3, "leader TOPIC PARTITION BROKER")
                e = L.rd_kafka_mock_partition_set_leader(mc, a[0].encode(), int(a[1]), int(a[2]))
            elif op == "errors":
                need(2, "errors APIKEY CODE [CODE...]")
                codes = [self.code(w) for c in a[1:] for w in c.split(",") if w]
                arr = (C.c_int * len(codes))(*codes)
                L.rd_kafka_mock_push_request_errors_array(mc, int(a[0]), len(codes), arr)
                e = 0
            elif op == "clear":
                need(1, "clear APIKEY")
                L.rd_kafka_mock_clear_request_errors(mc, int(a[0]))
                e = 0
            elif op == "down":
                need(1, "down BROKER")
                e = L.rd_kafka_mock_broker_set_down(mc, int(a[0]))
            elif op == "up":
                need(1, "up BROKER")
                e = L.rd_kafka_mock_broker_set_up(mc, int(a[0]))
            elif op == "rtt":
                need(2, "rtt BROKER MS")
                e = L.rd_kafka_mock_broker_set_rtt(mc, int(a[0]), int(a[1]))
            elif op == "topic_error":
                need(2, "topic_error TOPIC CODE")
                L.rd_kafka_mock_topic_set_error(mc, a[0].encode(), self.code(a[1]))
                e = 0
            elif op == "coordinator":
                need(3, "coordinator group|txn KEY BROKER")
                kind = {"group": "group", "txn": "transaction", "transaction": "transaction"}.get(a[0])
                if kind is None:
                    raise ValueError("coordinator type must be group or txn")
                e = L.rd_kafka_mock_coordinator_set(mc, kind.encode(), a[1].encode(), int(a[2]))
            else:
                raise ValueError(f"unknown command {op}")
        if e:
            raise RuntimeError(L.rd_kafka_err2name(e).decode())
        return ""


def serve(mock, time_limit):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for raw in self.rfile:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                try:
                    answer = ("ok " + mock.run(line)).rstrip()
                except Exception as ex:  # a bad command never stops the driver
                    answer = f"err {ex}".replace("\n", " ")
                self.wfile.write(answer.encode() + b"\n")
                self.wfile.flush()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    host, port = server.server_address
    print(f"bootstrap={mock.bootstraps}", flush=True)
    print(f"ctrl={host}:{port}", flush=True)
    print(
        f"mock cluster up: librdkafka {mock.version}, pid {os.getpid()}, "
        f"brokers {mock.bootstraps}, control {host}:{port}",
        file=sys.stderr,
        flush=True,
    )

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    why = {"reason": "time limit"}

    def on_signal(signum, _frame):
        why["reason"] = f"signal {signum}"
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    deadline = time.monotonic() + time_limit
    while not stop.is_set() and time.monotonic() < deadline:
        stop.wait(0.5)
    print(f"mock cluster stopping ({why['reason']})", file=sys.stderr, flush=True)
    server.shutdown()
    server.server_close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", required=True, help="path of librdkafka.so (2.16 from confluent-kafka)")
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=3600.0)
    args = ap.parse_args()
    if args.brokers < 1:
        raise SystemExit("--brokers must be at least 1")
    mock = Mock(load(args.lib), args.brokers)
    try:
        serve(mock, args.time_limit)
    finally:
        mock.close()


if __name__ == "__main__":
    main()
