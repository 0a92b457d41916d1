#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Packets per second through a vhost-user-net loopback, driven by DPDK
# testpmd's net_virtio_user port, for vhu-net and for DPDK's own vhost PMD,
# in the same run, with the ratio.
#
#   generator  testpmd, one net_virtio_user port (queue_size 1024), io
#              forwarding started with "start tx_first B": B bursts of 32
#              frames circulate (what comes back is sent again), so the
#              rate is what the back end sustains with 32*B frames in
#              flight.  Its forwarding lcore polls on CPU $GEN_CPU.
#   back ends  (all on CPU $BACKEND_CPU)
#     vhu        vhu-net --loopback             (kick/call driven, libvhu)
#     vhu-poll   vhu-net --loopback --poll=$POLL_US   (adaptive polling)
#     dpdk       testpmd --vdev net_vhost0 io forwarding on its one port:
#                the vhost PMD returns each frame (a busy-polling lcore)
#
# The rate is the generator's received frames between two "show port
# stats" over the measured window, after a warm-up.  Runs are interleaved (back end, size,
# repetition) so outside load hits every back end alike; the table shows
# the median rate of the repetitions, the median of the per-repetition
# ratios to dpdk (each back end and dpdk ran back to back), and the back
# end's CPU use (user + system time over the measured window, % of a CPU).
#
#   bench/net/bench.sh [-b BUILD] [-d SECONDS] [-w SECONDS] [-r N] [-s "64 1500"] [-B BURSTS] [-m]
#     -b  meson build dir holding devices/net/vhu-net (default ./build)
#     -d  measured seconds (default 5)   -w  warm-up seconds (default 2)
#     -r  repetitions (default 3)        -s  frame sizes (default "64 1500")
#     -B  bursts in flight (default 8)   -m  Markdown table
# Environment: BACKEND_CPU (0), GEN_CPU (1), BACKENDS ("vhu vhu-poll dpdk"),
#   POLL_US (50), NET_B (another vhu-net binary, back end "vhu-b", for A/B).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$here/../../build
dur=5
warm=2
reps=3
sizes="64 1500"
bursts=8
md=
while getopts "b:d:w:r:s:B:mh" opt; do
	case $opt in
	b) build=$OPTARG ;;
	d) dur=$OPTARG ;;
	w) warm=$OPTARG ;;
	r) reps=$OPTARG ;;
	s) sizes=$OPTARG ;;
	B) bursts=$OPTARG ;;
	m) md=1 ;;
	*)
		sed -n '3,30p' "$0" | sed 's/^# \{0,1\}//'
		exit 2
		;;
	esac
done
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
BACKENDS=${BACKENDS:-vhu vhu-poll dpdk}
POLL_US=${POLL_US:-50}
NET=$build/devices/net/vhu-net
TESTPMD=$(command -v dpdk-testpmd) || {
	echo "bench.sh: dpdk-testpmd not installed" >&2
	exit 1
}
[ -x "$NET" ] || {
	echo "bench.sh: $NET not found (-b BUILD)" >&2
	exit 1
}
PROG=bench
# shellcheck source=bench/net/lib.sh
. "$here/lib.sh"

