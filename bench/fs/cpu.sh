#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# vhu-fs's cost per FUSE request, without a guest: vhu-fs-load (a FUSE
# client on libvhu-frontend, one request in flight per queue) drives the
# daemon and reports, per workload, requests/s and the daemon's CPU time
# per request (its threads' run time: a wall-clock figure, it moves with
# the machine's load).  With -c each workload runs again against vhu-fs
# under callgrind: user-space instructions of the worker threads per
# request (--toggle-collect on worker_main), minus those of a run doing
# only the set-up -- a count, the same on a loaded machine as on an idle
# one.  Kernel time (the system calls themselves) is not in the count.
#
#   bench/fs/cpu.sh [-b BUILD] [-n REQUESTS] [-q QUEUES] [-c] [-m] [WORKLOAD...]
#     WORKLOAD  getattr lookup read4k write4k read1m create readdir (default:
#               all; see bench/fs/fsload.c)
#     -n  requests per workload and queue (default 20000; 5000 under -c)
#     -q  request queues, one client thread each (default 1)
#     -c  also count instructions (valgrind --tool=callgrind)
#     -m  Markdown table
# Environment: BACKEND_CPU (0), GEN_CPU (1), VHU_FS_ARGS (extra vhu-fs args).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../../build
n=
nq=1
cg=
md=
while getopts "b:n:q:cmh" opt; do
	case $opt in
	b) build=$OPTARG ;;
	n) n=$OPTARG ;;
	q) nq=$OPTARG ;;
	c) cg=1 ;;
	m) md=1 ;;
	*) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- getattr lookup read4k write4k read1m create readdir
fs=$build/devices/fs/vhu-fs
load=$build/bench/fs/vhu-fs-load
[ -x "$fs" ] && [ -x "$load" ] || { echo "cpu.sh: build $fs and $load first" >&2; exit 1; }
BACKEND_CPU=${BACKEND_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
work=$(mktemp -d /tmp/vhu-fs-cpu.XXXXXX)
be=
cleanup() {
	[ -z "$be" ] || kill -KILL "$be" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# start NAME [WRAPPER...]: vhu-fs (notifications only: polling spins a
# number of instructions that depends on timing) on $work/NAME; under a
# wrapper (valgrind) without sandbox and filter, which valgrind's own
# system calls would trip.
start() {
	local name=$1 extra=
	shift
	[ $# -gt 0 ] && extra="--sandbox none --seccomp none"
	rm -rf "$work/$name.share" "$work/$name.sock"
	mkdir -p "$work/$name.share"
	# shellcheck disable=SC2086
	taskset -c "$BACKEND_CPU" "$@" "$fs" --socket-path "$work/$name.sock" \
		--shared-dir "$work/$name.share" --poll-us 0 -v $extra ${VHU_FS_ARGS:-} \
		>"$work/$name.log" 2>&1 &
	be=$!
	for _ in $(seq 600); do
		[ -S "$work/$name.sock" ] && return 0
		kill -0 "$be" 2>/dev/null || break
		sleep 0.1
	done
	echo "cpu.sh: vhu-fs did not come up:" >&2
	cat "$work/$name.log" >&2
	return 1
}

stop() {
	kill -TERM "$be"
	wait "$be" || true
	be=
}

# Wall clock: every workload against one daemon.
start wall
taskset -c "$GEN_CPU" "$load" -n "${n:-20000}" -q "$nq" "$work/wall.sock" "$be" "$@" \
	>"$work/wall.out" || { cat "$work/wall.out" "$work/wall.log" >&2; exit 1; }
stop

declare -A IR
if [ -n "$cg" ]; then
	cgrun() { # NAME [WORKLOAD]: prints "IR REQUESTS"
		start "$1" valgrind --tool=callgrind --toggle-collect='worker_main*' \
			--callgrind-out-file="$work/$1.cg" >&2 || return 1
		shift
		taskset -c "$GEN_CPU" "$load" -n "${n:-5000}" -q "$nq" "$work/$name.sock" "$be" "$@" \
			>/dev/null || return 1
		stop
		echo "$(awk '/^(summary|totals):/ { print $2; exit }' "$work/$name.cg")" \
			"$(sed -n 's/.*front end(s), \([0-9]*\) requests.*/\1/p' "$work/$name.log")"
	}
	name=base
	read -r ir0 r0 < <(cgrun base)
	for w in "$@"; do
		name=cg-$w
		read -r ir r < <(cgrun "cg-$w" "$w")
		IR[$w]=$(awk -v a="$ir" -v b="$ir0" -v n="$r" -v m="$r0" \
			'BEGIN { if (n > m) printf "%.0f", (a - b) / (n - m); else print "?" }')
	done
fi

echo "# vhu-fs per FUSE request, $nq queue(s), one request in flight each; host $(nproc) CPUs," \
	"load $(uptime | sed 's/.*load average: //')"
awk -v md="$md" -v irs="$(for w in "$@"; do printf '%s=%s ' "$w" "${IR[$w]:--}"; done)" '
BEGIN { n = split(irs, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); ir[kv[1]] = kv[2] }
	if (md) { print "| workload | requests | req/s | daemon CPU us/req | Ir/request |"
		print "| --- | --- | --- | --- | --- |" }
	else printf "%-9s %9s %10s %12s %11s\n", "workload", "requests", "req/s", "CPU us/req", "Ir/request" }
NR > 1 { if (md) printf "| %s | %s | %s | %s | %s |\n", $1, $2, $4, $5, ir[$1]
	else printf "%-9s %9s %10s %12s %11s\n", $1, $2, $4, $5, ir[$1] }' "$work/wall.out"
