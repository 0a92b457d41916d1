#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Many disks in one process (issue 14): the tables of docs/performance.md's
# "Many disks in one process" section, in one command.
#
# Part 1, 16 busy disks: 16 vhu-bench front ends (one per disk, 4 KiB
# random reads, queue depth 8, notification mode) all at once against
#   vhu-1       one vhu-blk process, --disk x16 --null, 1 pool thread
#   vhu-2       the same with 2 pool threads
#   qsd-1       one qemu-storage-daemon, 16 vhost-user-blk exports of
#               null-co devices, all in 1 iothread
#   qsd-2       the same spread over 2 iothreads
#   vhu-procs   16 vhu-blk processes, one disk and one worker thread each
#               (how many disks were served before the pool)
# Both back ends at their defaults (adaptive polling: vhu-blk --poll-us 32,
# QEMU's poll-max-ns 32768).  Figures: total IOPS (sum of the 16 front
# ends), back-end CPU (CPU-seconds per second of the process, the median of
# what the 16 front ends measured over their windows), CPU per request and
# IOPS per CPU; the ratio of vhu's IOPS per CPU to the qsd run with the
# same thread count (the goal is >= 2).  Runs are interleaved across back
# ends and repeated; each cell is the median over repetitions with the
# spread (min-max) of the key column.
#
# Part 2, 64 idle disks: one vhu-blk with --disk x64 (64 MiB sparse
# files, io_uring engine, default threads) without front ends, then with a
# front end connected to every disk (vhu-bench --idle: rings set up,
# nothing submitted), then with each front end sending one request per
# second; the same for qemu-storage-daemon (64 exports of file images, 1
# iothread) and for 64 single-disk vhu-blk processes.  Figures: threads, resident memory
# (RSS, and its private part: RSS without guest memory and shared
# libraries), open fds, and CPU used over 10 s (percent of one CPU).
#
#   bench/pool.sh [-b BUILD] [-d SECONDS] [-r N] [-o OUTDIR] [-m] [-p PARTS]
#     -b  meson build dir holding vhu-bench and vhu-blk (default: ./build)
#     -d  measured seconds per busy run (default 5, after 1 s warm-up)
#     -r  repetitions of part 1 (default 3)
#     -o  keep logs and JSON reports here (default: a temp dir, printed)
#     -m  Markdown tables (for docs/performance.md)
#     -p  parts to run: busy, idle or both (default busy,idle)
# Environment: BUSY (back ends of part 1, default "vhu-1 vhu-2 qsd-1 qsd-2
#   vhu-procs"), IDLE (of part 2, default "vhu qsd vhu-procs"),
#   DISKS (16), IDLE_DISKS (64), DEPTH (8), VHU_BLK_ARGS (more vhu-blk
#   arguments, e.g. --poll-us 0).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
dur=5
reps=3
out=
md=
parts=busy,idle
while getopts "b:d:r:o:mp:h" opt; do
	case $opt in
	b) build=$OPTARG ;;
	d) dur=$OPTARG ;;
	r) reps=$OPTARG ;;
	o) out=$OPTARG ;;
	m) md=1 ;;
	p) parts=$OPTARG ;;
	*) sed -n '2,40p' "$0"; exit 2 ;;
	esac
done
BUSY=${BUSY:-vhu-1 vhu-2 qsd-1 qsd-2 vhu-procs}
IDLE=${IDLE:-vhu qsd vhu-procs}
DISKS=${DISKS:-16}
IDLE_DISKS=${IDLE_DISKS:-64}
DEPTH=${DEPTH:-8}
bench=$build/bench/vhu-bench
vhu_blk=$build/devices/blk/vhu-blk
for f in "$bench" "$vhu_blk"; do
	[ -x "$f" ] || { echo "pool.sh: $f not built (-b BUILD)" >&2; exit 1; }
done
if ! command -v qemu-storage-daemon >/dev/null; then
	echo "pool.sh: qemu-storage-daemon not found (qemu-system-common): vhu only" >&2
	BUSY=$(echo "$BUSY" | tr ' ' '\n' | grep -v '^qsd' | tr '\n' ' ')
	IDLE=$(echo "$IDLE" | tr ' ' '\n' | grep -v '^qsd' | tr '\n' ' ')
