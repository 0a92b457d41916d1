#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Medians, ranges and per-repetition ratios of a bench/compare.sh run.

    python3 bench/spread.py OUTDIR      (compare.sh -o OUTDIR)

compare.sh's own tables show the repetition with the median IOPS; this
prints, per workload, each back end's median IOPS with its range
(min-max), each repetition's ratio vhu / qsd-io and vhu / vhu-nopoll
(the two back ends of the *same* repetition, sorted), and the median
back-end CPU per request.  A goal is met only if every repetition's ratio
meets it."""
import glob
import json
import os
import statistics as st
import sys

ORDER = ["qd1", "qd8", "qd32", "qd128", "qd256", "2q-qd32", "4q-qd32",
         "qd1-poll", "qd32-poll", "qd1-1k", "qd1-20k"]
BACKENDS = ["vhu", "qsd-io", "vhu-nopoll", "qsd"]


def load(outdir):
    rows = {}
    for f in glob.glob(os.path.join(outdir, "*.json")):
        b, w, r = os.path.basename(f)[:-5].rsplit(".", 2)
        try:
            with open(f) as fh:
                rows.setdefault((w, b), {})[r] = json.load(fh)
        except (OSError, ValueError):
            continue  # a run that failed left no report
    return rows


def fmt(v):
    return f"{v / 1e3:.1f}k" if v < 1e6 else f"{v / 1e6:.2f}M"


def ratios(per, a, b):
    rs = sorted(per[a][r]["iops"] / per[b][r]["iops"]
                for r in per.get(a, {}) if r in per.get(b, {}))
    return " ".join(f"{x:.2f}" for x in rs) or "-"


def main(outdir):
    rows = load(outdir)
    names = [w for w in ORDER if any(k[0] == w for k in rows)]
    names += sorted({k[0] for k in rows} - set(names))
    print("| workload | " + " | ".join(f"{b} IOPS median (min-max)" for b in BACKENDS) +
          " | vhu/qsd-io per rep | vhu/vhu-nopoll per rep | CPU us/req vhu / qsd-io / vhu-nopoll |")
    print("|" + "---|" * (len(BACKENDS) + 4))
    for w in names:
        per = {b: rows.get((w, b), {}) for b in BACKENDS}
        cells = []
        for b in BACKENDS:
            iops = sorted(j["iops"] for j in per[b].values())
            cells.append(f"{fmt(st.median(iops))} ({fmt(iops[0])}-{fmt(iops[-1])})" if iops else "-")
        cpu = []
        for b in ("vhu", "qsd-io", "vhu-nopoll"):
            v = [j["backend_cpu_us_per_req"] for j in per[b].values()]
            cpu.append(f"{st.median(v):.2f}" if v else "-")
        print(f"| {w} | " + " | ".join(cells) +
              f" | {ratios(per, 'vhu', 'qsd-io')} | {ratios(per, 'vhu', 'vhu-nopoll')} | {' / '.join(cpu)} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
