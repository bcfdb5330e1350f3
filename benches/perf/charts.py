#!/usr/bin/env python3
"""Draws the perf-compare results as SVG line charts, with the standard
library only.

    python3 benches/perf/charts.py --results a.jsonl [--results b.jsonl ...] \\
        [--out-dir DIR] [--md]

The inputs (also accepted as positional arguments) are the JSON-lines files
benches/perf/compare.py writes, one run per line. Failed runs and fixed-rate
latency runs (rate > 0) are left out; every point is the median over the
runs of one client, mode and x value. For each mode (produce, consume):

- size-throughput-MODE.svg: MB/s against record size, and
  size-cpu-MODE.svg: CPU-s per 1M records against record size; both with
  codec none, json payloads, the fewest partitions present, one topic;
- partitions-cpu-MODE.svg: CPU-s per 1M records against partitions;
  100 B, codec none, json payloads, one topic;
- topics-cpu-MODE.svg, when a scale run wrote rows of more than one topic:
  CPU-s per 1M records against topics; 100 B, codec none, and the payload
  and partitions per topic of those rows.

When rows carry metadata_ms, metadata-refresh.svg draws klamm's Metadata
refresh time against the partitions of all topics, one topic against many.

A chart in which no line has two points is skipped, with a note on stderr.
The charts go to benches/charts unless --out-dir says otherwise, and the
paths written are printed; with --md, Markdown image lines for
benches/RESULTS.md are printed instead (the paths then go to stderr). The
same input gives byte-identical files.
"""

import argparse
import collections
import json
import math
import os
import statistics
import sys
from xml.sax.saxutils import escape, quoteattr

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = os.path.join(HERE, "..")
MODES = ("produce", "consume")
CLIENTS = ["klamm", "rdkafka", "sarama", "franz-go", "java"]
COLORS = {"klamm": "#d62728", "rdkafka": "#1f77b4", "sarama": "#2ca02c",
          "franz-go": "#9467bd", "java": "#ff7f0e"}
SPARE_COLORS = ["#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"]

# Canvas and plot area, in pixels; the legend sits right of the plot.
WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 78, 560, 56, 360

Chart = collections.namedtuple("Chart", "name title subtitle xlabel ylabel xfmt series")
Series = collections.namedtuple("Series", "label color strong points")
Axis = collections.namedtuple("Axis", "lo hi log ticks")


# ------------------------------------------------------------------ data

def load(paths):
    """The runs that count: not failed, not at a fixed rate."""
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    for r in rows:
        r["topics"] = r.get("topics") or 1
    return [r for r in rows if "failed" not in r and not r.get("rate")]


def mb_per_s(r):
    if r.get("secs") and r.get("bytes") is not None:
        return r["bytes"] / r["secs"] / 1e6
    return None


def cpu_per_1m(r):
    if r.get("records") and r.get("cpu_s") is not None:
        return r["cpu_s"] / r["records"] * 1e6
    return None


def pick(rows, **fixed):
    return [r for r in rows if all(r.get(k) == v for k, v in fixed.items())]


def medians(rows, series_of, x_of, y_of):
    """{series: [(x, median of y), ...] in x order}."""
    values = {}
    for r in rows:
        y = y_of(r)
        if y is not None:
            values.setdefault(series_of(r), {}).setdefault(x_of(r), []).append(y)
    return {s: sorted((x, statistics.median(ys)) for x, ys in xs.items())
            for s, xs in values.items()}


def by_client(rows, x_of, y_of):
    """One series per client: the known ones in CLIENTS order, then others."""
    meds = medians(rows, lambda r: r["client"], x_of, y_of)
    known = [c for c in CLIENTS if c in meds]
    others = sorted(c for c in meds if c not in COLORS)
    colors = {**COLORS, **{c: SPARE_COLORS[i % len(SPARE_COLORS)] for i, c in enumerate(others)}}
    return [Series(c, colors[c], c == "klamm", meds[c]) for c in known + others]


# ---------------------------------------------------------------- charts

def size_charts(rows, mode):
    pool = pick(rows, mode=mode, codec="none", payload="json", topics=1)
    parts = min((r["partitions"] for r in pool), default=None)
    pool = pick(pool, partitions=parts)
    sub = f"codec none, json payloads, {parts} partitions, 1 topic; median of runs"
    what = mode.capitalize()
    return [
        Chart(f"size-throughput-{mode}", f"{what} throughput by record size", sub,
              "record size (log scale)", "MB/s (10⁶ bytes per second)", fmt_size,
              by_client(pool, lambda r: r["size"], mb_per_s)),
        Chart(f"size-cpu-{mode}", f"{what} CPU per 1M records by record size", sub,
              "record size (log scale)", "CPU-s per 1M records", fmt_size,
              by_client(pool, lambda r: r["size"], cpu_per_1m)),
    ]


