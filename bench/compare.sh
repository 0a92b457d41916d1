#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Run the same vhu-bench workloads against each vhost-user-blk back end in
# one go and print a table, with the ratio vhu/peer per workload.
#   vhu         vhu-blk --null, one worker thread, its defaults (adaptive
#               polling up to 32 us)                          (libvhu)
#   qsd-io      qemu-storage-daemon, null-co export in an iothread (QEMU's
#               adaptive polling, poll-max-ns defaults to 32768) (libvhost-user)
#   vhu-nopoll  vhu-blk --null --poll-us 0 (notifications only)
#   qsd         qemu-storage-daemon with the export in its main loop (no
#               polling)
# Pairs compared: vhu/qsd-io (both polling), vhu/qsd (both defaults) and
# vhu-nopoll/qsd (no polling on either side).  Every back end runs on CPU
# $BACKEND_CPU, the generator on $GEN_CPU.  All back ends are started at
# once (idle ones sleep) and workloads are interleaved across back ends and
# repetitions, so load from other processes hits all of them alike; the
# table shows, per back end and workload, the repetition with the median IOPS.
#
#   bench/compare.sh [-b BUILD] [-d SECONDS] [-w SECONDS] [-r N] [-o OUTDIR] [-m] [-W LIST] [-H NS]
#     -b  meson build dir holding vhu-bench and vhu-blk (default: ./build)
#     -d  measured seconds per run (default 4)      -w  warm-up (default 1)
#     -r  repetitions (default 1)
#     -o  keep the JSON reports here (default: a temp dir, printed)
#     -m  print the tables as Markdown (for docs/performance.md)
#     -W  workloads to run, comma-separated names (default: all, see below)
#     -H  guest halt polling for the run: set the cpuidle-haltpoll driver's
#         guest_halt_poll_ns to NS (Linux's default is 200000; some VMs boot
#         with 0), restored at exit.  In a VM an idle vCPU woken by an
#         eventfd otherwise waits for the host (~18 us here), and that wait
#         paces the notification-mode workloads (docs/performance.md).
#         The setting in force is recorded in machine.txt either way.
# Environment: BACKEND_CPU (0), GEN_CPU (1), DISK_SIZE (bytes, 1 GiB),
#   BACKENDS ("vhu qsd-io vhu-nopoll qsd"), VHU_BLK_ARGS (extra vhu-blk args).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
dur=4
warm=1
reps=1
out=
md=
only=
halt=
while getopts "b:d:w:r:o:mW:H:h" opt; do
	case $opt in
	b) build=$OPTARG ;;
	d) dur=$OPTARG ;;
	w) warm=$OPTARG ;;
	r) reps=$OPTARG ;;
	o) out=$OPTARG ;;
	m) md=1 ;;
	W) only=,$OPTARG, ;;
	H)
		[[ $OPTARG =~ ^[0-9]+$ ]] || { echo "compare.sh: -H takes nanoseconds" >&2; exit 2; }
		halt=$OPTARG
		;;
	*) sed -n '2,36p' "$0"; exit 2 ;;
	esac
done
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
DISK_SIZE=${DISK_SIZE:-1073741824}
BACKENDS=${BACKENDS:-vhu qsd-io vhu-nopoll qsd}
bench=$build/bench/vhu-bench
[ -x "$bench" ] || bench=$build/vhu-bench
vhu_blk=$build/devices/blk/vhu-blk
for f in "$bench" "$vhu_blk"; do
	[ -x "$f" ] || { echo "compare.sh: $f not built (-b BUILD)" >&2; exit 1; }
done
if ! command -v qemu-storage-daemon >/dev/null; then
	echo "compare.sh: qemu-storage-daemon not found (qemu-system-common): vhu only" >&2
	BACKENDS=$(echo "$BACKENDS" | tr ' ' '\n' | grep -v '^qsd' | tr '\n' ' ')
fi

# name | vhu-bench arguments: 4 KiB random reads; notification mode (kick
# eventfd, sleep on the call eventfd) unless the name says poll; the -1k
# and -20k ones are paced to that many requests per second (low load: what
# does each back end spend per request when it is mostly idle?).
workloads=(
	"qd1|--queues 1 --queue-depth 1"
	"qd8|--queues 1 --queue-depth 8"
	"qd32|--queues 1 --queue-depth 32"
	"qd128|--queues 1 --queue-depth 128"
	"qd256|--queues 1 --queue-depth 256"
	"2q-qd32|--queues 2 --queue-depth 32"
	"4q-qd32|--queues 4 --queue-depth 32"
	"qd1-poll|--queues 1 --queue-depth 1 --poll"
	"qd32-poll|--queues 1 --queue-depth 32 --poll"
	"qd1-1k|--queues 1 --queue-depth 1 --rate 1000"
	"qd1-20k|--queues 1 --queue-depth 1 --rate 20000"
)