fi
[ -n "$out" ] || out=$(mktemp -d /tmp/vhu-pool.XXXXXX)
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.sock
# 64 front ends and 64 disks want more than 1024 fds here too.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
# SIGTERM, and SIGKILL what is still there 5 s later (qemu-storage-daemon
# 7.2 with many vhost-user-blk exports in an iothread may never exit on
# SIGTERM).
stop_all() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PIDS=()
	rm -f "$out"/*.sock
}
trap stop_all EXIT

wait_sockets() { # N PREFIX: sockets PREFIX0..N-1 exist
	local i
	for _ in $(seq 300); do
		for ((i = 0; i < $1; i++)); do
			[ -S "$2$i.sock" ] || break
		done
		[ "$i" = "$1" ] && return 0
		sleep 0.1
	done
	echo "pool.sh: back end did not come up; logs in $out" >&2
	return 1
}

# start NAME N KIND: back end NAME serving N disks on $out/NAME-d<i>.sock;
# KIND null (null devices) or file ($out/img<i>, 64 MiB sparse).
start() {
	local name=$1 n=$2 kind=$3 i cmd=() args=() threads=${1##*-}
	local sock=$out/$name-d
	for ((i = 0; i < n; i++)); do
		[ "$kind" = null ] || [ -e "$out/img$i" ] || truncate -s 64M "$out/img$i"
	done
	case $name in
	vhu-procs)
		for ((i = 0; i < n; i++)); do
			if [ "$kind" = null ]; then
				args=(--null --size 1G)
			else
				args=("$out/img$i")
			fi
			# shellcheck disable=SC2086 # split on purpose
			"$vhu_blk" --socket-path "$sock$i.sock" --threads 1 "${args[@]}" ${VHU_BLK_ARGS:-} \
				>>"$out/$name.log" 2>&1 &
			PIDS+=($!)
		done
		echo "$name: $n x $vhu_blk --socket-path $sock<i>.sock --threads 1 ${args[*]}" \
			>>"$out/commands.txt"
		wait_sockets "$n" "$sock"
		return
		;;
	vhu*)
		cmd=("$vhu_blk")
		# shellcheck disable=SC2206 # split on purpose
		cmd+=(${VHU_BLK_ARGS:-})
		[ "$threads" = vhu ] || cmd+=(--threads "$threads")
		[ "$kind" = file ] || cmd+=(--null --size 1G)
		for ((i = 0; i < n; i++)); do
			if [ "$kind" = null ]; then
				cmd+=(--disk "socket=$sock$i.sock")
			else
				cmd+=(--disk "socket=$sock$i.sock,image=$out/img$i")
			fi
		done
		;;
	qsd*)
		[ "$threads" = qsd ] && threads=1
		cmd=(qemu-storage-daemon)
		for ((i = 0; i < threads; i++)); do
			cmd+=(--object "iothread,id=io$i")
		done
		for ((i = 0; i < n; i++)); do
			if [ "$kind" = null ]; then
				cmd+=(--blockdev "driver=null-co,node-name=n$i,size=1073741824,read-zeroes=on")
			else
				cmd+=(--blockdev "driver=file,node-name=n$i,filename=$out/img$i,cache.direct=on")
			fi
			cmd+=(--export "type=vhost-user-blk,id=e$i,node-name=n$i,addr.type=unix,addr.path=$sock$i.sock,writable=on,iothread=io$((i % threads))")
		done
		;;
	esac
	echo "$name: ${cmd[*]}" >>"$out/commands.txt"
	"${cmd[@]}" >"$out/$name.log" 2>&1 &
	PIDS+=($!)
	wait_sockets "$n" "$sock"
}

pids_of() { # NAME: the back end's process ids
	case $1 in
	vhu-procs) echo "${PIDS[@]}" ;;
	*) echo "${PIDS[-1]}" ;;
	esac
}

{
	echo "date: $(date -u +%FT%TZ)"
	echo "nproc: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "kernel: $(uname -r)"
	command -v qemu-storage-daemon >/dev/null &&
		echo "qemu-storage-daemon: $(qemu-storage-daemon --version | head -1)"
	echo "loadavg-before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"
: >"$out/commands.txt"

# ---- part 1: busy -----------------------------------------------------------

busy_run() { # NAME REP
	local name=$1 rep=$2 i p=()
	start "$name" "$DISKS" null
	for ((i = 0; i < DISKS; i++)); do
		"$bench" --socket "$out/$name-d$i.sock" --json --block-size 4096 --rw read \
			--queue-depth "$DEPTH" --duration "$dur" --warmup 1 \
			>"$out/busy.$name.r$rep.d$i.json" 2>"$out/busy.$name.r$rep.d$i.err" &
		p+=($!)
	done
	for pid in "${p[@]}"; do
		wait "$pid" || echo "pool.sh: a front end of $name failed (see $out/busy.$name.r$rep.*.err)" >&2
	done
	stop_all
}

if [[ ,$parts, == *,busy,* ]]; then
	echo "front ends: $bench --socket SOCK --json --block-size 4096 --rw read --queue-depth $DEPTH --duration $dur --warmup 1 (x$DISKS at once; the back-end CPU each reports is its socket peer's)" >>"$out/commands.txt"
	read -r -a names <<<"$BUSY"
	for rep in $(seq "$reps"); do
		# Rotate the order so that no back end always runs first.
		for k in "${!names[@]}"; do
			name=${names[$(((k + rep - 1) % ${#names[@]}))]}
			echo "== busy run $rep: $name" >&2
			busy_run "$name" "$rep"
		done
	done
fi

# ---- part 2: idle -----------------------------------------------------------

# Threads, RSS, private RSS (kB), fds and CPU ticks of some processes.
snapshot() {
	local th=0 rss=0 priv=0 fds=0 ticks=0 p
	for p in "$@"; do
		th=$((th + $(awk '/^Threads:/ { print $2 }' "/proc/$p/status")))
		rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")))
		priv=$((priv + $(awk '/^Private_(Clean|Dirty):/ { n += $2 } END { print n }' "/proc/$p/smaps_rollup")))
		fds=$((fds + $(ls "/proc/$p/fd" | wc -l)))
		ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo "$th $rss $priv $fds $ticks"
}

idle_measure() { # NAME PHASE
	local name=$1 phase=$2 a b ticks_hz
	ticks_hz=$(getconf CLK_TCK)
	sleep 1
	# shellcheck disable=SC2046 # one word per pid
	read -r _ _ _ _ a <<<"$(snapshot $(pids_of "$name"))"
	sleep 10
	# shellcheck disable=SC2046
	read -r th rss priv fds b <<<"$(snapshot $(pids_of "$name"))"
	echo "$name $phase $th $rss $priv $fds $(awk -v t=$((b - a)) -v hz="$ticks_hz" 'BEGIN { printf "%.2f", 100 * t / hz / 10 }')" \
		>>"$out/idle.txt"
}

if [[ ,$parts, == *,idle,* ]]; then
	: >"$out/idle.txt"
	for name in $IDLE; do
		echo "== idle: $name" >&2
		start "$name" "$IDLE_DISKS" file
		idle_measure "$name" "no front end"
		for load in idle rate1; do
			p=()
			for ((i = 0; i < IDLE_DISKS; i++)); do
				if [ $load = idle ]; then
					args=(--idle)
				else
					args=(--rate 1 --queue-depth 1)
				fi
				"$bench" --socket "$out/$name-d$i.sock" --json "${args[@]}" \
					--duration 13 --warmup 0 >"$out/idle.$name.$load.d$i.json" 2>&1 &
				p+=($!)
			done
			if [ $load = idle ]; then
				idle_measure "$name" "front ends, no I/O"
			else
				idle_measure "$name" "front ends, 1 request/s each"
			fi
			for pid in "${p[@]}"; do
				wait "$pid" || echo "pool.sh: an idle front end of $name failed" >&2
			done
		done
		stop_all
	done
fi
echo "loadavg-after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

cat "$out/machine.txt"
python3 - "$out" "$DISKS" "$DEPTH" "$IDLE_DISKS" "${md:-}" <<'PY'
import glob, json, os, re, statistics, sys

out, disks, depth, idle_disks, md = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

def table(head, rows):
    if md:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(" --- " for _ in head) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(x) for x in col) for col in zip(head, *rows)]
        for r in [head] + rows:
            print("  ".join(x.ljust(n) for x, n in zip(r, w)))
    print()

runs = {}
for f in glob.glob(os.path.join(out, "busy.*.json")):
    m = re.match(r"busy\.(.+)\.r(\d+)\.d(\d+)\.json$", os.path.basename(f))
    try:
        j = json.load(open(f))
    except Exception:
        continue
    runs.setdefault(m.group(1), {}).setdefault(int(m.group(2)), []).append(j)

order = ["vhu-1", "vhu-2", "qsd-1", "qsd-2", "vhu-procs"]
res = {}
for name in sorted(runs, key=lambda n: order.index(n) if n in order else 99):
    per_rep = []
    for rep, js in sorted(runs[name].items()):
        iops = sum(j["iops"] for j in js)
        if name == "vhu-procs":
            cpu = sum(j["backend_cpu_util"] for j in js)  # one process each
        else:
            cpu = statistics.median(j["backend_cpu_util"] for j in js)
        errs = sum(j["errors"] for j in js)
        per_rep.append((iops, cpu, errs, len(js)))
    med = lambda k: statistics.median(r[k] for r in per_rep)
    iops, cpu = med(0), med(1)
    ipc = [r[0] / r[1] for r in per_rep if r[1] > 0]
    res[name] = dict(iops=iops, cpu=cpu, ipc=statistics.median(ipc) if ipc else 0,
                     ipc_min=min(ipc) if ipc else 0, ipc_max=max(ipc) if ipc else 0,
                     reps=len(per_rep), fronts=min(r[3] for r in per_rep),
                     errs=sum(r[2] for r in per_rep))
if res:
    print(f"{disks} disks, one front end each at queue depth {depth} (4 KiB random reads), all at once:")
    rows = []
    for name, r in res.items():
        peer = {"vhu-1": "qsd-1", "vhu-2": "qsd-2"}.get(name)
        ratio = (f"{r['ipc'] / res[peer]['ipc']:.2f}x" if peer in res and res[peer]['ipc'] else "")
        rows.append([name, f"{r['iops'] / 1000:.0f}k", f"{r['cpu']:.2f}",
                     f"{r['cpu'] * 1e6 / r['iops']:.2f}" if r["iops"] else "-",
                     f"{r['ipc'] / 1000:.0f}k ({r['ipc_min'] / 1000:.0f}-{r['ipc_max'] / 1000:.0f}k)",
                     ratio, f"{r['reps']}x{r['fronts']}", str(r["errs"])])
    table(["back end", "total IOPS", "back-end CPU", "CPU us/request", "IOPS per CPU (spread)",
           "vs qsd", "runs x front ends", "errors"], rows)

idle = os.path.join(out, "idle.txt")
if os.path.exists(idle) and os.path.getsize(idle):
    print(f"{idle_disks} idle disks (CPU over 10 s):")
    rows = []
    for line in open(idle):
        name, rest = line.split(" ", 1)
        phase = re.match(r"(no front end|front ends, no I/O|front ends, 1 request/s each) ",
                         rest).group(1)
        th, rss, priv, fds, cpu = rest[len(phase) + 1:].split()
        rows.append([name, phase, th, f"{int(rss) / 1024:.1f}", f"{int(priv) / 1024:.1f}", fds,
                     f"{cpu} %"])
    table(["back end", "front ends", "threads", "RSS MiB", "private MiB", "fds", "CPU"], rows)
PY
echo "logs, JSON reports and commands: $out" >&2
