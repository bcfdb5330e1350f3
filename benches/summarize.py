#!/usr/bin/env python3
"""Summarize `cargo bench` output: median time and throughput per case and
the klamm / kafka-protocol throughput ratio per group (same run).

Usage: python3 summarize.py bench_output.txt [more outputs...]
"""
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
TUNITS = {"B/s": 1, "KiB/s": 1024, "MiB/s": 1024**2, "GiB/s": 1024**3}


def parse(path):
    res, name = {}, None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^(\S+/\S+)\s*(time:.*)?$", line.rstrip())
        if m and not line.startswith("Benchmarking"):
            name = m.group(1)
            line = m.group(2) or ""
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if t and name:
            res.setdefault(name, {})["time"] = float(t.group(1)) * UNITS[t.group(2)]
        p = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if p and name and "thrpt" not in res.get(name, {}):
            res[name]["thrpt"] = float(p.group(1)) * TUNITS[p.group(2)]
    return res


def fmt_t(s):
    return f"{s*1e6:.1f} µs" if s < 1e-3 else f"{s*1e3:.2f} ms"


def fmt_p(b):
    return f"{b/1024**3:.2f} GiB/s" if b >= 1024**3 else f"{b/1024**2:.0f} MiB/s"


for path in sys.argv[1:]:
    res = parse(path)
    print(f"## {path}")
    print("| group | klamm median | kafka-protocol median | klamm thrpt | kafka-protocol thrpt | ratio |")
    print("|---|---|---|---|---|---|")
    for g in sorted({n.rsplit("/", 1)[0] for n in res}):
        k, p = res.get(f"{g}/klamm"), res.get(f"{g}/kafka-protocol")
        if not (k and p):
            continue
        print(f"| {g} | {fmt_t(k['time'])} | {fmt_t(p['time'])} | {fmt_p(k['thrpt'])} | "
              f"{fmt_p(p['thrpt'])} | {k['thrpt']/p['thrpt']:.2f}x |")
        nc = res.get(f"{g}/klamm_no_crc")
        if nc:
            print(f"| {g} (klamm no CRC) | {fmt_t(nc['time'])} | | {fmt_p(nc['thrpt'])} | | "
                  f"{nc['thrpt']/p['thrpt']:.2f}x |")
    print()