[ -n "$out" ] || out=$(mktemp -d /tmp/vhu-compare.XXXXXX)
mkdir -p "$out"
rm -f "$out"/*.json
declare -A pids

stop_backends() {
	for be in "${!pids[@]}"; do
		kill "${pids[$be]}" 2>/dev/null || true
		wait "${pids[$be]}" 2>/dev/null || true
		rm -f "$out/$be.sock"
	done
	pids=()
}
haltpoll=/sys/module/haltpoll/parameters/guest_halt_poll_ns
halt_was=
if [ -n "$halt" ]; then
	[ -w "$haltpoll" ] || { echo "compare.sh: -H: $haltpoll not writable (no cpuidle-haltpoll, or not root)" >&2; exit 1; }
	halt_was=$(cat "$haltpoll")
	echo "$halt" >"$haltpoll"
fi
cleanup() {
	stop_backends
	[ -z "$halt_was" ] || echo "$halt_was" >"$haltpoll"
}
trap cleanup EXIT

qsd_cmd() { # qsd_cmd SOCK [iothread]
	local extra=
	[ -z "${2:-}" ] || extra=",iothread=io0"
	echo qemu-storage-daemon ${2:+--object iothread,id=io0} \
		--blockdev "driver=null-co,node-name=n0,size=$DISK_SIZE,read-zeroes=on" \
		--export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$1,num-queues=4,writable=on$extra"
}

start_backend() { # start_backend NAME
	local sock=$out/$1.sock cmd
	rm -f "$sock"
	case $1 in
	vhu) cmd="$vhu_blk --socket-path $sock --null --size $DISK_SIZE --num-queues 4 --threads 1" ;;
	vhu-nopoll) cmd="$vhu_blk --socket-path $sock --null --size $DISK_SIZE --num-queues 4 --threads 1 --poll-us 0" ;;
	qsd) cmd=$(qsd_cmd "$sock") ;;
	qsd-io) cmd=$(qsd_cmd "$sock" iothread) ;;
	*) echo "compare.sh: unknown back end $1" >&2; return 1 ;;
	esac
	[[ $1 != vhu* ]] || cmd="$cmd ${VHU_BLK_ARGS:-}"
	echo "$1: taskset -c $BACKEND_CPU $cmd" >>"$out/commands.txt"
	# shellcheck disable=SC2086
	taskset -c "$BACKEND_CPU" $cmd >"$out/$1.log" 2>&1 &
	pids[$1]=$!
	for _ in $(seq 100); do
		[ -S "$sock" ] && return 0
		kill -0 "${pids[$1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "compare.sh: back end $1 did not come up:" >&2
	cat "$out/$1.log" >&2
	return 1
}

{
	echo "date: $(date -u +%FT%TZ)"
	echo "nproc: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "kernel: $(uname -r)"
	echo "qemu-storage-daemon: $(qemu-storage-daemon --version 2>/dev/null | head -1)"
	echo "loadavg-before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "cpuidle: $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none), guest_halt_poll_ns $(cat "$haltpoll" 2>/dev/null || echo -)${halt:+ (set by -H)}"
	echo "runs: $dur s measured after $warm s warm-up, $reps repetition(s); back ends on CPU $BACKEND_CPU, generator on CPU $GEN_CPU"
} >"$out/machine.txt"
: >"$out/commands.txt"

for be in $BACKENDS; do
	start_backend "$be"
done
for rep in $(seq "$reps"); do
	for wl in "${workloads[@]}"; do
		name=${wl%%|*}
		args=${wl#*|}
		[ -z "$only" ] || [[ $only == *,$name,* ]] || continue
		for be in $BACKENDS; do
			echo "== run $rep: $be $name" >&2
			res=$out/$be.$name.r$rep.json
			cmdline="taskset -c $GEN_CPU $bench --socket $out/$be.sock --json --block-size 4096 --rw read --duration $dur --warmup $warm $args"
			[ "$rep" -gt 1 ] || echo "$be $name: $cmdline" >>"$out/commands.txt"
			# shellcheck disable=SC2086
			if ! $cmdline >"$res" 2>"$out/$be.$name.r$rep.err"; then
				echo "compare.sh: $be $name failed:" >&2
				cat "$out/$be.$name.r$rep.err" >&2
				rm -f "$res"
			fi
		done
	done
done
stop_backends
echo "loadavg-after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

cat "$out/machine.txt"
names=$(printf '%s\n' "${workloads[@]}" | cut -d'|' -f1 | tr '\n' ' ')
# shellcheck disable=SC2086
python3 "$here/table.py" "$out" "${md:+--markdown}" $names
echo "JSON reports and commands: $out" >&2
