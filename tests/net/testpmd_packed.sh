#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# DPDK testpmd with packed virtqueues (net_virtio_user packed_vq=1, virtio
# 1.1 2.8) through vhu-net (TAP output).  The checks: testpmd really uses
# the packed ring (its driver falls back to split rings when the back end
# does not offer VIRTIO_F_RING_PACKED), frames round-trip, and vhu-net's
# counters agree.
#
#   testpmd_packed.sh loopback    PATH/TO/vhu-net   one port, io forwarding
#   testpmd_packed.sh loopback-mq PATH/TO/vhu-net   same, 2 queue pairs
#   testpmd_packed.sh peer        PATH/TO/vhu-net   vhu-net --peer between a
#        packed port and a split port of one testpmd (io forwarding)
#
set -u
MODE=${1:?usage: testpmd_packed.sh loopback|loopback-mq|peer PATH/TO/vhu-net}
NET=${2:?usage: testpmd_packed.sh MODE PATH/TO/vhu-net}
WORK_TAG=packed
. "$(dirname "$0")/testpmd_lib.sh"

# run_io NAME ARGS...: "start tx_first 4", run, stop, quit; io
# forwarding, and testpmd's virtio driver logs which ring layout it uses.
run_io() {
	local name=$1
	shift
	run_testpmd "$name" 0 "start tx_first 4;forwarding;sleep $RUN_S;stop" \
		--log-level="pmd.net.virtio.*,info" "$@" --forward-mode=io
}

check_packed() { # check_packed LOG PORT: testpmd's driver chose packed rings
	if grep -aq "using packed ring .* on port $2" "$1"; then
		ok "port $2 drives packed rings"
	else
		not_ok "port $2 drives packed rings" "$(grep -a 'using' "$1" | tr '\n' ' ')"
	fi
}

loopback() {
	local q=$1 sock="$WORK/lo.sock"
	start_net --loopback -q "$q" -s "$sock" || { not_ok "vhu-net --loopback starts"; return; }
	run_io lo "$(vdev 0 "$sock" "$q" 1)" -- --rxq="$q" --txq="$q"
	check_packed "$WORK/lo.log" 0
	check_loop "testpmd io loop through vhu-net --loopback, $q queue pair(s), packed" \
		"$WORK/lo.log" 0 4
	if stop_net; then ok "vhu-net exits 0 on SIGTERM"; else not_ok "vhu-net exits 0 on SIGTERM"; fi
	check_counters vhu-net0
}

peer() {
	local a="$WORK/a.sock" b="$WORK/b.sock"
	start_net --peer -s "$a" -s "$b" || { not_ok "vhu-net --peer starts"; return; }
	run_io two "$(vdev 0 "$a" 1 1)" "$(vdev 1 "$b" 1 0)" --
	check_packed "$WORK/two.log" 0
	if grep -aq "using packed ring .* on port 1" "$WORK/two.log"; then
		not_ok "port 1 (packed_vq=0) drives split rings"
	else
		ok "port 1 (packed_vq=0) drives split rings"
	fi
	check_loop "testpmd io forwarding packed -> vhu-net --peer -> split" "$WORK/two.log" 0 4
	check_loop "testpmd io forwarding split -> vhu-net --peer -> packed" "$WORK/two.log" 1 4
	if stop_net; then ok "vhu-net --peer exits 0 on SIGTERM"; else not_ok "vhu-net --peer exits 0"; fi
}

case "$MODE" in
loopback) loopback 1 ;;
loopback-mq) loopback 2 ;;
peer) peer ;;
*)
	echo "usage: testpmd_packed.sh loopback|loopback-mq|peer PATH/TO/vhu-net" >&2
	exit 2
	;;
esac
tap_done
