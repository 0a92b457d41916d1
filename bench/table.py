#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tabulate the vhu-bench JSON reports bench/compare.sh leaves behind.

usage: table.py OUTDIR [--markdown] WORKLOAD...
Reads OUTDIR/<backend>.<workload>.r<N>.json.  For each back end and
workload it shows the repetition with the median IOPS (all its columns come
from that one run), then the ratios of the compared pairs, and, with more
than one repetition, the spread: medians with ranges and every
repetition's ratio.
"""
import glob
import json
import os
import re
import statistics
import sys

BACKENDS = [("vhu", "vhu-blk"), ("qsd-io", "qsd iothread"),
            ("vhu-nopoll", "vhu-blk --poll-us 0"), ("qsd", "qsd main loop")]
# Defaults against the peer's polling set-up, defaults against the peer's
# default, and without any polling on either side.
PAIRS = [("vhu", "qsd-io"), ("vhu", "qsd"), ("vhu-nopoll", "qsd")]
# Per repetition: the headline pair, and polling against not polling.
SPREAD_PAIRS = [("vhu", "qsd-io"), ("vhu", "vhu-nopoll")]
COLS = [("IOPS", "iops", "{:.0f}"), ("MB/s", "mbps", "{:.1f}"),
        ("p50 us", "lat_p50_us", "{:.1f}"), ("p99 us", "lat_p99_us", "{:.1f}"),
        ("p99.9 us", "lat_p999_us", "{:.1f}"),
        ("backend CPU us/req", "backend_cpu_us_per_req", "{:.2f}"),
        ("ctx sw/req", "backend_ctxsw_per_req", "{:.2f}"),
        ("kicks/req", "kicks_per_req", "{:.2f}"), ("calls/req", "calls_per_req", "{:.2f}")]


def reps(d, be, wl):
    """Every repetition's report, by repetition number."""
    runs = {}
    for path in glob.glob(os.path.join(d, f"{be}.{wl}.r*.json")):
        m = re.search(r"\.r(\d+)\.json$", path)
        if not m:
            continue
        try:
            with open(path) as fh:
                runs[int(m.group(1))] = json.load(fh)
        except (OSError, ValueError):
            pass  # a run that failed left no report
    return runs


def load(d, be, wl):
    """The run with the median IOPS among the repetitions, and their count."""
    runs = sorted(reps(d, be, wl).values(), key=lambda j: j["iops"])
    if not runs:
        return None, 0
    return runs[(len(runs) - 1) // 2], len(runs)


def fmt(fmtstr, v):
    return "-" if v is None else fmtstr.format(v)


def emit(rows, header, markdown):
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(" --- " for _ in header) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    w = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header] + rows:
        print("  ".join(str(x).rjust(n) for x, n in zip(r, w)))


def ratio(a, b, key):
    if not a or not b or a.get(key) is None or not b.get(key):
        return "-"
    return "{:.2f}".format(a[key] / b[key])


def main():
    args = sys.argv[1:]
    d = args.pop(0)
    markdown = "--markdown" in args
    wls = [a for a in args if a and a != "--markdown"]
    rows, nreps = [], 0
    for wl in wls:
        for be, label in BACKENDS:
            j, n = load(d, be, wl)
            if j is None:
                continue
            nreps = max(nreps, n)
            rows.append([wl, label] + [fmt(f, j.get(k)) for _, k, f in COLS])
    print()
    if nreps > 1:
        print(f"(median-IOPS run of {nreps} per cell)")
    emit(rows, ["workload", "back end"] + [c[0] for c in COLS], markdown)
    for a_be, b_be in PAIRS:
        rrows = []
        for wl in wls:
            a, b = load(d, a_be, wl)[0], load(d, b_be, wl)[0]
            if a is None or b is None:
                continue
            rrows.append([wl, ratio(a, b, "iops"), ratio(a, b, "lat_p50_us"),
                          ratio(a, b, "lat_p99_us"), ratio(a, b, "backend_cpu_us_per_req")])
        if not rrows:
            continue
        print()
        r = f"{a_be}/{b_be}"
        emit(rrows, ["workload", f"IOPS {r}", f"p50 {r}", f"p99 {r}", f"CPU/req {r}"],
             markdown)
    if nreps > 1:
        print()
        spread(d, wls, markdown)


def kilo(v):
    return f"{v / 1e3:.1f}k" if v < 1e6 else f"{v / 1e6:.2f}M"


def spread(d, wls, markdown):
    """Per workload: each back end's median IOPS with the range of its
    repetitions, each repetition's ratio for SPREAD_PAIRS (the two back
    ends of the same repetition, sorted: a goal is met only if every one
    meets it), and the median CPU per request."""
    rows = []
    for wl in wls:
        runs = {be: reps(d, be, wl) for be, _ in BACKENDS}
        if not any(runs.values()):
            continue
        row = [wl]
        for be, _ in BACKENDS:
            iops = sorted(j["iops"] for j in runs[be].values())
            row.append(f"{kilo(statistics.median(iops))} ({kilo(iops[0])}-{kilo(iops[-1])})"
                       if iops else "-")
        for a, b in SPREAD_PAIRS:
            rs = sorted(runs[a][r]["iops"] / runs[b][r]["iops"]
                        for r in runs[a] if r in runs[b] and runs[b][r]["iops"])
            row.append(" ".join(f"{x:.2f}" for x in rs) or "-")
        for be, _ in BACKENDS:
            cpu = [j["backend_cpu_us_per_req"] for j in runs[be].values()
                   if j.get("backend_cpu_us_per_req") is not None]
            row.append(f"{statistics.median(cpu):.2f}" if cpu else "-")
        rows.append(row)
    header = (["workload"] + [f"IOPS {label} median (min-max)" for _, label in BACKENDS] +
              [f"{a}/{b} per rep" for a, b in SPREAD_PAIRS] +
              [f"CPU us/req {label} (median)" for _, label in BACKENDS])
    emit(rows, header, markdown)


if __name__ == "__main__":
    main()