# generate SOCK SIZE OUT: Rx-pps of the measured window into OUT.
generate() {
	local sock=$1 size=$2 out=$3
	rm -f "$WORK/gen.log"
	{
		# testpmd reads the pipe only once initialised (seconds on a busy
		# machine): time the warm-up and window from when it forwards.
		echo "start tx_first $bursts"
		wait_log "$WORK/gen.log" "packet forwarding - ports"
		sleep "$warm"
		echo "show port stats 0"
		cpu_ticks "$BE_PID" >"$WORK/t0"
		date +%s.%N >"$WORK/w0"
		sleep "$dur"
		echo "show port stats 0"
		cpu_ticks "$BE_PID" >"$WORK/t1"
		date +%s.%N >"$WORK/w1"
		echo stop
		echo quit
	} | timeout -s KILL $((warm + dur + 120)) stdbuf -oL "$TESTPMD" -l "$lcores" --main-lcore "$BACKEND_CPU" \
		--no-huge -m 512 --no-pci --file-prefix="vhu-bench-gen-$$" --log-level=lib.eal,warning \
		--vdev "net_virtio_user0,path=$sock,queues=1,queue_size=${QSIZE:-1024}${VU_EXTRA:-}" -- -i \
		--total-num-mbufs=32768 --forward-mode=io --txpkts="$size" >"$WORK/gen.log" 2>&1 || true
	# Frames received between the two "show port stats" (RX-packets of the
	# NIC statistics), over the window.
	local win
	win=$(cat "$WORK/w0" "$WORK/w1" 2>/dev/null | awk -v d="$dur" '{ v[++n] = $1 }
		END { print (n == 2 && v[2] > v[1]) ? v[2] - v[1] : d }')
	awk -v d="$win" '/NIC statistics/ { nic = 1 } nic && /RX-packets:/ { v[++n] = $2; nic = 0 }
		END { if (n >= 2) printf "%d\n", (v[2] - v[1]) / d }' "$WORK/gen.log" >"$out"
	[ -s "$out" ] || {
		echo "bench.sh: generator gave no rate; its log:" >&2
		tail -20 "$WORK/gen.log" >&2
		echo 0 >"$out"
	}
}

# wait_log FILE PATTERN: until FILE has a line matching PATTERN (60 s).
wait_log() {
	for _ in $(seq 600); do
		grep -aq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench.sh: no '$2' in $1" >&2
	return 1
}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

sock=$WORK/net.sock
for r in $(seq "$reps"); do
	for size in $sizes; do
		for be in $BACKENDS; do
			start_backend "$be" "$sock"
			rm -f "$WORK"/t0 "$WORK"/t1 "$WORK"/w0 "$WORK"/w1
			generate "$sock" "$size" "$WORK/$be.$size.r$r"
			# Back-end CPU over the measured window (% of one CPU).
			awk -v hz="$(getconf CLK_TCK)" 'FNR == 1 { v[++n] = $1 }
				END { if (n == 4 && v[4] > v[3]) printf "%.0f\n", 100 * (v[2] - v[1]) / hz / (v[4] - v[3]); else print 0 }' \
				"$WORK/t0" "$WORK/t1" "$WORK/w0" "$WORK/w1" >"$WORK/$be.$size.cpu$r" 2>/dev/null || echo 0 >"$WORK/$be.$size.cpu$r"
			stop_backend
			# Frames the back end dropped (DPDK's io forwarding drops when
			# the virtio rx ring is full; vhu-net waits instead).
			drops=$(awk '/Forward statistics for port/ { f = 1 } f && /TX-dropped:/ { print $4; exit }' \
				"$WORK/be.log")
			echo "bench.sh: rep $r size $size $be: $(cat "$WORK/$be.$size.r$r") pps," \
				"back end CPU $(cat "$WORK/$be.$size.cpu$r")%${drops:+, dropped $drops}" >&2
		done
	done
done

median() { sort -n "$@" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] + 0 }'; }

echo
echo "vhost-user-net loopback, testpmd virtio-user io forwarding, $((bursts * 32)) frames in flight,"
echo "${dur}s measured after ${warm}s warm-up, median of $reps; back end on CPU $BACKEND_CPU, generator on CPU $GEN_CPU"
if [ -n "$md" ]; then
	printf '| frame | back end | Mpps | vs dpdk (median of per-run ratios) | back end CPU %% | back-end CPU ns/frame |\n'
	printf '|---|---|---|---|---|---|\n'
else
	printf '%-6s %-9s %10s %8s %8s %8s\n' frame backend Mpps "vs dpdk" "be CPU%" "ns/frame"
fi
# Ratio: per repetition (back end and dpdk ran back to back, under the same
# outside load), then the median of those.
ratio_of() {
	local be=$1 size=$2 r
	for r in $(seq "$reps"); do
		awk -v a="$(cat "$WORK/$be.$size.r$r")" -v b="$(cat "$WORK/dpdk.$size.r$r")" \
			'BEGIN { if (b > 0) printf "%.4f\n", a / b }'
	done | median_f
}
# Back-end CPU per frame (ns): per repetition, then the median.
ns_per_frame() {
	local be=$1 size=$2 r
	for r in $(seq "$reps"); do
		awk -v p="$(cat "$WORK/$be.$size.r$r")" -v c="$(cat "$WORK/$be.$size.cpu$r")" \
			'BEGIN { if (p > 0) printf "%.1f\n", c / 100 * 1e9 / p }'
	done | median_f
}
median_f() { sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int((NR + 1) / 2)] }'; }

for size in $sizes; do
	for be in $BACKENDS; do
		pps=$(median "$WORK/$be.$size".r*)
		ratio=-
		case " $BACKENDS " in *" dpdk "*) ratio=$(ratio_of "$be" "$size") ;; esac
		[ -n "$ratio" ] || ratio=-
		mpps=$(awk -v a="$pps" 'BEGIN { printf "%.3f", a / 1e6 }')
		cpu=$(median "$WORK/$be.$size".cpu*)
		nspp=$(ns_per_frame "$be" "$size")
		if [ -n "$md" ]; then
			printf '| %s B | %s | %s | %s | %s | %s |\n' "$size" "$be" "$mpps" "$ratio" "$cpu" "$nspp"
		else
			printf '%-6s %-9s %10s %8s %8s %8s\n' "$size" "$be" "$mpps" "$ratio" "$cpu" "$nspp"
		fi
	done
done
