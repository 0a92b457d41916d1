#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# vhu-blk's storage engines against qemu-storage-daemon's drivers on the
# same storage, in one run: a throw-away Ceph cluster (tests/storage/
# ceph-cluster.sh) with one pre-filled image, and an NBD server (qemu-nbd
# exporting a pre-filled raw file on tmpfs).  Back ends:
#   vhu-rbd  vhu-blk rbd:rbd/bench             qsd-rbd  qsd --blockdev driver=rbd
#   vhu-nbd  vhu-blk nbd+unix:///?socket=...   qsd-nbd  qsd --blockdev driver=nbd
# qsd runs its export in an iothread (its fast configuration); both use
# librbd's defaults (rbd_cache on, as QEMU's default cache=writeback).  Workloads:
# 4 KiB random reads and writes, 1 queue at QD1 and QD32, 4 queues at QD8
# each (QD32 in all).  Runs are interleaved (each workload on every back end
# in turn, repeated), so other load hits all alike; the table shows the
# median of the repetitions, the spread (min-max), and the back end's
# CPU per request (the whole process: librbd's and libnbd's threads count).
#
#   bench/storage.sh [-b BUILD] [-d SECONDS] [-w SECONDS] [-r N] [-o OUTDIR] [-E rbd,nbd]
#                    [-a OPTS]
#     -b meson build dir (default ./build)   -d measured seconds (default 5)
#     -w warm-up seconds (default 2)         -r repetitions (default 3)
#     -o keep reports here                   -E engines (default rbd,nbd)
#     -a a third rbd back end, vhu-rbd-a: vhu-blk on rbd:rbd/bench:conf=...:OPTS
#        (librbd options, e.g. rbd_non_blocking_aio=false), in the same run
# Environment: BACKEND_CPU (0), GEN_CPU (1), IMAGE_MIB (256).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
dur=5
warm=2
reps=3
out=
engines=rbd,nbd
alt=
while getopts "b:d:w:r:o:E:a:h" opt; do
	case $opt in
	b) build=$OPTARG ;;
	d) dur=$OPTARG ;;
	w) warm=$OPTARG ;;
	r) reps=$OPTARG ;;
	o) out=$OPTARG ;;
	E) engines=$OPTARG ;;
	a) alt=$OPTARG ;;
	*) sed -n '2,27p' "$0"; exit 2 ;;
	esac
done
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
IMAGE_MIB=${IMAGE_MIB:-256}
bench=$build/bench/vhu-bench
vhu_blk=$build/devices/blk/vhu-blk
for f in "$bench" "$vhu_blk"; do
	[ -x "$f" ] || { echo "storage.sh: $f not built (-b BUILD)" >&2; exit 1; }
