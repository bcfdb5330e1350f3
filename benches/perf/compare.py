#!/usr/bin/env python3
"""Runs klamm and its peers through the same workloads, back to back, and
tables the medians. scripts/perf-compare builds the tools and starts the
broker, then calls this; see `compare.py --help` for the knobs.

Every tool speaks the perf protocol of benches/peers/PERF.md. For each case
(record size, codec, partition count, payload kind) and each run, every
client produces the N records to a fresh topic and then reads the case's
source topic (N records written once by klamm before the runs) from offset
0; the clients' order alternates from run to run. A run counts only when
the client reports exactly N records and the broker agrees: after a produce
run the topic's end offsets must add up to N (ListOffsets, asked through
klamm's CLI; with --count-by reading, klamm's tool reads the topic back to
the high watermark and both the count and the values' checksum must match),
and a consume run must give the checksum the payload file predicts. Each process is measured from outside too (wait4: CPU including
start-up, peak RSS).
"""

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import zlib

CLIENTS = ["klamm", "rdkafka", "sarama", "franz-go", "java"]


def log(msg):
    print(f"perf-compare: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- payloads

WORDS = ("page_view click add_to_cart checkout search login logout refund "
         "impression scroll share subscribe").split()
PATHS = ("/ /products /products/{} /cart /checkout /search?q={} /account "
         "/orders/{} /help /blog/{}").split()
COUNTRIES = "DE FR NL SE PL ES IT GB US CA BR IN JP AU".split()


def json_event(rng):
    """One JSON-like event: repeated field names and small vocabularies
    (which compress well) with ids, times and a random session (which do
    not), like the logs and events people send through Kafka."""
    path = rng.choice(PATHS).format(rng.randrange(100000))
    return (
        '{"event":"%s","user_id":%d,"session":"%032x","ts":%d,"path":"%s",'
        '"country":"%s","latency_ms":%d,"score":%.4f,"ok":%s}'
        % (rng.choice(WORDS), rng.randrange(10**7), rng.getrandbits(128),
           1700000000000 + rng.randrange(10**9), path, rng.choice(COUNTRIES),
           rng.randrange(2000), rng.random(), rng.choice(["true", "false"]))
    )


def make_payloads(kind, size, count, seed):
    """`count` payloads of exactly `size` bytes from a fixed seed."""
    rng = random.Random(f"{seed}-{kind}-{size}")
    out = []
    for _ in range(count):
        if kind == "repeat":
            out.append(b"x" * size)
            continue
        text = ""
        while len(text) < size:
            text += json_event(rng) + "\n"
        out.append(text[:size].encode())
    return out


def checksum(v):
    return 131 * len(v) + 7 * v[0] + v[-1] if v else 0


# ---------------------------------------------------------------- running


class Tools:
    def __init__(self, env):
        self.bin = {
            "klamm": [env["KLAMM_PERF"], "--threads", "2"],
            "rdkafka": [env["RDKAFKA_PERF"]],
            "sarama": [env["GO_PERF"], "--client", "sarama"],
            "franz-go": [env["GO_PERF"], "--client", "franz-go"],
            "java": [env["JAVA_PERF"]],
        }
        self.cli = env["KLAMM_CLI"]

    def klamm_cli(self, brokers, *args, check=True):
        r = subprocess.run([self.cli, "-b", brokers, *args], capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"klamm {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout


def topic_names(topic, topics):
    """The topics of a case: the topic itself, or TOPIC-0 ... TOPIC-{T-1}
    (the perf protocol's --topics)."""
    return [topic] if topics == 1 else [f"{topic}-{k}" for k in range(topics)]


def end_offsets(tools, brokers, topic, topics=1):
    """The records stored in the case's topics and how many partitions
    answered."""
    queries = []
    for t in topic_names(topic, topics):
        queries += ["-t", f"{t}:-1"]
    out = tools.klamm_cli(brokers, "--json", "offsets", *queries)
    rows = json.loads(out)
    bad = [r for r in rows if "error" in r]
    if bad:
        raise RuntimeError(f"ListOffsets of {topic}: {bad[0]}")
    return sum(r["offset"] for r in rows), len(rows)


def stored_records(args, tools, env, case, topic, logf):
    """What a produce run left in its topics: (records, checksum of their
    values or None). With --count-by list-offsets, the end offsets of a
    fresh topic add up to its records; with --count-by reading, klamm's
    tool reads every partition up to the high watermark of its Fetch
    answers (--mode count), for brokers whose ListOffsets LATEST is not
    the end of the log (tansu 0.6.0)."""
    size, _, parts, _, topics = case
    if args.count_by == "list-offsets":
        return end_offsets(tools, env["BROKERS"], topic, topics)[0], None
    cmd = tools.bin["klamm"] + [
        "--brokers", env["BROKERS"], "--topic", topic, "--mode", "count",
        "--partitions", str(parts), "--size", str(size),
        "--payloads", case_payloads(args, case), "--timeout-s", str(args.timeout_s),
    ] + (["--topics", str(topics)] if topics > 1 else [])
    perf, code, _ = run_tool(cmd, args.timeout_s + 60, logf)
    if code != 0 or perf is None:
        raise RuntimeError(f"counting the records of {topic} failed (exit status {code})")
    return perf["records"], perf["checksum"]


def proc_cpu_ticks(pid):
    """utime + stime of a process in clock ticks (for the broker)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def jit_ticks(pid):
    """CPU ticks of a JVM's JIT compiler threads (named "C1 CompilerThre",
    "C2 CompilerThre" in /proc), 0 for a process that has none."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if "CompilerThre" not in f.read():
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_tool(cmd, timeout_s, logf):
    """Runs one tool; returns (PERF dict or None, exit status, rusage)."""
    logf.write(f"\n$ {' '.join(cmd)}\n")
    logf.flush()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf,
                         start_new_session=True)
    def kill():
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    killer = threading.Timer(timeout_s, kill)
    killer.start()
    out = p.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    logf.write(out)
    perf = None
    for line in out.splitlines():
        if line.startswith("PERF "):
            perf = json.loads(line[5:])
    return perf, p.returncode, ru


