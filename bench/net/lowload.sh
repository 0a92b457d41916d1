#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Back-end CPU per frame at fixed low frame rates: vhu-net --loopback in
# notification mode against DPDK's vhost PMD (testpmd net_vhost port, io
# forwarding, --port-topology=loop: what comes in goes back out), each
# driven by vhu-net-lowload, a paced virtio-net driver on libvhu-frontend
# that behaves like an interrupt-driven guest (see bench/net/lowload.c).
#
#   bench/net/lowload.sh [-b BUILD] [-R "1000 10000 100000"] [-d SECONDS] [-w SECONDS] [-r N] [-l LEN] [-m]
#     -b  meson build dir (default ./build)
#     -R  frame rates (frames/s)         -d  measured seconds (default 5)
#     -w  warm-up seconds (default 1)    -r  repetitions (default 3)
#     -l  frame bytes (default 64)       -m  Markdown table
# Environment: BACKEND_CPU (0), GEN_CPU (1), BACKENDS ("vhu dpdk"; also
#   "vhu-poll": vhu-net --poll=$POLL_US), POLL_US (50).
#
# Back end on CPU $BACKEND_CPU (DPDK: its forwarding lcore; its main lcore,
# which sleeps at the prompt, on $GEN_CPU), sender on CPU $GEN_CPU.  Runs
# are interleaved (repetition, rate, back end).  The table shows the median
# over repetitions of the back end's CPU time per returned frame (all its
# threads, /proc schedstat), its CPU use, and dpdk / vhu per rate.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$here/../../build
rates="1000 10000 100000"
dur=5
warm=1
reps=3
len=64
md=
while getopts "b:R:d:w:r:l:mh" opt; do
	case $opt in
	b) build=$OPTARG ;;
	R) rates=$OPTARG ;;
	d) dur=$OPTARG ;;
	w) warm=$OPTARG ;;
	r) reps=$OPTARG ;;
	l) len=$OPTARG ;;
	m) md=1 ;;
	*)
		sed -n '3,23p' "$0" | sed 's/^# \{0,1\}//'
		exit 2
		;;
	esac
done
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
BACKENDS=${BACKENDS:-vhu dpdk}
POLL_US=${POLL_US:-50}
NET=$build/devices/net/vhu-net
LOWLOAD=$build/bench/net/vhu-net-lowload
for f in "$NET" "$LOWLOAD"; do
	[ -x "$f" ] || {
		echo "lowload.sh: $f not found (-b BUILD)" >&2
		exit 1
	}
done
case " $BACKENDS " in
*" dpdk "*)
	TESTPMD=$(command -v dpdk-testpmd) || {
		echo "lowload.sh: dpdk-testpmd not installed (BACKENDS=vhu to skip it)" >&2
		exit 1
	}
	;;
esac
PROG=lowload
DPDK_ARGS=--port-topology=loop # what comes in goes back out
# shellcheck source=bench/net/lib.sh
. "$here/lib.sh"

# field KEY FILE: the value after KEY in the tool's output line.
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$2"; }

sock=$WORK/net.sock
for r in $(seq "$reps"); do
	for rate in $rates; do
		for be in $BACKENDS; do
			out=$WORK/$be.$rate.r$r
			start_backend "$be" "$sock"
			if ! taskset -c "$GEN_CPU" "$LOWLOAD" -s "$sock" -r "$rate" -d "$dur" -w "$warm" \
				-l "$len" -p "$BE_PID" >"$out" 2>"$out.err"; then
				echo "lowload.sh: $be at $rate/s failed: $(cat "$out.err")" >&2
			fi
			stop_backend
			echo "lowload.sh: rep $r rate $rate $be: $(cat "$out")" >&2
		done
	done
done

median_f() { sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int((NR + 1) / 2)]; else printf "-" }'; }
# per_rep BE RATE EXPR: EXPR (awk, over the output fields) per repetition.
per_rep() {
	local be=$1 rate=$2 key=$3 r
	for r in $(seq "$reps"); do
		[ -s "$WORK/$be.$rate.r$r" ] && field "$key" "$WORK/$be.$rate.r$r"
	done | median_f
}
# CPU % of one CPU: cpu_us / window.
cpu_pct() {
	local be=$1 rate=$2 r f
	for r in $(seq "$reps"); do
		f=$WORK/$be.$rate.r$r
		[ -s "$f" ] && awk -v c="$(field cpu_us "$f")" -v w="$(field window_s "$f")" \
			'BEGIN { if (w > 0) printf "%.1f\n", c / 1e4 / w }'
	done | median_f
}
# Frames that never came back, over all repetitions.
lost_sum() {
	local be=$1 rate=$2 r
	for r in $(seq "$reps"); do
		[ -s "$WORK/$be.$rate.r$r" ] && field lost "$WORK/$be.$rate.r$r"
	done | awk '{ s += $1 } END { print s + 0 }'
}
# dpdk / vhu CPU per frame, per repetition, then the median.
ratio() {
	local rate=$1 r
	for r in $(seq "$reps"); do
		[ -s "$WORK/vhu.$rate.r$r" ] && [ -s "$WORK/dpdk.$rate.r$r" ] &&
			awk -v a="$(field cpu_us_per_frame "$WORK/dpdk.$rate.r$r")" \
				-v b="$(field cpu_us_per_frame "$WORK/vhu.$rate.r$r")" \
				'BEGIN { if (b > 0) printf "%.4f\n", a / b }'
	done | median_f
}

echo
echo "vhost-user-net loopback, vhu-net-lowload paced sender ($len B frames), ${dur}s measured"
echo "after ${warm}s warm-up, median of $reps; back end on CPU $BACKEND_CPU, sender on CPU $GEN_CPU"
if [ -n "$md" ]; then
	printf '| rate (frames/s) | back end | achieved frames/s | back-end CPU µs/frame | back-end CPU %% | back-end ctx switches/frame | frames lost (all runs) | dpdk / vhu CPU per frame |\n'
	printf '|---|---|---|---|---|---|---|---|\n'
else
	printf '%-8s %-9s %10s %12s %8s %10s %6s %10s\n' rate backend "got/s" "cpu us/fr" "cpu %" "ctxsw/fr" lost "dpdk/vhu"
fi
for rate in $rates; do
	for be in $BACKENDS; do
		got=$(per_rep "$be" "$rate" achieved_pps)
		us=$(per_rep "$be" "$rate" cpu_us_per_frame)
		cs=$(per_rep "$be" "$rate" ctxsw_per_frame)
		pct=$(cpu_pct "$be" "$rate")
		lost=$(lost_sum "$be" "$rate")
		rt=-
		[ "$be" = vhu ] && case " $BACKENDS " in *" dpdk "*) rt=$(ratio "$rate") ;; esac
		if [ -n "$md" ]; then
			printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$rate" "$be" "$got" "$us" "$pct" "$cs" "$lost" "$rt"
		else
			printf '%-8s %-9s %10s %12s %8s %10s %6s %10s\n' "$rate" "$be" "$got" "$us" "$pct" "$cs" "$lost" "$rt"
		fi
	done
done
