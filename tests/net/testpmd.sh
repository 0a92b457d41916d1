#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# DPDK testpmd through vhu-net (TAP output).  testpmd's net_virtio_user
# port is a complete vhost-user front end and virtio-net driver in user
# space: it negotiates, shares its (memfd) memory, and drives the rings.
#
#   testpmd.sh loopback    PATH/TO/vhu-net   one port, io forwarding: the
#        frames testpmd sends come back and are sent again, so the counters
#        keep growing only if frames round-trip through vhu-net
#   testpmd.sh loopback-mq PATH/TO/vhu-net   same with 2 queue pairs
#   testpmd.sh loopback-poll PATH/TO/vhu-net same with --poll (adaptive polling)
#   testpmd.sh peer        PATH/TO/vhu-net   vhu-net --peer between two ports
#        of one testpmd (io forwarding across the cable), then between two
#        testpmd processes (txonly -> rxonly), as between two VMs
set -u
MODE=${1:?usage: testpmd.sh loopback|loopback-mq|loopback-poll|peer PATH/TO/vhu-net}
NET=${2:?usage: testpmd.sh MODE PATH/TO/vhu-net}
WORK_TAG=testpmd
. "$(dirname "$0")/testpmd_lib.sh"

loopback() {
	local q=$1 sock="$WORK/lo.sock"
	shift
	start_net --loopback -q "$q" "$@" -s "$sock" || { not_ok "vhu-net --loopback starts"; return; }
	run_testpmd lo 0 "start tx_first 4;forwarding;sleep $RUN_S;stop" "$(vdev 0 "$sock" "$q")" -- \
		--forward-mode=io --rxq="$q" --txq="$q"
	check_loop "testpmd io loop through vhu-net --loopback $*, $q queue pair(s)" "$WORK/lo.log" 0 4
	if stop_net; then ok "vhu-net exits 0 on SIGTERM"; else not_ok "vhu-net exits 0 on SIGTERM"; fi
	check_counters vhu-net0
}

peer() {
	local a="$WORK/a.sock" b="$WORK/b.sock" rx0 rx1
	start_net --peer -s "$a" -s "$b" || { not_ok "vhu-net --peer starts"; return; }
	# One testpmd, two ports, one on each end of the cable.
	run_testpmd two 0 "start tx_first 4;forwarding;sleep $RUN_S;stop" "$(vdev 0 "$a" 1)" "$(vdev 1 "$b" 1)" -- \
		--forward-mode=io
	check_loop "testpmd io forwarding across vhu-net --peer" "$WORK/two.log" 0 4
	check_loop "testpmd io forwarding across vhu-net --peer" "$WORK/two.log" 1 4
	# Two testpmd processes, as two VMs: B receives what A sends.  Both
	# forwarding lcores poll on core 1, so that vhu-net (core 0) is not
	# starved of CPU by a spinning poller (2 cores here).  B is driven
	# through a fifo: A starts once B forwards, B stops once A is done.
	mkfifo "$WORK/rx.fifo"
	testpmd rx 0 "$(vdev 0 "$b" 1)" -- <"$WORK/rx.fifo" &
	local rxpid=$!
	exec 8>"$WORK/rx.fifo"
	printf 'set fwd rxonly\nstart\n' >&8
	wait_log "$WORK/rx.log" "rxonly packet forwarding - ports" ||
		echo "# testpmd B did not start forwarding: $(tail -5 "$WORK/rx.log" | tr '\n' ' ')"
	run_testpmd tx 0 "set fwd txonly;start;forwarding;sleep $RUN_S;stop" "$(vdev 0 "$a" 1)" --
	sleep 1
	printf 'stop\n' >&8
	feed "" >&8
	exec 8>&-
	wait "$rxpid"
	rx1=$(stat_of "$WORK/rx.log" 0 RX)
	rx0=$(stat_of "$WORK/tx.log" 0 TX)
	if [ "$rx1" -gt 1000 ] && [ "$rx1" -le "$rx0" ]; then
		ok "two testpmd processes: A txonly sent $rx0, B rxonly received $rx1"
	else
		not_ok "two testpmd processes: A sent $rx0, B received $rx1" \
			"B: $(tail -15 "$WORK/rx.log" | tr '\n' ' ')" "A: $(tail -15 "$WORK/tx.log" | tr '\n' ' ')"
	fi
	if stop_net; then ok "vhu-net --peer exits 0 on SIGTERM"; else not_ok "vhu-net --peer exits 0"; fi
}

case "$MODE" in
loopback) loopback 1 ;;
loopback-mq) loopback 2 ;;
loopback-poll) loopback 1 --poll ;;
peer) peer ;;
*)
	echo "usage: testpmd.sh loopback|loopback-mq|loopback-poll|peer PATH/TO/vhu-net" >&2
	exit 2
	;;
esac
tap_done
