#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Profile a back end's hot path under vhu-bench load.
#   bench/profile.sh [-b BUILD] [-d SECONDS] [-t vhu|qsd] [-c] [-- VHU-BENCH ARGS]
#     -b  meson build dir (default ./build)     -d  seconds (default 5)
#     -t  back end: vhu (vhu-blk --null, default) or qsd (qemu-storage-daemon)
#     -c  use valgrind --tool=callgrind instead of perf (slow: ~50x)
# Default load: 4 KiB random reads, one queue, depth 32, notification mode.
# perf samples the cpu-clock software event (works without hardware PMU
# access, e.g. in VMs).  Output: self time by object and by symbol; the raw
# perf.data is kept (perf annotate -i DIR/perf.data -s SYMBOL for lines).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
dur=5
target=vhu
callgrind=
while getopts "b:d:t:ch" opt; do
	case $opt in
	b) build=$OPTARG ;;
	d) dur=$OPTARG ;;
	t) target=$OPTARG ;;
	c) callgrind=1 ;;
	*) sed -n '2,12p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
load=("$@")
[ ${#load[@]} -gt 0 ] || load=(--queues 1 --queue-depth 32 --rw read --block-size 4096)
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
bench=$build/bench/vhu-bench
[ -x "$bench" ] || bench=$build/vhu-bench
out=$(mktemp -d /tmp/vhu-profile.XXXXXX)
sock=$out/backend.sock
pid=

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	true
}
trap cleanup EXIT

case $target in
vhu) cmd=("$build/devices/blk/vhu-blk" --socket-path "$sock" --null --num-queues 4 --threads 1) ;;
qsd) cmd=(qemu-storage-daemon --blockdev "driver=null-co,node-name=n0,size=1073741824,read-zeroes=on"
	--export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$sock,num-queues=4,writable=on") ;;
*) echo "profile.sh: -t vhu|qsd" >&2; exit 2 ;;
esac

if [ -n "$callgrind" ]; then
	taskset -c "$BACKEND_CPU" valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
		"${cmd[@]}" >"$out/backend.log" 2>&1 &
else
	taskset -c "$BACKEND_CPU" "${cmd[@]}" >"$out/backend.log" 2>&1 &
fi
pid=$!
for _ in $(seq 300); do
	[ -S "$sock" ] && break
	sleep 0.1
done
[ -S "$sock" ] || { cat "$out/backend.log" >&2; exit 1; }

if [ -z "$callgrind" ]; then
	perf record -q -e cpu-clock -F 4999 -g -o "$out/perf.data" -p "$pid" -- sleep "$dur" \
		>"$out/perf.log" 2>&1 &
	perf_pid=$!
	sleep 0.2
fi
taskset -c "$GEN_CPU" "$bench" --socket "$sock" --warmup 0 --duration "$dur" \
	--backend-pid "$pid" "${load[@]}"
if [ -z "$callgrind" ]; then
	wait "$perf_pid" || true
	echo "== where the back end's CPU time goes (by object)"
	perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -8
	echo "== self time by symbol (top 30)"
	perf report -i "$out/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -30
else
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=
	callgrind_annotate "$out/callgrind.out" 2>/dev/null | head -40
fi
echo "raw data: $out" >&2
