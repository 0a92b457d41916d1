#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Smoke test of vhu-net-lowload (bench/net/lowload.c), TAP output: it
# refuses bad usage, runs against vhu-net --loopback and reports the back
# end's CPU per frame, and negotiates with DPDK's vhost library (testpmd
# net_vhost, io forwarding) when dpdk-testpmd is installed.  No timed
# assertion: only that frames went round and a report came out.
#
#   lowload.sh PATH/TO/vhu-net-lowload PATH/TO/vhu-net
set -u
LOWLOAD=${1:?usage: lowload.sh PATH/TO/vhu-net-lowload PATH/TO/vhu-net}
NET=${2:?usage: lowload.sh PATH/TO/vhu-net-lowload PATH/TO/vhu-net}
. "$(dirname "$0")/../lib/tap.sh"

WORK=$(mktemp -d /tmp/vhu-net-lowload-test.XXXXXX)
BE_PID=
cleanup() {
	[ -n "$BE_PID" ] && kill -KILL "$BE_PID" 2>/dev/null
	exec 7>&- 2>/dev/null
	jobs -p | xargs -r kill -KILL 2>/dev/null
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# field KEY FILE
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$2"; }

# check_report NAME OUT COMM: the tool's line names the back end (the
# socket's owner) and counts frames that came back (those sent just before
# the window may come back in it: received is not bounded by sent).
check_report() {
	local name=$1 out=$2 comm=$3 got
	got=$(field received "$out")
	if [ -n "$got" ] && [ "$got" -gt 0 ] && [ "$(field backend "$out")" = "$comm" ] &&
		[ -n "$(field cpu_us_per_frame "$out")" ]; then
		ok "$name: $(cat "$out")"
	else
		not_ok "$name" "output: $(cat "$out")" "stderr: $(cat "$out.err")"
	fi
}

expect_error "no arguments: usage, exit 2" 2 "Usage" -- "$LOWLOAD"
expect_error "rate out of range: exit 2" 2 "Usage" -- "$LOWLOAD" -s "$WORK/x" -r 0
expect_error "nobody listening: exit 1" 1 "set-up" -- "$LOWLOAD" -s "$WORK/none.sock" -r 100

# vhu-net --loopback.
sock=$WORK/net.sock
"$NET" --loopback -s "$sock" >"$WORK/net.log" 2>&1 &
BE_PID=$!
if wait_listening "$sock"; then
	timeout 60 "$LOWLOAD" -s "$sock" -r 2000 -d 0.5 -w 0.1 >"$WORK/vhu.out" 2>"$WORK/vhu.out.err"
	rc=$?
	[ "$rc" -eq 0 ] || echo "# exit $rc" >>"$WORK/vhu.out.err"
	check_report "vhu-net --loopback at 2000 frames/s" "$WORK/vhu.out" vhu-net
else
	not_ok "vhu-net --loopback listens" "$(cat "$WORK/net.log")"
fi
kill -TERM "$BE_PID" 2>/dev/null
wait "$BE_PID"
rc=$?
if [ "$rc" -eq 0 ]; then ok "vhu-net exits 0 after the tool left"; else not_ok "vhu-net exit $rc"; fi
BE_PID=

# DPDK's vhost PMD as the back end (our front-end library against DPDK's
# vhost-user implementation).
TESTPMD=$(command -v dpdk-testpmd || true)
if [ -z "$TESTPMD" ]; then
	ok "DPDK vhost back end # SKIP dpdk-testpmd not installed"
else
	dsock=$WORK/dpdk.sock
	mkfifo "$WORK/be.fifo"
	timeout -s KILL 120 "$TESTPMD" -l 0-1 --main-lcore 1 --no-huge -m 512 --no-pci \
		--file-prefix="vhu-lowload-test-$$" --log-level=lib.eal,warning \
		--vdev "net_vhost0,iface=$dsock,queues=1" -- -i --total-num-mbufs=32768 \
		--forward-mode=io --port-topology=loop <"$WORK/be.fifo" >"$WORK/dpdk.log" 2>&1 &
	BE_PID=$!
	exec 7>"$WORK/be.fifo"
	echo start >&7
	# testpmd may take long to initialise on a loaded machine.
	for _ in $(seq 6); do wait_listening "$dsock" && break; done
	timeout 60 "$LOWLOAD" -s "$dsock" -r 2000 -d 0.5 -w 0.1 >"$WORK/dpdk.out" \
		2>"$WORK/dpdk.out.err"
	check_report "DPDK vhost PMD (testpmd io forwarding) at 2000 frames/s" "$WORK/dpdk.out" \
		dpdk-testpmd
	printf 'stop\nquit\n' >&7
	exec 7>&-
	wait "$BE_PID"
	BE_PID=
fi
tap_done