def settings(args, codec, partitions, linger_ms):
    common = {
        "acks": args.acks,
        "enable.idempotence": args.idempotence,
        "batch.size": str(args.batch_size),
        "linger.ms": str(linger_ms),
        "compression.type": codec,
        # Every consumer checks each fetched batch's CRC, as the Java
        # client, Sarama (always), franz-go and klamm do by default;
        # librdkafka does not unless told (its check.crcs is false).
        "check.crcs": "true",
    }
    extra = {c: {} for c in CLIENTS}
    # The Java producer keeps every partition's open batch in buffer.memory
    # (32 MiB by default), which 600 partitions of 128 KiB batches overflow.
    extra["java"]["buffer.memory"] = str(max(32 << 20, 2 * partitions * args.batch_size))
    for setting in args.client_setting:
        client, _, kv = setting.partition(":")
        key, _, value = kv.partition("=")
        extra[client][key] = value
    return common, extra


def one_run(args, tools, env, case, client, mode, topic, n, logf, rate=0, linger_ms=None):
    size, codec, parts, kind, topics = case
    linger_ms = args.linger_ms if linger_ms is None else linger_ms
    common, extra = settings(args, codec, parts, linger_ms)
    xs = []
    for k, v in {**common, **extra[client]}.items():
        xs += ["-X", f"{k}={v}"]
    cmd = tools.bin[client] + [
        "--brokers", env["BROKERS"], "--topic", topic, "--mode", mode,
        "--records", str(n), "--partitions", str(parts), "--size", str(size),
        "--payloads", case_payloads(args, case), "--timeout-s", str(args.timeout_s),
    ] + (["--rate", str(rate)] if rate else []) + (
        ["--topics", str(topics)] if topics > 1 else []) + xs
    # Every run starts with nothing of earlier runs left to write back, so
    # that writing back the last run's (or the source fill's) data is in
    # no run's figures. (Alone it did not remove the slow first run after
    # a case's fill: that was the broker's JIT, see warm_broker.)
    os.sync()
    b0, j0 = proc_cpu_ticks(env["BROKER_PID"]), jit_ticks(env["BROKER_PID"])
    t0 = time.monotonic()
    perf, code, ru = run_tool(cmd, args.timeout_s + 60, logf)
    wall = time.monotonic() - t0
    b1, j1 = proc_cpu_ticks(env["BROKER_PID"]), jit_ticks(env["BROKER_PID"])
    row = {"client": client, "mode": mode, "size": size, "codec": codec,
           "partitions": parts, "topics": topics, "payload": kind, "records_asked": n,
           "rate": rate, "linger_ms": linger_ms,
           "exit": code, "process_wall_s": round(wall, 3),
           "process_cpu_s": round(ru.ru_utime + ru.ru_stime, 4),
           "peak_rss_mb": round(ru.ru_maxrss / 1024, 1)}
    if b0 is not None and b1 is not None:
        row["broker_cpu_s"] = (b1 - b0) / os.sysconf("SC_CLK_TCK")
        # Of which the JVM's JIT compiler threads (0 for tansu).
        row["broker_jit_s"] = (j1 - j0) / os.sysconf("SC_CLK_TCK")
    problems = []
    if code != 0 or perf is None:
        problems.append(f"exit status {code}, no PERF line" if perf is None else f"exit status {code}")
    else:
        row.update({k: perf.get(k) for k in ("version", "secs", "cpu_s", "p50_ms", "p99_ms",
                                            "p999_ms", "records", "bytes", "checksum",
                                            "metadata_ms")})
        if perf.get("records") != n:
            problems.append(f"reported {perf.get('records')} records, not {n}")
        if mode == "consume" and perf.get("checksum") != expected_checksum(args, case, n):
            problems.append(f"checksum {perf.get('checksum')}, not {expected_checksum(args, case, n)}")
    if mode == "produce" and code == 0:
        stored, check = stored_records(args, tools, env, case, topic, logf)
        row["stored"] = stored
        if stored != n:
            problems.append(f"the broker holds {stored} records, not {n}")
        elif check is not None and check != expected_checksum(args, case, n):
            problems.append(f"the stored values' checksum is {check}, "
                            f"not {expected_checksum(args, case, n)}")
    if problems:
        row["failed"] = "; ".join(problems)
    return row