def partition_charts(rows, mode):
    pool = pick(rows, mode=mode, size=100, codec="none", payload="json", topics=1)
    return [Chart(f"partitions-cpu-{mode}", f"{mode.capitalize()} CPU per 1M records "
                  "by partition count", "100 B records, codec none, json payloads, 1 topic; "
                  "median of runs", "partitions (log scale)", "CPU-s per 1M records",
                  fmt_num, by_client(pool, lambda r: r["partitions"], cpu_per_1m))]


def topic_charts(rows, mode):
    """Only when a scale run wrote rows of more than one topic; the payload
    (json if there is one) and partitions per topic (the fewest) are theirs."""
    pool = pick(rows, mode=mode, size=100, codec="none")
    many = [r for r in pool if r["topics"] > 1]
    if not many:
        return []
    _, parts, payload = min((r["payload"] != "json", r["partitions"], r["payload"])
                            for r in many)
    pool = pick(pool, partitions=parts, payload=payload)
    return [Chart(f"topics-cpu-{mode}", f"{mode.capitalize()} CPU per 1M records "
                  "by topic count", f"100 B records, codec none, {payload} payloads, "
                  f"{parts} partitions per topic; median of runs", "topics (log scale)",
                  "CPU-s per 1M records", fmt_num,
                  by_client(pool, lambda r: r["topics"], cpu_per_1m))]


def metadata_charts(rows):
    """Only when rows carry metadata_ms: klamm's, one topic against many."""
    pool = [r for r in rows if r["client"] == "klamm" and r.get("metadata_ms") is not None]
    if not pool:
        return []
    meds = medians(pool, lambda r: r["topics"] > 1, lambda r: r["partitions"] * r["topics"],
                   lambda r: r["metadata_ms"])
    styles = [(True, "more than 1 topic", "#d62728"), (False, "1 topic", "#1f77b4")]
    series = [Series(label, color, many, meds[many])
              for many, label, color in styles if many in meds]
    return [Chart("metadata-refresh", "klamm Metadata refresh time by partition count",
                  "Metadata of every topic, median of five refreshes per run; "
                  "median of runs", "partitions of all topics (log scale)",
                  "Metadata refresh (ms)", fmt_num, series)]


def build(rows):
    charts = []
    for mode in MODES:
        charts += size_charts(rows, mode) + partition_charts(rows, mode) + topic_charts(rows, mode)
    return charts + metadata_charts(rows)


def drawable(chart):
    if any(len(s.points) >= 2 for s in chart.series):
        return True
    print(f"charts: skipping {chart.name}: no line has two x values", file=sys.stderr)
    return False


# ------------------------------------------------------------------ axes

def fmt_num(v):
    return f"{v:,.0f}" if v >= 1000 else f"{v:g}"


def fmt_size(v):
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= div:
            return f"{round(v / div, 2):g} {unit}"
    return f"{v:g} B"


def data_axis(xs):
    """Log axis with a tick at every x present, a little room at the ends."""
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    pad = (hi - lo) * 0.06
    return Axis(10 ** (lo - pad), 10 ** (hi + pad), True, sorted(set(xs)))


def value_axis(ys):
    lo, hi = min(ys), max(ys)
    if lo > 0 and hi / lo >= 10:
        return log_axis(lo, hi)
    return linear_axis(hi)


