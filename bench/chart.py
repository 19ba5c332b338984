#!/usr/bin/env python3
"""bench/chart.py CSV SVG: draw bench/results/latest.csv as one SVG.

    python3 bench/chart.py bench/results/latest.csv bench/results/latest.svg

Python 3 standard library only. The CSV has the columns
system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb; any field may
be empty. The SVG has three panels:

  1. full-cycle throughput (scenarios cycle-PxW): one group per shape, one
     bar per system/mode, linear scale;
  2. latency of the scenarios idle-dispatch and enqueue-ack: p50 and p99 per
     system/mode, log scale, in microseconds;
  3. restart rows (restart-N): restart time (p50_us) and memory (rss_kb) as
     a table with small bars.

Every system/mode seen in the CSV keeps one colour in every panel: one hue
family per system, one shade per mode, in the order of first appearance.
Nothing is specific to the systems or modes of today's CSV. A row whose
value is empty shows "no value" instead of a bar; a system/mode with no row
for a scenario is left out of that group."""

import csv
import math
import os
import sys
from xml.sax.saxutils import escape

WIDTH = 1160
MARGIN = 24
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
LATENCY_SCENARIOS = ("idle-dispatch", "enqueue-ack")

# One hue family per system (dark to light), in order of first appearance;
# a system's modes take the family's shades in order.
FAMILIES = [
    ["#1f4e99", "#4a7fd0", "#8fb5ea", "#c3d7f3"],  # blue
    ["#b34700", "#e6791f", "#f5aa66", "#f9d0a8"],  # orange
    ["#1b7340", "#3ba55c", "#7fcf95", "#bde6c8"],  # green
    ["#7b2d8e", "#a95cbd", "#cf9bdc", "#e7cdee"],  # purple
    ["#8c1c1c", "#c94141", "#e88a8a", "#f4c4c4"],  # red
    ["#5c4a14", "#9a7d22", "#cfb55c", "#e9dba6"],  # olive
    ["#1d6b6b", "#2fa3a3", "#7fd0d0", "#bfe8e8"],  # teal
    ["#4d4d4d", "#7f7f7f", "#b0b0b0", "#d6d6d6"],  # grey
]