done
command -v qemu-storage-daemon >/dev/null || { echo "storage.sh: qemu-storage-daemon missing" >&2; exit 1; }
[ -n "$out" ] || out=$(mktemp -d /tmp/vhu-bench-storage.XXXXXX)
mkdir -p "$out"
rm -f "$out"/*.json
work=$(mktemp -d /dev/shm/vhu-bench-storage.XXXXXX)

workloads=(
	"q1-qd1-read|--rw read --queues 1 --queue-depth 1"
	"q1-qd32-read|--rw read --queues 1 --queue-depth 32"
	"q4-qd8-read|--rw read --queues 4 --queue-depth 8"
	"q1-qd1-write|--rw write --queues 1 --queue-depth 1"
	"q1-qd32-write|--rw write --queues 1 --queue-depth 32"
	"q4-qd8-write|--rw write --queues 4 --queue-depth 8"
)

declare -A pids
backends=()
cleanup() {
	for be in "${!pids[@]}"; do
		kill -TERM "${pids[$be]}" 2>/dev/null || true
	done
	for be in "${!pids[@]}"; do
		wait "${pids[$be]}" 2>/dev/null || true
	done
	if [ -d "$work/ceph" ]; then
		. "$here/../tests/storage/ceph-cluster.sh"
		ceph_cluster_stop "$work/ceph"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

start() { # start NAME CMD...: the back end on BACKEND_CPU, its socket $out/NAME.sock
	local name=$1 sock=$out/$1.sock
	shift
	rm -f "$sock"
	echo "$name: taskset -c $BACKEND_CPU $*" >>"$out/commands.txt"
	taskset -c "$BACKEND_CPU" "$@" >"$out/$name.log" 2>&1 &
	pids[$name]=$!
	for _ in $(seq 300); do
		[ -S "$sock" ] && { backends+=("$name"); return 0; }
		kill -0 "${pids[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "storage.sh: $name did not come up:" >&2
	cat "$out/$name.log" >&2
	exit 1
}

qsd() { # qsd NAME BLOCKDEV
	start "$1" qemu-storage-daemon --object iothread,id=io0 --blockdev "$2" \
		--export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$out/$1.sock,num-queues=4,writable=on,iothread=io0"
}

: >"$out/commands.txt"
dd if=/dev/urandom of="$work/fill.raw" bs=1M count="$IMAGE_MIB" status=none
if [[ ,$engines, == *,rbd,* ]]; then
	. "$here/../tests/storage/ceph-cluster.sh"
	conf=$(ceph_cluster_start "$work/ceph" 2>"$out/ceph-start.log") ||
		{ cat "$out/ceph-start.log" >&2; exit 1; }
	# Filled, so that reads reach the OSD (unwritten objects read as
	# zeroes in librbd without asking it).
	timeout 300 rbd -c "$conf" import --no-progress "$work/fill.raw" rbd/bench
	start vhu-rbd "$vhu_blk" --socket-path "$out/vhu-rbd.sock" --num-queues 4 \
		"rbd:rbd/bench:conf=$conf"
	if [ -n "$alt" ]; then
		start vhu-rbd-a "$vhu_blk" --socket-path "$out/vhu-rbd-a.sock" --num-queues 4 \
			"rbd:rbd/bench:conf=$conf:$alt"
	fi
	qsd qsd-rbd "driver=rbd,node-name=n0,pool=rbd,image=bench,conf=$conf"
fi
if [[ ,$engines, == *,nbd,* ]]; then
	cp "$work/fill.raw" "$work/nbd.raw"
	qemu-nbd -t --shared=8 -f raw -k "$work/nbd.sock" "$work/nbd.raw" >"$out/qemu-nbd.log" 2>&1 &
	pids[qemu-nbd]=$!
	for _ in $(seq 100); do [ -S "$work/nbd.sock" ] && break; sleep 0.1; done
	start vhu-nbd "$vhu_blk" --socket-path "$out/vhu-nbd.sock" --num-queues 4 \
		"nbd+unix:///?socket=$work/nbd.sock"
	qsd qsd-nbd "driver=nbd,node-name=n0,server.type=unix,server.path=$work/nbd.sock"
fi
rm -f "$work/fill.raw"

{
	echo "date: $(date -u +%FT%TZ)"
	echo "nproc: $(nproc); loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "qemu-storage-daemon: $(qemu-storage-daemon --version | head -1); ceph: $(ceph --version | cut -d' ' -f3)"
	echo "runs: $dur s after $warm s warm-up, $reps repetition(s), interleaved; back ends on CPU $BACKEND_CPU, vhu-bench on CPU $GEN_CPU"
} >"$out/machine.txt"

for rep in $(seq "$reps"); do
	for wl in "${workloads[@]}"; do
		name=${wl%%|*}
		args=${wl#*|}
		for be in "${backends[@]}"; do
			echo "== run $rep: $be $name" >&2
			res=$out/$be.$name.r$rep.json
			# shellcheck disable=SC2086
			if ! taskset -c "$GEN_CPU" "$bench" --socket "$out/$be.sock" --json \
				--backend-pid "${pids[$be]}" --block-size 4096 --duration "$dur" \
				--warmup "$warm" $args >"$res" 2>"$out/$be.$name.r$rep.err"; then
				echo "storage.sh: $be $name failed:" >&2
				cat "$out/$be.$name.r$rep.err" >&2
				rm -f "$res"
			fi
		done
	done
done
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
cat "$out/machine.txt"
python3 - "$out" "$alt" "${backends[@]}" <<'PY'
import glob, json, statistics, sys
out, alt, bes = sys.argv[1], sys.argv[2], sys.argv[3:]
wls = ["q1-qd1-read", "q1-qd32-read", "q4-qd8-read",
       "q1-qd1-write", "q1-qd32-write", "q4-qd8-write"]
def runs(be, wl):
    r = []
    for f in sorted(glob.glob(f"{out}/{be}.{wl}.r*.json")):
        try:
            r.append(json.load(open(f)))
        except ValueError:
            pass
    return r
pairs = [("rbd", "vhu-rbd", "qsd-rbd"), ("rbd", "vhu-rbd-a", "qsd-rbd"),
         ("nbd", "vhu-nbd", "qsd-nbd")]
for eng, vhu, qsd in pairs:
    if vhu not in bes or qsd not in bes:
        continue
    what = f" with {alt}" if vhu.endswith("-a") else ""
    print(f"\n### {eng}: vhu-blk{what} vs qemu-storage-daemon (4 KiB random, medians of runs)\n")
    print("| workload | vhu IOPS (min-max) | qsd IOPS (min-max) | IOPS vhu/qsd "
          "| vhu CPU us/req (min-max) | qsd CPU us/req (min-max) | CPU vhu/qsd | vhu p99 us | qsd p99 us |")
    print("|---|---|---|---|---|---|---|---|---|")
    for wl in wls:
        a, b = runs(vhu, wl), runs(qsd, wl)
        if not a or not b:
            continue
        med = lambda r, k: statistics.median(x[k] for x in r)
        ia, ib = med(a, "iops"), med(b, "iops")
        ca, cb = med(a, "backend_cpu_us_per_req"), med(b, "backend_cpu_us_per_req")
        rng = lambda r, k="iops", f=".0f": (f"{min(x[k] for x in r):{f}}-"
                                             f"{max(x[k] for x in r):{f}}")
        cpu = lambda r: rng(r, "backend_cpu_us_per_req", ".1f")
        print(f"| {wl} | {ia:.0f} ({rng(a)}) | {ib:.0f} ({rng(b)}) | {ia / ib:.2f} "
              f"| {ca:.1f} ({cpu(a)}) | {cb:.1f} ({cpu(b)}) | {ca / cb:.2f} "
              f"| {med(a, 'lat_p99_us'):.0f} | {med(b, 'lat_p99_us'):.0f} |")
PY
echo "JSON reports, logs and commands: $out" >&2