def log_axis(lo, hi):
    """Ticks at powers of 10, and at 2 and 5 times them over 3 decades or
    fewer; the ends are the ticks just outside the data."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if last - first <= 3 else (1,)
    ticks = [round(m * 10.0 ** e, 12) for e in range(first, last + 1) for m in steps]
    bottom = max(t for t in ticks if t <= lo * (1 + 1e-9))
    top = min(t for t in ticks if t >= hi * (1 - 1e-9))
    return Axis(bottom, top, True, [t for t in ticks if bottom <= t <= top])


def linear_axis(hi):
    """From 0, about five steps of 1, 2 or 5 times a power of 10."""
    hi = hi if hi > 0 else 1
    raw = hi / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    n = max(1, math.ceil(hi / step - 1e-9))
    ticks = [round(i * step, 12) for i in range(n + 1)]
    return Axis(0, ticks[-1], False, ticks)


def frac(axis, v):
    """Where v falls on the axis, 0 at its low end and 1 at its high end."""
    if axis.log:
        lo, hi = math.log10(axis.lo), math.log10(axis.hi)
        return (math.log10(v) - lo) / (hi - lo)
    return (v - axis.lo) / (axis.hi - axis.lo)


# ------------------------------------------------------------------- SVG

def el(tag, text=None, **attrs):
    """One SVG element; attribute names take '-' for '_', floats one decimal."""
    parts = []
    for k, v in attrs.items():
        v = f"{v:.1f}" if isinstance(v, float) else str(v)
        parts.append(f" {k.rstrip('_').replace('_', '-')}={quoteattr(v)}")
    head = tag + "".join(parts)
    return f"<{head}/>" if text is None else f"<{head}>{escape(text)}</{tag}>"


def render(chart):
    xa = data_axis([x for s in chart.series for x, _ in s.points])
    ya = value_axis([y for s in chart.series for _, y in s.points])

    def at(x, y):
        return (LEFT + frac(xa, x) * (RIGHT - LEFT), BOTTOM - frac(ya, y) * (BOTTOM - TOP))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           el("title", chart.title),
           el("rect", width=WIDTH, height=HEIGHT, fill="#ffffff"),
           el("text", chart.title, x=LEFT, y=24, font_size=16, font_weight="bold"),
           el("text", chart.subtitle, x=LEFT, y=42, fill="#555555")]
    out += grid(xa, ya, chart.xfmt, at)
    out += axis_labels(chart)
    # The strong line (klamm) last, on top of the others.
    for s in sorted(chart.series, key=lambda s: s.strong):
        out += line(s, at)
    out += legend(chart.series)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def grid(xa, ya, xfmt, at):
    out = []
    for t in xa.ticks:
        x, _ = at(t, ya.lo)
        out.append(el("line", x1=x, y1=float(TOP), x2=x, y2=float(BOTTOM), stroke="#dddddd"))
        out.append(el("text", xfmt(t), x=x, y=float(BOTTOM + 18), text_anchor="middle"))
    for t in ya.ticks:
        _, y = at(xa.lo, t)
        out.append(el("line", x1=float(LEFT), y1=y, x2=float(RIGHT), y2=y, stroke="#dddddd"))
        out.append(el("text", fmt_num(t), x=float(LEFT - 8), y=y + 4, text_anchor="end"))
    out.append(el("rect", x=LEFT, y=TOP, width=RIGHT - LEFT, height=BOTTOM - TOP,
                  fill="none", stroke="#888888"))
    return out


def axis_labels(chart):
    mid_y = (TOP + BOTTOM) / 2
    return [el("text", chart.xlabel, x=(LEFT + RIGHT) / 2, y=float(HEIGHT - 14),
               text_anchor="middle"),
            el("text", chart.ylabel, x=20.0, y=mid_y, text_anchor="middle",
               transform=f"rotate(-90 20 {mid_y:.1f})")]


def line(series, at):
    width, radius = (3.0, 4.5) if series.strong else (1.8, 3.5)
    points = [at(x, y) for x, y in series.points]
    out = [el("polyline", points=" ".join(f"{x:.1f},{y:.1f}" for x, y in points),
              fill="none", stroke=series.color, stroke_width=width,
              stroke_linejoin="round")] if len(points) > 1 else []
    out += [el("circle", cx=x, cy=y, r=radius, fill=series.color, stroke="#ffffff")
            for x, y in points]
    return out


def legend(series):
    """Strong series first, then in the order given."""
    out = []
    x = RIGHT + 14
    ordered = sorted(series, key=lambda s: not s.strong)
    for i, s in enumerate(ordered):
        y = TOP + 12.0 + 20 * i
        width, radius = (3.0, 4.5) if s.strong else (1.8, 3.5)
        out.append(el("line", x1=float(x), y1=y, x2=float(x + 24), y2=y, stroke=s.color,
                      stroke_width=width))
        out.append(el("circle", cx=float(x + 12), cy=y, r=radius, fill=s.color,
                      stroke="#ffffff"))
        out.append(el("text", s.label, x=float(x + 32), y=y + 4,
                      font_weight="bold" if s.strong else "normal"))
    return out


# ------------------------------------------------------------------- CLI

def main(argv=None):
    p = argparse.ArgumentParser(description="Draws perf-compare results as SVG line charts.")
    p.add_argument("files", nargs="*", metavar="FILE", help="results file (JSON lines)")
    p.add_argument("--results", action="append", default=[], metavar="FILE",
                   help="results file (JSON lines); repeatable")
    p.add_argument("--out-dir", default=os.path.join(BENCHES, "charts"),
                   help="where the SVG files go (default: benches/charts)")
    p.add_argument("--md", action="store_true",
                   help="print Markdown image lines for benches/RESULTS.md")
    args = p.parse_args(argv)
    paths = args.results + args.files
    if not paths:
        p.error("give at least one results file")
    charts = [c for c in build(load(paths)) if drawable(c)]
    if not charts:
        # Not an error: a single section (tansu, codecs) has no line with
        # two points.
        print("charts: nothing to draw (no line has two points)", file=sys.stderr)
        return 0
    os.makedirs(args.out_dir, exist_ok=True)
    for chart in charts:
        path = os.path.normpath(os.path.join(args.out_dir, chart.name + ".svg"))
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(render(chart))
        if args.md:
            link = os.path.relpath(path, BENCHES).replace(os.sep, "/")
            print(f"![{chart.title}]({link})")
            print(path, file=sys.stderr)
        else:
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
