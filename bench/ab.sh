#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Interleaved A/B of back-end variants (e.g. two vhu-blk builds) under the
# same vhu-bench workloads as bench/compare.sh: every variant starts once
# (on CPU $BACKEND_CPU), then repetitions x workloads x variants run in
# turn (generator on CPU $GEN_CPU), so that outside load hits all alike.
# Prints, per workload and variant, the median-IOPS run's IOPS with the
# min and max of the repetitions, and medians of the other columns.
#
#   bench/ab.sh [-b BUILD] [-d SECONDS] [-r N] [-o OUTDIR] [-W "qd32 qd128"] NAME=CMD...
#     CMD is the back end's command line; the word SOCK in it is replaced by
#     its socket path, e.g.
#   bench/ab.sh -W "qd32 qd128" \
#     "old=/tmp/old/devices/blk/vhu-blk --socket-path SOCK --null --threads 1" \
#     "new=build/devices/blk/vhu-blk --socket-path SOCK --null --threads 1"
# Workloads: qd1 qd8 qd32 qd128 4q-qd32 qd1-poll qd32-poll (4 KiB reads).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
dur=2
reps=3
out=
wls="qd1 qd32 qd128 4q-qd32"
while getopts "b:d:r:o:W:h" opt; do
	case $opt in
	b) build=$OPTARG ;;
	d) dur=$OPTARG ;;
	r) reps=$OPTARG ;;
	o) out=$OPTARG ;;
	W) wls=$OPTARG ;;
	*) sed -n '2,18p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { sed -n '2,18p' "$0"; exit 2; }
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
bench=$build/bench/vhu-bench
[ -x "$bench" ] || { echo "ab.sh: $bench not built (-b BUILD)" >&2; exit 1; }
[ -n "$out" ] || out=$(mktemp -d /tmp/vhu-ab.XXXXXX)
mkdir -p "$out"
rm -f "$out"/*.json
declare -A pids
declare -A wlargs=(
	[qd1]="--queues 1 --queue-depth 1" [qd8]="--queues 1 --queue-depth 8"
	[qd32]="--queues 1 --queue-depth 32" [qd128]="--queues 1 --queue-depth 128"
	[4q-qd32]="--queues 4 --queue-depth 32"
	[qd1-poll]="--queues 1 --queue-depth 1 --poll"
	[qd32-poll]="--queues 1 --queue-depth 32 --poll")
names=()
stop() {
	for n in "${!pids[@]}"; do
		kill "${pids[$n]}" 2>/dev/null || true
		wait "${pids[$n]}" 2>/dev/null || true
	done
	pids=()
}
trap stop EXIT
for spec in "$@"; do
	n=${spec%%=*}
	cmd=${spec#*=}
	names+=("$n")
	rm -f "$out/$n.sock"
	echo "$n: taskset -c $BACKEND_CPU ${cmd//SOCK/$out/$n.sock}" >>"$out/commands.txt"
	# shellcheck disable=SC2086
	taskset -c "$BACKEND_CPU" ${cmd//SOCK/$out/$n.sock} >"$out/$n.log" 2>&1 &
	pids[$n]=$!
done
for n in "${names[@]}"; do
	for _ in $(seq 100); do [ -S "$out/$n.sock" ] && break; sleep 0.1; done
	[ -S "$out/$n.sock" ] || { echo "ab.sh: $n did not come up" >&2; cat "$out/$n.log" >&2; exit 1; }
done
echo "$(date -u +%FT%TZ) loadavg-before $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$reps"); do
	for wl in $wls; do
		for n in "${names[@]}"; do
			# shellcheck disable=SC2086
			taskset -c "$GEN_CPU" "$bench" --socket "$out/$n.sock" --json --block-size 4096 \
				--rw read --duration "$dur" --warmup 0.5 ${wlargs[$wl]} \
				>"$out/$n.$wl.r$r.json" 2>"$out/$n.$wl.r$r.err" || rm -f "$out/$n.$wl.r$r.json"
		done
	done
done
stop
echo "$(date -u +%FT%TZ) loadavg-after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$wls" "${names[@]}" <<'PY'
import glob, json, statistics as st, sys
out, wls, names = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
print(f"{'workload':9} {'variant':10} {'IOPS':>9} {'min':>9} {'max':>9} {'p50 us':>7} {'p99 us':>8}"
      f" {'CPU us/req':>10} {'ctxsw/req':>9} {'kicks/req':>9} {'calls/req':>9}")
for wl in wls:
    for n in names:
        rs = []
        for p in glob.glob(f"{out}/{n}.{wl}.r*.json"):
            try:
                rs.append(json.load(open(p)))
            except (OSError, ValueError):
                pass
        if not rs:
            print(f"{wl:9} {n:10} no data")
            continue
        rs.sort(key=lambda j: j["iops"])
        med = lambda k: st.median(j[k] for j in rs)
        print(f"{wl:9} {n:10} {rs[len(rs) // 2]['iops']:9.0f} {rs[0]['iops']:9.0f} {rs[-1]['iops']:9.0f}"
              f" {med('lat_p50_us'):7.1f} {med('lat_p99_us'):8.1f} {med('backend_cpu_us_per_req'):10.2f}"
              f" {med('backend_ctxsw_per_req'):9.3f} {med('kicks_per_req'):9.3f} {med('calls_per_req'):9.3f}")
PY
echo "JSON reports: $out" >&2
