#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# DPDK testpmd with a net_virtio_user port in server mode (server=1: the
# front end listens, as Open vSwitch's dpdkvhostuserclient ports expect)
# against `vhu-net --loopback --client` (TAP output).  testpmd forwards
# (io, frames come back through vhu-net and are sent again); vhu-net is
# then killed with SIGKILL mid-forwarding and started again: it connects
# back, virtio-user re-runs its set-up, and frames circulate again, in the
# same testpmd process.
# Usage: testpmd_client.sh PATH/TO/vhu-net
set -u
NET=${1:?usage: testpmd_client.sh PATH/TO/vhu-net}
WORK_TAG=testpmd-client
. "$(dirname "$0")/../net/testpmd_lib.sh"

SOCK="$WORK/vu.sock"

# start_client LOG: vhu-net --client on core 0 (testpmd polls on core 1).
start_client() {
	taskset -c 0 "$NET" --loopback --client -s "$SOCK" -v >"$WORK/$1" 2>&1 &
	NET_PID=$!
}

mkfifo "$WORK/cmd.fifo"
testpmd pmd 1 "--vdev=net_virtio_user0,path=$SOCK,queues=1,queue_size=256,server=1" -- \
	--forward-mode=io <"$WORK/cmd.fifo" &
PMD=$!
exec 8>"$WORK/cmd.fifo"
# testpmd waits in its set-up until a back end connects.
start_client net-0.log
if wait_log "$WORK/net-0.log" "front end connected" && wait_log "$WORK/pmd.log" "Port 0:"; then
	ok "vhu-net --client connected to testpmd's server=1 port"
else
	not_ok "vhu-net --client connected to testpmd's server=1 port" "$(tail -5 "$WORK/net-0.log")" \
		"$(tail -5 "$WORK/pmd.log")"
fi
printf 'start tx_first 4\n' >&8
wait_log "$WORK/pmd.log" "packet forwarding - ports" || echo "# testpmd did not start forwarding"
sleep "$RUN_S"
printf 'stop\n' >&8
wait_log "$WORK/pmd.log" "Accumulated forward statistics"
check_loop "io loop through vhu-net --client" "$WORK/pmd.log" 0 4
before=$(grep -ac "Accumulated forward statistics" "$WORK/pmd.log")

# Kill it while frames circulate; a new process connects back.
printf 'start tx_first 4\n' >&8
sleep 1
kill -KILL "$NET_PID"
wait "$NET_PID" 2>/dev/null
sleep 1
start_client net.log
if wait_log "$WORK/net.log" "front end connected"; then
	ok "a restarted vhu-net --client connected back"
else
	not_ok "a restarted vhu-net --client connected back" "$(tail -5 "$WORK/net.log")"
fi
# Give virtio-user time to re-run its set-up, then a fresh burst.
sleep 2
printf 'stop\nstart tx_first 4\n' >&8
sleep "$RUN_S"
printf 'stop\n' >&8
for _ in $(seq 100); do
	[ "$(grep -ac "Accumulated forward statistics" "$WORK/pmd.log")" -ge $((before + 2)) ] && break
	sleep 0.1
done
check_loop "io loop through the restarted vhu-net --client" "$WORK/pmd.log" 0 4
feed "" >&8
exec 8>&-
wait "$PMD"
if stop_net; then ok "vhu-net exits 0 on SIGTERM"; else not_ok "vhu-net exits 0 on SIGTERM"; fi
sed 's/^/# net-0: /' "$WORK/net-0.log"
grep -a -i "link\|reconnect\|virtio_user" "$WORK/pmd.log" | head -20 | sed 's/^/# testpmd: /'
tap_done