_payload_cache = {}


def case_payloads(args, case):
    size, _, _, kind, _ = case
    key = (kind, size)
    if key not in _payload_cache:
        values = make_payloads(kind, size, args.payload_count, args.seed)
        path = os.path.join(args.work, f"payloads-{kind}-{size}.bin")
        with open(path, "wb") as f:
            f.write(b"".join(values))
        blob = b"".join(values)
        ratio = len(blob) / len(zlib.compress(blob, 6))
        log(f"payloads {kind} {size} B: {len(values)} values, zlib level 6 compresses "
            f"them {ratio:.2f}x")
        _payload_cache[key] = (path, values, ratio)
    return _payload_cache[key][0]


def expected_checksum(args, case, n):
    size, _, _, kind, _ = case
    values = _payload_cache[(kind, size)][1]
    k = len(values)
    per = [checksum(v) for v in values]
    full, rest = divmod(n, k)
    return full * sum(per) + sum(per[:rest])


def records_for(args, size):
    for item in args.records_for:
        s, n = item.split("=")
        if int(s) == size:
            return int(n)
    # About the same bytes as N records of 100 B, at least 20,000 records.
    return max(20000, min(args.records, args.records * 100 // max(size, 1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default=" ".join(CLIENTS))
    ap.add_argument("--modes", default="produce consume")
    ap.add_argument("--sizes", default="100", help="record sizes in bytes")
    ap.add_argument("--codecs", default="none lz4 zstd")
    ap.add_argument("--partitions", default="6", help="partitions per topic")
    ap.add_argument("--topics", default="1",
                    help="topic counts (above 1: klamm only, the scale runs)")
    ap.add_argument("--payload", default="json", help="json and/or repeat")
    ap.add_argument("--records", type=int, default=1000000,
                    help="records per run at 100 B and below; larger records get fewer")
    ap.add_argument("--records-for", action="append", default=[], metavar="SIZE=N")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--idempotence", default="false")
    ap.add_argument("--batch-size", type=int, default=131072)
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--payload-count", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("--timeout-s", type=int, default=300)
    ap.add_argument("--warm-rounds", type=int, default=10,
                    help="at most this many unmeasured rounds per case before its runs, "
                         "until the broker's JIT compiler threads are quiet")
    ap.add_argument("--warmup", type=int, default=200000,
                    help="records each client produces and consumes once, unmeasured, first")
    ap.add_argument("--latency-rate", type=int, default=50000,
                    help="records/s offered in the latency runs (0: none)")
    ap.add_argument("--latency-lingers", default="0 5")
    ap.add_argument("--latency-records", type=int, default=250000)
    ap.add_argument("--broker-name", default="Apache Kafka 4.4.0 (one node)")
    ap.add_argument("--client-setting", action="append", default=[], metavar="CLIENT:KEY=VALUE",
                    help="a setting for one client only (repeatable), e.g. a protocol cap a "
                         "broker needs")
    ap.add_argument("--count-by", choices=["list-offsets", "reading"], default="list-offsets",
                    help="how a produce run's stored records are counted: the topic's end "
                         "offsets, or reading it back to the Fetch high watermark (tansu)")
    ap.add_argument("--work", required=True, help="directory for payloads, logs and results")
    ap.add_argument("--out", help="write the markdown table here too")
    args = ap.parse_args()
    for setting in args.client_setting:
        client, colon, kv = setting.partition(":")
        if not colon or client not in CLIENTS or "=" not in kv:
            ap.error(f"--client-setting {setting}: want CLIENT:KEY=VALUE, CLIENT one of {CLIENTS}")
    env = {k: os.environ[k] for k in ("BROKERS", "BROKER_PID", "KLAMM_PERF", "RDKAFKA_PERF",
                                       "GO_PERF", "JAVA_PERF", "KLAMM_CLI")}
    # The broker's log directories (Apache Kafka), where delete() waits for a
    # deleted topic's files to go; none for tansu (in memory).
    data_dirs = [d for d in os.environ.get("DATA_DIRS", "").split(":") if d]
    tools = Tools(env)
    clients = args.clients.split()
    modes = args.modes.split()
    os.makedirs(args.work, exist_ok=True)
    results = os.path.join(args.work, "results.jsonl")
    logf = open(os.path.join(args.work, "tools.log"), "a")
    stamp = int(time.time())
    cases = [(int(s), c, int(p), k, int(t)) for k in args.payload.split()
             for s in args.sizes.split() for t in args.topics.split()
             for p in args.partitions.split() for c in args.codecs.split()]
    if any(case[4] > 1 for case in cases) and clients != ["klamm"]:
        raise SystemExit("--topics above 1 needs --clients klamm (only its tool takes --topics)")
    rows = []

    def create(topic, parts, topics=1):
        names = topic_names(topic, topics)
        for k in range(0, len(names), 200):
            tools.klamm_cli(env["BROKERS"], "topics", "create", *names[k:k + 200],
                            "--partitions", str(parts), "--config", "retention.ms=-1")
        # Every client starts once every partition's leader answers: right
        # after creation Kafka can name a leader in Metadata that still
        # answers NOT_LEADER_OR_FOLLOWER, and a client that meets that waits
        # out its own metadata backoff (franz-go: 5 s), which is not what is
        # measured here. ListOffsets is answered by the leader itself.
        deadline = time.monotonic() + 60 + len(names) * parts / 50
        while True:
            try:
                stored, seen = end_offsets(tools, env["BROKERS"], topic, topics)
                if seen == parts * topics and stored == 0:
                    return
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{topic}: not every partition's leader answers in time")
            time.sleep(0.2)

    def delete(topic, topics=1):
        names = topic_names(topic, topics)
        for k in range(0, len(names), 200):
            tools.klamm_cli(env["BROKERS"], "topics", "delete", *names[k:k + 200], check=False)
        wait_files_gone(names)

    def wait_files_gone(names):
        """Until the broker has unlinked the topics' partition directories
        (TOPIC-P, renamed TOPIC-P.ID-delete first): the unlinking, and the
        page cache it frees, belong to no client's run. Bounded: a broker
        that keeps deleted files for a while (log.segment.delete.delay.ms)
        costs a warning, not the comparison."""
        if not data_dirs:
            return
        pattern = re.compile("^(?:" + "|".join(re.escape(n) for n in names) + r")-\d+(?:\.|$)")
        deadline = time.monotonic() + 90
        while True:
            left = [e for d in data_dirs for e in os.listdir(d) if pattern.match(e)]
            if not left:
                return
            if time.monotonic() > deadline:
                log(f"warning: {len(left)} partition directories of {names[0]} still on disk")
                return
            time.sleep(0.1)

    def warm_broker(case, n, src):
        """Unmeasured rounds of the case (klamm produces n records to a
        scratch topic and reads src) until the broker's JIT has mostly done
        with them: at most --warm-rounds, ending early after two rounds in a
        row where the compiler threads took under 10 % of the broker's CPU.
        The warm-up round at the start uses the first case only; without
        this, the first client of a section's first run met a broker still
        compiling for the new record size (klamm, 1 KiB: 3.85 broker CPU-s
        per 1M in run 1 against 1.47 in run 2; a fresh broker's compiler
        threads took 113 of 257 ticks in the first 1 KiB round)."""
        quiet = 0
        for k in range(1, args.warm_rounds + 1):
            b0, j0 = proc_cpu_ticks(env["BROKER_PID"]), jit_ticks(env["BROKER_PID"])
            scratch = f"perf-{stamp}-warm-{case[0]}-{case[1]}-{case[2]}-{case[4]}-{k}"
            create(scratch, case[2], case[4])
            row = one_run(args, tools, env, case, "klamm", "produce", scratch, n, logf)
            delete(scratch, case[4])
            if "failed" in row:
                raise SystemExit(f"warming the broker failed: {row['failed']} (see {logf.name})")
            if src is not None:
                row = one_run(args, tools, env, case, "klamm", "consume", src, n, logf)
                if "failed" in row:
                    raise SystemExit(f"warming the broker failed: {row['failed']} "
                                     f"(see {logf.name})")
            b1, j1 = proc_cpu_ticks(env["BROKER_PID"]), jit_ticks(env["BROKER_PID"])
            if b0 is None or b1 is None:
                return
            share = (j1 - j0) / max(1, b1 - b0)
            log(f"warming the broker for {case[0]} B {case[1]} p{case[2]} t{case[4]}: round {k}, "
                f"JIT {j1 - j0} of {b1 - b0} ticks")
            quiet = quiet + 1 if share < 0.10 else 0
            if quiet == 2:
                return

    def measured(case, client, mode, topic, n, r, rate=0, linger_ms=None):
        if mode == "produce":
            create(topic, case[2], case[4])
        row = one_run(args, tools, env, case, client, mode, topic, n, logf, rate, linger_ms)
        row["run"] = r
        if mode == "produce":
            delete(topic, case[4])
        rows.append(row)
        with open(results, "a") as f:
            f.write(json.dumps(row) + "\n")
        what = row.get("failed") or (
            f"{row['cpu_s'] / n * 1e6:.3f} CPU-s/1M, {n / row['secs']:,.0f} rec/s, "
            f"p99 {row['p99_ms']} ms, RSS {row['peak_rss_mb']} MB")
        size, codec, parts, kind, topics = case
        at = f" at {rate}/s, linger {linger_ms} ms" if rate else ""
        log(f"{kind} {size} B {codec} p{parts} t{topics}{at} run {r}: {client} {mode}: {what}")

    if args.warmup and cases:
        # The broker's JIT and page cache, and each client, before anything
        # counts; a client that fails here fails the whole comparison.
        case = cases[0][:4] + (1,)
        wsrc = f"perf-{stamp}-warmup"
        if "consume" in modes:
            create(wsrc, case[2])
            fill = one_run(args, tools, env, case, "klamm", "produce", wsrc, args.warmup, logf)
            if "failed" in fill:
                raise SystemExit(f"warm-up fill failed: {fill['failed']} (see {logf.name})")
        for client in clients:
            for mode in modes:
                if mode == "produce":
                    topic = f"{wsrc}-{client}"
                    create(topic, case[2])
                    row = one_run(args, tools, env, case, client, mode, topic, args.warmup, logf)
                    delete(topic)
                else:
                    row = one_run(args, tools, env, case, client, mode, wsrc, args.warmup, logf)
                if "failed" in row:
                    raise SystemExit(f"warm-up {client} {mode} failed: {row['failed']} "
                                     f"(see {logf.name})")
                log(f"warm-up {client} {mode}: ok")
        if "consume" in modes:
            delete(wsrc)

    for case in cases:
        size, codec, parts, kind, topics = case
        n = records_for(args, size)
        case_payloads(args, case)
        src = f"perf-{stamp}-src-{kind}-{size}-{codec}-{parts}-{topics}"
        if "consume" in modes:
            create(src, parts, topics)
            log(f"filling {src} with {n:,} records (klamm)")
            fill = one_run(args, tools, env, case, "klamm", "produce", src, n, logf)
            if "failed" in fill:
                raise SystemExit(f"filling {src} failed: {fill['failed']} (see {logf.name})")
        warm_broker(case, n, src if "consume" in modes else None)
        for r in range(1, args.runs + 1):
            order = clients if r % 2 else list(reversed(clients))
            for client in order:
                for mode in modes:
                    topic = (f"perf-{stamp}-{client}-{kind}-{size}-{codec}-{parts}-{topics}-{r}"
                             if mode == "produce" else src)
                    measured(case, client, mode, topic, n, r)
        if "consume" in modes:
            delete(src, topics)
        if args.latency_rate and "produce" in modes:
            for linger in (int(x) for x in args.latency_lingers.split()):
                for r in range(1, args.runs + 1):
                    order = clients if r % 2 else list(reversed(clients))
                    for client in order:
                        topic = (f"perf-{stamp}-lat-{client}-{kind}-{size}-{codec}-{parts}-"
                                 f"{topics}-{linger}-{r}")
                        measured(case, client, "produce", topic, args.latency_records, r,
                                 args.latency_rate, linger)
    table = render(rows, args, clients)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    failed = [r for r in rows if "failed" in r]
    if failed:
        log(f"{len(failed)} runs failed (see {results} and {logf.name})")
        sys.exit(1)


def key_of(r):
    return (r["payload"], r["size"], r["codec"], r["partitions"], r.get("topics", 1), r["mode"],
            r.get("rate", 0), r.get("linger_ms"))


def render(rows, args, clients):
    out = []
    versions = {}
    for r in rows:
        if r.get("version"):
            versions[r["client"]] = r["version"]
    out.append(f"Broker: {args.broker_name}. Settings for every client: acks={args.acks}, "
               f"enable.idempotence={args.idempotence}, batch.size={args.batch_size}, "
               f"linger.ms={args.linger_ms}, check.crcs=true; median of {args.runs} runs.\n")
    out.append("Clients: " + ", ".join(f"{c} {versions.get(c, '?')}" for c in clients) + ".\n")
    out.append("| case | mode | client | records/s | MB/s | p50 ms | p99 ms | CPU-s per 1M "
               "(in run) | CPU-s per 1M (whole process) | peak RSS MB | broker CPU-s per 1M "
               "| metadata refresh ms | failed runs |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = []
    for r in rows:
        k = key_of(r)
        if k not in keys:
            keys.append(k)

    def med(k, client, f):
        vals = [f(r) for r in rows if key_of(r) == k and r["client"] == client
                and "failed" not in r and f(r) is not None]
        return statistics.median(vals) if vals else None

    metrics = {
        "rps": lambda r: r["records"] / r["secs"] if r.get("secs") else None,
        "mbs": lambda r: r["bytes"] / r["secs"] / 1e6 if r.get("secs") else None,
        "p50": lambda r: r.get("p50_ms"),
        "p99": lambda r: r.get("p99_ms"),
        "cpu": lambda r: r["cpu_s"] / r["records"] * 1e6 if r.get("records") else None,
        "pcpu": lambda r: r["process_cpu_s"] / r["records_asked"] * 1e6,
        "rss": lambda r: r["peak_rss_mb"],
        "bro": lambda r: (r["broker_cpu_s"] / r["records_asked"] * 1e6
                          if r.get("broker_cpu_s") is not None else None),
        "meta": lambda r: r.get("metadata_ms"),
    }

    def fmt(v, d):
        return "–" if v is None else f"{v:,.{d}f}"

    for k in keys:
        kind, size, codec, parts, topics, mode, rate, linger = k
        label = f"{kind} {size} B, {codec}, {parts} partitions"
        if topics > 1:
            label = f"{kind} {size} B, {codec}, {topics} topics × {parts} partitions"
        if rate:
            label += f", {rate:,}/s offered, linger {linger} ms"
        meds = {c: {m: med(k, c, f) for m, f in metrics.items()} for c in clients}
        for c in clients:
            m = meds[c]
            nfail = sum(1 for r in rows if key_of(r) == k and r["client"] == c and "failed" in r)
            out.append(f"| {label} | {mode} | {c} | {fmt(m['rps'], 0)} | {fmt(m['mbs'], 1)} | "
                       f"{fmt(m['p50'], 2)} | {fmt(m['p99'], 2)} | {fmt(m['cpu'], 3)} | "
                       f"{fmt(m['pcpu'], 3)} | {fmt(m['rss'], 0)} | {fmt(m['bro'], 3)} | "
                       f"{fmt(m['meta'], 1)} | {nfail} |")
        if "klamm" in clients and len(clients) > 1:
            peers = [c for c in clients if c != "klamm"]

            def best(m, lower):
                vals = [meds[c][m] for c in peers if meds[c][m] is not None]
                return (min(vals) if lower else max(vals)) if vals else None

            def ratio(m, lower):
                a, b = meds["klamm"][m], best(m, lower)
                return "–" if a is None or not b else f"{a / b:.2f}×"
            out.append(f"| {label} | {mode} | **klamm / best peer** | {ratio('rps', False)} | "
                       f"{ratio('mbs', False)} | {ratio('p50', True)} | {ratio('p99', True)} | "
                       f"{ratio('cpu', True)} | {ratio('pcpu', True)} | {ratio('rss', True)} | | | |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
