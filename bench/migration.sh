#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# What dirty logging (a live migration in progress) costs the back ends,
# in wall-clock throughput: runs with logging off and on, interleaved,
# ROUNDS times each, medians and spread (min..max).  Run it on a quiet
# machine; instruction counts (any machine): bench/icount.sh [-L].
#
#   bench/migration.sh [-b BUILD] [-r ROUNDS] [-d SECONDS]
#     blk  vhu-blk --null (default polling), vhu-bench 4 KiB random reads and
#          writes, 1 queue, QD32; logging on = vhu-bench --log (a log region,
#          VHOST_F_LOG_ALL, VRING_F_LOG, the log collected every 100 ms)
#     net  vhu-net --loopback, vhu-net-lowload 64-byte frames as fast as they
#          go back (-r 1000000); logging on = -L
#   Back end on CPU $BACKEND_CPU (0), generator on $GEN_CPU (1).
# Prints a markdown table: off, on, on/off for IOPS or frames/s, and the
# back end's CPU per request.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
rounds=5
secs=5
while getopts "b:r:d:h" opt; do
	case $opt in
	b) build=$OPTARG ;;
	r) rounds=$OPTARG ;;
	d) secs=$OPTARG ;;
	*)
		sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 2
		;;
	esac
done
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
work=$(mktemp -d /tmp/vhu-migbench.XXXXXX)
be=
cleanup() {
	[ -z "$be" ] || kill "$be" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

start_be() { # SOCK CMD...
	local sock=$1
	shift
	rm -f "$sock"
	taskset -c "$BACKEND_CPU" "$@" --socket-path "$sock" >"$work/be.log" 2>&1 &
	be=$!
	for _ in $(seq 100); do
		[ -S "$sock" ] && return 0
		sleep 0.05
	done
	cat "$work/be.log" >&2
	return 1
}

stop_be() {
	kill "$be" 2>/dev/null || true
	wait "$be" 2>/dev/null || true
	be=
}

# One blk run: prints "IOPS US_PER_REQ".
blk_run() { # rw log(0|1)
	local out
	start_be "$work/blk.sock" "$build/devices/blk/vhu-blk" --null --num-queues 1
	out=$(taskset -c "$GEN_CPU" "$build/bench/vhu-bench" --socket "$work/blk.sock" --rw "rand$1" \
		--queue-depth 32 --duration "$secs" --warmup 1 $([ "$2" = 1 ] && echo --log))
	stop_be
	echo "$out" | awk '/IOPS/ { iops = $2 } /backend/ { for (i = 1; i <= NF; i++)
		if ($i == "us" && $(i + 1) == "CPU/request,") us = $(i - 1) } END { print iops, us }'
}

# One net run: prints "PPS US_PER_FRAME".
net_run() { # log(0|1)
	local out
	start_be "$work/net.sock" "$build/devices/net/vhu-net" --loopback
	out=$(taskset -c "$GEN_CPU" "$build/bench/net/vhu-net-lowload" -s "$work/net.sock" -r 1000000 \
		-d "$secs" -w 1 $([ "$1" = 1 ] && echo -L))
	stop_be
	echo "$out" | awk '{ for (i = 1; i < NF; i++) { if ($i == "achieved_pps") p = $(i + 1)
		if ($i == "cpu_us_per_frame") u = $(i + 1) } } END { print p, u }'
}

# stats FILE COLUMN: "median min..max".
stats() {
	sort -g -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.6g %.6g..%.6g\n", m, v[1], v[NR] }'
}

row() { # NAME UNIT OFF_FILE ON_FILE
	local off on
	read -r off _ < <(stats "$3" 1)
	read -r on _ < <(stats "$4" 1)
	printf "| %s | %s %s | %s %s | %.3f | %s | %s |\n" "$1" "$(stats "$3" 1)" "$2" \
		"$(stats "$4" 1)" "$2" "$(awk -v a="$on" -v b="$off" 'BEGIN { print a / b }')" \
		"$(stats "$3" 2)" "$(stats "$4" 2)"
}

echo "| workload | logging off (median, spread) | logging on | on/off | back-end us/req off | on |"
echo "| --- | --- | --- | --- | --- | --- |"
for rw in read write; do
	: >"$work/off" && : >"$work/on"
	for _ in $(seq "$rounds"); do # interleaved: off, on, off, on, ...
		blk_run "$rw" 0 >>"$work/off"
		blk_run "$rw" 1 >>"$work/on"
	done
	row "vhu-blk --null, 4 KiB rand$rw, QD32" IOPS "$work/off" "$work/on"
done
: >"$work/off" && : >"$work/on"
for _ in $(seq "$rounds"); do
	net_run 0 >>"$work/off"
	net_run 1 >>"$work/on"
done
row "vhu-net --loopback, 64 B frames" fps "$work/off" "$work/on"
echo
echo "($rounds rounds of $secs s each, interleaved; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