def number(text):
    """The float in a CSV field, or None when it is empty or not a number."""
    try:
        v = float((text or "").strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def read_rows(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = []
        for r in csv.DictReader(f):
            r = {(k or "").strip(): (v or "").strip()
                 for k, v in r.items() if k is not None}
            if r.get("system") and r.get("scenario"):
                rows.append(r)
        return rows


def text_width(s, size, bold=False):
    """Rough width of s in px (DejaVu Sans: about 0.6 em a character, bold
    about 0.7)."""
    return len(s) * size * (0.7 if bold else 0.6)


def fmt_int(v):
    return "{:,.0f}".format(v)


def fmt_us(v):
    return "{:,.0f} µs".format(v) if v >= 10 else "{:.1f} µs".format(v)


def nice_step(span, ticks):
    raw = span / max(ticks, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def shape_key(scenario):
    """cycle-4x16 -> (4, 16); anything else sorts after, as it came."""
    try:
        p, w = scenario.split("-", 1)[1].lower().split("x")
        return (0, int(p), int(w))
    except (IndexError, ValueError):
        return (1, 0, 0)


class Svg:
    def __init__(self):
        self.parts = []

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, size=12, anchor="start", weight="normal",
             fill="#222", extra=""):
        self.add('<text x="%.1f" y="%.1f" font-size="%g" text-anchor="%s" '
                 'font-weight="%s" fill="%s"%s>%s</text>' % (
                     x, y, size, anchor, weight, fill, extra, escape(s)))

    def rect(self, x, y, w, h, fill, extra=""):
        self.add('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                 'fill="%s"%s/>' % (x, y, max(w, 0), h, fill, extra))

    def line(self, x1, y1, x2, y2, stroke="#ccc", width=1, extra=""):
        self.add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                 'stroke="%s" stroke-width="%g"%s/>' % (
                     x1, y1, x2, y2, stroke, width, extra))


def series_colours(rows):
    """(system, mode) -> colour, and the series in order of appearance."""
    systems, modes = [], {}
    for r in rows:
        s, m = r["system"], r.get("mode", "")
        if s not in modes:
            systems.append(s)
            modes[s] = []
        if m not in modes[s]:
            modes[s].append(m)
    colour, order = {}, []
    for i, s in enumerate(systems):
        fam = FAMILIES[i % len(FAMILIES)]
        for j, m in enumerate(modes[s]):
            colour[(s, m)] = fam[j % len(fam)]
            order.append((s, m))
    return colour, order


def label(series):
    s, m = series
    return "%s %s" % (s, m) if m else s


def legend(svg, y, order, colour, x0=MARGIN, x1=WIDTH - MARGIN):
    """Swatches in rows; returns the y below them."""
    x, size = x0, 12
    for series in order:
        w = 14 + 6 + text_width(label(series), size) + 22
        if x + w > x1 and x > x0:
            x, y = x0, y + 20
        svg.rect(x, y - 11, 14, 14, colour[series], ' rx="2"')
        svg.text(x + 20, y, label(series), size)
        x += w
    return y + 20


def panel_title(svg, y, title, note):
    svg.text(MARGIN, y, title, 16, weight="bold")
    if note:
        svg.text(MARGIN, y + 18, note, 12, fill="#555")
        return y + 30
    return y + 12


def no_rows(svg, y, what):
    """Say that the CSV has no rows for a panel; the y below the note."""
    svg.text(MARGIN, y + 16, "(no %s rows in the CSV)" % what, 12,
             fill="#777")
    return y + 30


def throughput_panel(svg, y, rows, colour, order):
    cycle = {}
    for r in rows:
        if r["scenario"].startswith("cycle-"):
            cycle.setdefault(r["scenario"], {})[
                (r["system"], r.get("mode", ""))] = number(r.get("jobs_per_s"))
    y = panel_title(svg, y + 22, "Full job cycle: throughput",
                    "enqueue, dispatch, complete; P producers x W consumers "
                    "(cycle-PxW); jobs per second, higher is better")
    if not cycle:
        return no_rows(svg, y, "cycle-*")
    scen = sorted(cycle, key=lambda s: (shape_key(s), list(cycle).index(s)))
    series = [s for s in order if any(s in cycle[c] for c in scen)]
    labw = max(text_width(label(s), 12) for s in series) + 16
    gx = MARGIN + 8
    x0 = gx + max(labw, 150) + 60
    x1 = WIDTH - MARGIN - 80
    vmax = max([v for c in scen for v in cycle[c].values() if v] or [1])
    step = nice_step(vmax, 8)
    top = math.ceil(vmax / step) * step
    scale = (x1 - x0) / top
    bar, gap, head = 15, 4, 24
    height = sum(head + len(cycle[c]) * (bar + gap) + 6 for c in scen)
    y += 14
    # grid and axis
    t = 0.0
    while t <= top + step / 2:
        x = x0 + t * scale
        svg.line(x, y, x, y + height, "#e3e3e3")
        svg.text(x, y + height + 16, fmt_int(t), 11, "middle", fill="#444")
        t += step
    svg.line(x0, y, x0, y + height, "#888")
    svg.text((x0 + x1) / 2, y + height + 36,
             "jobs per second (full cycle)", 13, "middle")
    yy = y
    for c in scen:
        name = c[len("cycle-"):]
        svg.text(gx, yy + 17, name, 14, weight="bold")
        svg.text(gx + text_width(name, 14, True) + 8, yy + 17,
                 "(%s)" % c, 11, fill="#666")
        yy += head
        for s in [s for s in series if s in cycle[c]]:
            v = cycle[c][s]
            svg.text(x0 - 8, yy + bar - 3, label(s), 12, "end")
            if v is None:
                svg.text(x0 + 6, yy + bar - 3, "no value", 11, fill="#999",
                         extra=' font-style="italic"')
            else:
                w = v * scale
                svg.rect(x0, yy, w, bar, colour[s])
                svg.text(x0 + w + 5, yy + bar - 3, fmt_int(v), 12)
            yy += bar + gap
        yy += 6
    return y + height + 44


def latency_panel(svg, y, rows, colour, order):
    lat = {}
    for r in rows:
        if r["scenario"] in LATENCY_SCENARIOS:
            lat.setdefault(r["scenario"], {})[
                (r["system"], r.get("mode", ""))] = (
                    number(r.get("p50_us")), number(r.get("p99_us")))
    y = panel_title(svg, y + 22, "Latency: p50 and p99",
                    "idle-dispatch: enqueue until a waiting consumer holds "
                    "the job; enqueue-ack: the enqueue round trip; "
                    "microseconds, log scale, lower is better")
    scen = [s for s in LATENCY_SCENARIOS if s in lat]
    if not scen:
        return no_rows(svg, y, "latency")
    series = {c: [s for s in order if s in lat[c]] for c in scen}
    labw = max(text_width(label(s), 12) for c in scen for s in series[c])
    gx = MARGIN + 8
    x0 = gx + max(labw + 16, 150) + 60
    x1 = WIDTH - MARGIN - 110
    vals = [v for c in scen for pair in lat[c].values() for v in pair
            if v and v > 0]
    # The axis runs between 1-2-5 values around the data, ticks at each.
    ticks = [m * 10 ** e for e in range(-1, 8) for m in (1, 2, 5)]
    lo = max([t for t in ticks if t <= min(vals)] or [ticks[0]]) \
        if vals else 1
    hi = min([t for t in ticks if t >= max(vals)] or [ticks[-1]]) \
        if vals else 10
    if hi <= lo:
        hi = lo * 10
    span = math.log10(hi) - math.log10(lo)

    def xof(v):
        return x0 + (math.log10(v) - math.log10(lo)) / span * (x1 - x0)

    bar, gap, head = 10, 2, 24
    row = 2 * bar + gap + 8
    height = sum(head + len(series[c]) * row + 4 for c in scen)
    y += 14
    d = 10 ** math.floor(math.log10(lo))
    while d <= hi * 1.001:
        for m in range(1, 10):
            v = d * m
            if v < lo * 0.999 or v > hi * 1.001:
                continue
            major = m in (1, 2, 5)
            svg.line(xof(v), y, xof(v), y + height,
                     "#d5d5d5" if m == 1 else
                     "#e6e6e6" if major else "#f3f3f3")
            if major:
                svg.text(xof(v), y + height + 16, fmt_us(v), 11, "middle",
                         fill="#444")
        d *= 10
    svg.line(x0, y, x0, y + height, "#888")
    svg.text((x0 + x1) / 2, y + height + 36,
             "latency, µs (log scale); solid bar p50, pale bar p99", 13,
             "middle")
    yy = y
    for c in scen:
        svg.text(gx, yy + 17, c, 14, weight="bold")
        yy += head
        for s in series[c]:
            p50, p99 = lat[c][s]
            svg.text(x0 - 8, yy + bar + 4, label(s), 12, "end")
            for k, (name, v, op) in enumerate((("p50", p50, 1.0),
                                               ("p99", p99, 0.45))):
                by = yy + k * (bar + gap)
                if v is None or v <= 0:
                    svg.text(x0 + 6, by + bar - 1, "%s: no value" % name, 10,
                             fill="#999", extra=' font-style="italic"')
                    continue
                w = xof(v) - x0
                svg.rect(x0, by, w, bar, colour[s],
                         ' fill-opacity="%g"' % op if op < 1 else "")
                svg.text(x0 + max(w, 0) + 5, by + bar - 1,
                         "%s %s" % (name, fmt_us(v)), 10,
                         fill="#222" if op == 1 else "#555")
            yy += row
        yy += 4
    return y + height + 44


def restart_panel(svg, y, rows, colour):
    rs = [r for r in rows if r["scenario"].startswith("restart-")]
    y = panel_title(svg, y + 22, "Restart with stored jobs",
                    "time from start until the server answers with every "
                    "job (p50_us), and its resident memory then (rss_kb)")
    if not rs:
        return no_rows(svg, y, "restart-*")
    y += 10
    cols = [MARGIN + 8, MARGIN + 320, MARGIN + 440, MARGIN + 740]
    barw = 180
    svg.text(cols[0], y + 12, "system / mode", 12, weight="bold")
    svg.text(cols[1], y + 12, "stored jobs", 12, weight="bold")
    svg.text(cols[2], y + 12, "restart time", 12, weight="bold")
    svg.text(cols[3], y + 12, "resident memory", 12, weight="bold")
    y += 20
    svg.line(MARGIN, y, WIDTH - MARGIN, y, "#999")
    tmax = max([number(r.get("p50_us")) or 0 for r in rs] + [1])
    mmax = max([number(r.get("rss_kb")) or 0 for r in rs] + [1])
    for r in rs:
        s = (r["system"], r.get("mode", ""))
        yy = y + 6
        svg.rect(cols[0], yy + 2, 12, 12, colour[s], ' rx="2"')
        svg.text(cols[0] + 18, yy + 13, label(s), 12)
        n = number(r["scenario"][len("restart-"):])
        svg.text(cols[1], yy + 13,
                 fmt_int(n) if n is not None else r["scenario"], 12)
        t = number(r.get("p50_us"))
        m = number(r.get("rss_kb"))
        for x, v, vmax, txt in (
                (cols[2], t, tmax,
                 "%.2f s" % (t / 1e6) if t is not None else None),
                (cols[3], m, mmax,
                 ("{:,.0f} kB".format(m) + (" (%.0f MB)" % (m / 1024)
                                            if m >= 10240 else ""))
                 if m is not None else None)):
            if v is None:
                svg.text(x, yy + 13, "no value", 11, fill="#999",
                         extra=' font-style="italic"')
                continue
            w = max(v / vmax * barw, 1.5)
            svg.rect(x, yy + 2, w, 12, colour[s])
            svg.text(x + w + 6, yy + 13, txt, 12)
        y += 24
        svg.line(MARGIN, y, WIDTH - MARGIN, y, "#e3e3e3")
    svg.text(MARGIN + 8, y + 18,
             "Memory as each run measured it (see bench/README.md for which "
             "figure each system reports).", 11, fill="#555")
    return y + 30


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: chart.py CSV SVG\n")
        return 2
    rows = read_rows(argv[1])
    colour, order = series_colours(rows)
    drawn = {(r["system"], r.get("mode", "")) for r in rows
             if r["scenario"].startswith(("cycle-", "restart-"))
             or r["scenario"] in LATENCY_SCENARIOS}
    body = Svg()
    y = 34
    body.text(MARGIN, y, "jobq benchmark: full job cycle, latency and "
              "restart", 20, weight="bold")
    body.text(WIDTH - MARGIN, y, os.path.basename(argv[1]), 12, "end",
              fill="#777")
    y += 30
    y = legend(body, y, [s for s in order if s in drawn], colour)
    y = throughput_panel(body, y, rows, colour, order)
    y = latency_panel(body, y, rows, colour, order)
    y = restart_panel(body, y, rows, colour)
    height = int(y + MARGIN)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="%s">' % (
               WIDTH, height, WIDTH, height, FONT),
           '<rect width="100%" height="100%" fill="#fff"/>']
    out += body.parts
    out.append("</svg>\n")
    tmp = argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    os.replace(tmp, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
