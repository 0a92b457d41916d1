#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Where vhu-net --loopback spends its time under testpmd virtio-user io
# forwarding (the bench.sh load, one back end).
#
#   bench/net/profile.sh [-b BUILD] [-s SIZE] [-d SECONDS] [-c] [-- VHU-NET-ARGS...]
#     -b  meson build dir (default ./build)   -s  frame bytes (default 64)
#     -d  seconds profiled (default 4)
#     -c  valgrind --tool=callgrind instead of perf: exact instruction
#         counts; prints instructions per frame (total / frames forwarded)
# perf samples the cpu-clock software event (no hardware PMU in this VM:
# samples skid to the next instruction, often a function's entry).  The
# data (perf.data or callgrind.out) is kept; its directory is printed.
# Back end on CPU 0, generator on CPU 1; run it under the benchmark lock.
# QSIZE sets virtio-user's queue size (default 1024, as bench.sh).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$here/../../build
size=64
dur=4
cg=
while getopts "b:s:d:ch" opt; do
	case $opt in
	b) build=$OPTARG ;;
	s) size=$OPTARG ;;
	d) dur=$OPTARG ;;
	c) cg=1 ;;
	*)
		sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
NET=$build/devices/net/vhu-net
TESTPMD=$(command -v dpdk-testpmd) || {
	echo "profile.sh: dpdk-testpmd not installed" >&2
	exit 1
}
out=$(mktemp -d /tmp/vhu-net-profile.XXXXXX)
sock=$out/net.sock
BE=
trap '[ -n "$BE" ] && kill -KILL "$BE" 2>/dev/null; jobs -p | xargs -r kill -KILL 2>/dev/null; true' EXIT

if [ -n "$cg" ]; then
	taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
		"$NET" --loopback -s "$sock" "$@" >"$out/backend.log" 2>&1 &
else
	taskset -c 0 "$NET" --loopback -s "$sock" "$@" >"$out/backend.log" 2>&1 &
fi
BE=$!
for _ in $(seq 300); do
	[ -S "$sock" ] && break
	sleep 0.1
done
{
	echo "start tx_first 8"
	sleep 1
	if [ -z "$cg" ]; then
		perf record -q -e cpu-clock -F 4999 -g -o "$out/perf.data" -p "$BE" -- sleep "$dur" \
			>"$out/perf.log" 2>&1
	else
		sleep "$dur"
	fi
	echo stop
	echo quit
} | timeout -s KILL $((dur + 120)) "$TESTPMD" -l 0,1 --main-lcore 0 --no-huge -m 512 --no-pci \
	--file-prefix="vhu-net-prof-$$" --log-level=lib.eal,warning \
	--vdev "net_virtio_user0,path=$sock,queues=1,queue_size=${QSIZE:-1024}" -- -i --total-num-mbufs=32768 \
	--forward-mode=io --txpkts="$size" >"$out/gen.log" 2>&1 || true
kill -TERM "$BE"
wait "$BE" || true
BE=
grep -h "vhu-net0: tx" "$out/backend.log" || true
if [ -n "$cg" ]; then
	frames=$(awk '/vhu-net0: tx/ { print $3 }' "$out/backend.log")
	total=$(callgrind_annotate "$out/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	awk -v t="$total" -v f="$frames" 'BEGIN { if (f > 0) printf "instructions per frame: %.0f (%d / %d)\n", t / f, t, f }'
	callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null | sed -n '20,50p'
else
	perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -5
	perf report -i "$out/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -30
fi
echo "profile.sh: data in $out"
