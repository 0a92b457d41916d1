#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# User-space instructions per request of a back end's data path, counted by
# valgrind --tool=callgrind: a count, not a time, so the same on a loaded
# machine as on an idle one (within what batching changes).  Only the
# worker threads are counted (--toggle-collect on worker_main), so start-up,
# the protocol handler and the exit path are left out; the total is divided
# by the requests the back end reports at exit.
#
#   bench/icount.sh [-b BUILD] [-n REQUESTS] [-s SECONDS] [-k] [-L] WHAT...
#     WHAT   blk-write  vhu-blk --null, 4 KiB writes, one queue, depth 32
#            blk-read   the same with reads (the null engine zero-fills the
#                       buffer: that memset is counted apart and left out)
#            net        vhu-net --loopback, 64 B frames, DPDK testpmd's
#                       virtio-user port in io forwarding (frames forwarded)
#            net-lowload  vhu-net --loopback, 64 B frames at 50000/s from
#                       vhu-net-lowload (a libvhu-frontend driver: with -L)
#     -b  meson build dir (default ./build)
#     -n  requests for blk (vhu-bench --requests; default 200000)
#     -s  seconds of forwarding for net (default 3)
#     -k  keep the callgrind output (its directory is printed)
#     -L  dirty logging on, as during a live migration (vhu-bench --log,
#         vhu-net-lowload -L; not for net: testpmd does not log)
# Prints one line per WHAT:  "WHAT: IR_PER_REQUEST Ir/request (N requests, ...)".
# The back end runs notification-driven (vhu-blk --poll-us 0; vhu-net's
# default), because polling spins a number of instructions that depends on
# timing; the generator (vhu-bench --poll, testpmd) keeps the queue full.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
nreq=200000
secs=3
keep=
log=
while getopts "b:n:s:kLh" opt; do
	case $opt in
	b) build=$OPTARG ;;
	n) nreq=$OPTARG ;;
	s) secs=$OPTARG ;;
	k) keep=1 ;;
	L) log=1 ;;
	*)
		sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- blk-write net
command -v valgrind >/dev/null || {
	echo "icount.sh: valgrind not installed" >&2
	exit 1
}
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
work=$(mktemp -d /tmp/vhu-icount.XXXXXX)
be=
cleanup() {
	[ -z "$be" ] || kill -KILL "$be" 2>/dev/null || true
	[ -n "$keep" ] && echo "icount.sh: data in $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

# start_cg NAME CMD...: the back end under callgrind, socket $work/NAME.sock.
start_cg() {
	local name=$1
	shift
	rm -f "$work/$name.sock"
	taskset -c "$BACKEND_CPU" valgrind --tool=callgrind --toggle-collect='worker_main*' \
		--callgrind-out-file="$work/$name.cg" "$@" >"$work/$name.log" 2>&1 &
	be=$!
	for _ in $(seq 600); do
		[ -S "$work/$name.sock" ] && return 0
		kill -0 "$be" 2>/dev/null || break
		sleep 0.1
	done
	echo "icount.sh: $name did not come up:" >&2
	cat "$work/$name.log" >&2
	return 1
}

stop_cg() {
	kill -INT "$be"
	wait "$be" || true
	be=
}

# total_ir FILE [EXCLUDE_REGEX]: Ir counted, minus the self cost of the
# functions ("file:function") matching the regex.
total_ir() {
	local total ex=0
	total=$(awk '/^(summary|totals):/ { print $2; exit }' "$1")
	if [ -z "$total" ]; then
		# Written at exit: an empty file means the dump failed (a full disk).
		echo "icount.sh: no profile in $1 (disk full?)" >&2
		echo 0
		return 1
	fi
	if [ -n "${2:-}" ]; then
		ex=$(callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null |
			awk -v re="$2" '$NF ~ /^\[/ && $(NF - 1) ~ re { gsub(",", "", $1); s += $1 }
				END { print s + 0 }')
	fi
	echo $((total - ex))
}

blk() { # blk read|write
	local rw=$1 n ir ex=
	start_cg "blk-$rw" "$build/devices/blk/vhu-blk" --socket-path "$work/blk-$rw.sock" --null \
		--num-queues 1 --threads 1 --poll-us 0
	taskset -c "$GEN_CPU" "$build/bench/vhu-bench" --socket "$work/blk-$rw.sock" --queue-depth 32 \
		--rw "$rw" --poll --warmup 0 --duration 600 --requests "$nreq" ${log:+--log} \
		>"$work/blk-$rw.bench" 2>&1 ||
		{ cat "$work/blk-$rw.bench" >&2; return 1; }
	stop_cg
	n=$(sed -n 's/.*stopped after .* front end(s), \([0-9]*\) requests.*/\1/p' "$work/blk-$rw.log")
	[ "$rw" = read ] && ex=':__?memset[_a-z0-9]*$'
	ir=$(total_ir "$work/blk-$rw.cg" "$ex") || return 1
	awk -v ir="$ir" -v n="$n" -v w="blk-$rw" 'BEGIN {
		if (n > 0) printf "%s: %.0f Ir/request (%d requests, %d Ir)\n", w, ir / n, n, ir
		else { print w ": no requests counted"; exit 1 } }'
}

net() {
	local testpmd
	testpmd=$(command -v dpdk-testpmd) || {
		echo "icount.sh: dpdk-testpmd not installed" >&2
		return 1
	}
	start_cg net "$build/devices/net/vhu-net" --loopback --socket-path "$work/net.sock"
	{
		echo "start tx_first 8"
		sleep "$secs"
		echo stop
		echo quit
	} | timeout -s KILL $((secs + 120)) "$testpmd" -l "$BACKEND_CPU,$GEN_CPU" \
		--main-lcore "$BACKEND_CPU" --no-huge \
		-m 512 --no-pci --file-prefix="vhu-icount-$$" --log-level=lib.eal,warning \
		--vdev "net_virtio_user0,path=$work/net.sock,queues=1,queue_size=1024" -- -i \
		--total-num-mbufs=32768 --forward-mode=io --txpkts=64 >"$work/net.gen" 2>&1 || true
	stop_cg
	per_frame net net
}

# per_frame NAME RUN: Ir per frame vhu-net ($work/RUN.log) sent.
per_frame() {
	local frames ir
	frames=$(awk '/: tx [0-9]/ { print $3; exit }' "$work/$2.log")
	ir=$(total_ir "$work/$2.cg") || return 1
	awk -v ir="$ir" -v n="${frames:-0}" -v w="$1" 'BEGIN {
		if (n > 0) printf "%s: %.0f Ir/frame (%d frames, %d Ir)\n", w, ir / n, n, ir
		else { print w ": no frames counted"; exit 1 } }'
}

# vhu-net-lowload: a fixed number of frames at a fixed rate (the back end
# sleeps between them, as notification-driven vhu-net does anyway).
net_lowload() {
	start_cg netl "$build/devices/net/vhu-net" --loopback --socket-path "$work/netl.sock"
	taskset -c "$GEN_CPU" "$build/bench/net/vhu-net-lowload" -s "$work/netl.sock" -r 50000 \
		-w 0 -d "$secs" ${log:+-L} >"$work/netl.gen" 2>&1 || { cat "$work/netl.gen" >&2; return 1; }
	stop_cg
	per_frame net-lowload netl
}

for what in "$@"; do
	case $what in
	blk-write) blk write ;;
	blk-read) blk read ;;
	net) net ;;
	net-lowload) net_lowload ;;
	*)
		echo "icount.sh: unknown '$what' (blk-write, blk-read, net, net-lowload)" >&2
		exit 2
		;;
	esac
done
