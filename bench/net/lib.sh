# SPDX-License-Identifier: Apache-2.0
#
# Back-end handling shared by bench/net/bench.sh and bench/net/lowload.sh
# (sourced).  The caller sets PROG (for messages), NET (vhu-net), NET_B
# (optional second vhu-net, back end "vhu-b"), POLL_US, TESTPMD (when
# "dpdk" is used), DPDK_ARGS (extra testpmd application arguments for the
# "dpdk" back end), BACKEND_CPU and GEN_CPU; this file sets lcores, WORK
# (a temporary directory, removed on exit unless KEEP is set) and BE_PID.

# testpmd's lcore list must hold both CPUs; the main lcore sleeps at the
# prompt, the forwarding lcore is the other one.
lcores="$(printf '%s\n' "$BACKEND_CPU" "$GEN_CPU" | sort -n | paste -sd,)"

WORK=$(mktemp -d "/tmp/vhu-net-$PROG.XXXXXX")
BE_PID=
cleanup() {
	[ -n "$BE_PID" ] && kill -KILL "$BE_PID" 2>/dev/null
	exec 7>&- 2>/dev/null || true
	jobs -p | xargs -r kill -KILL 2>/dev/null
	wait 2>/dev/null || true
	[ -n "${KEEP:-}" ] && echo "$PROG.sh: kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

wait_listening() {
	for _ in $(seq 300); do
		awk -v p="$1" '$4 == "00010000" && $8 == p { f = 1 } END { exit !f }' \
			/proc/net/unix && return 0
		sleep 0.1
	done
	echo "$PROG.sh: nothing listens on $1" >&2
	return 1
}

# start_backend NAME SOCK: vhu | vhu-b | vhu-poll | dpdk, on $BACKEND_CPU.
start_backend() {
	local be=$1 sock=$2
	rm -f "$sock"
	case $be in
	vhu) taskset -c "$BACKEND_CPU" "$NET" --loopback -s "$sock" >"$WORK/be.log" 2>&1 & ;;
	vhu-b) taskset -c "$BACKEND_CPU" "$NET_B" --loopback -s "$sock" >"$WORK/be.log" 2>&1 & ;;
	vhu-poll)
		taskset -c "$BACKEND_CPU" "$NET" --loopback --poll="$POLL_US" -s "$sock" \
			>"$WORK/be.log" 2>&1 &
		;;
	dpdk)
		# Interactive, driven through a fifo so it can be stopped cleanly.
		rm -f "$WORK/be.fifo"
		mkfifo "$WORK/be.fifo"
		# shellcheck disable=SC2086
		"$TESTPMD" -l "$lcores" --main-lcore "$GEN_CPU" --no-huge -m 512 --no-pci \
			--file-prefix="vhu-$PROG-be-$$" --log-level=lib.eal,warning \
			--vdev "net_vhost0,iface=$sock,queues=1" -- -i --total-num-mbufs=32768 \
			--forward-mode=io ${DPDK_ARGS:-} <"$WORK/be.fifo" >"$WORK/be.log" 2>&1 &
		BE_PID=$!
		exec 7>"$WORK/be.fifo"
		echo start >&7
		;;
	esac
	[ "$be" = dpdk ] || BE_PID=$!
	wait_listening "$sock"
}

stop_backend() {
	if [ -e "/proc/$BE_PID" ] && grep -q dpdk-testpmd "/proc/$BE_PID/cmdline" 2>/dev/null; then
		printf 'stop\nquit\n' >&7 || true
		exec 7>&-
	else
		kill -TERM "$BE_PID" 2>/dev/null || true
	fi
	for _ in $(seq 100); do
		kill -0 "$BE_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$BE_PID" 2>/dev/null || true
	wait "$BE_PID" 2>/dev/null || true
	BE_PID=
}
