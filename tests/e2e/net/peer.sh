#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: two Linux guests in QEMU (virtio-net-pci on a vhost-user
# netdev) ping each other and send each other 1 MiB over TCP through one
# vhu-net --peer process, the virtual cable between the two VMs.  With
# QUEUES > 1 both guests get that many vCPUs and queue pairs (multi-queue
# virtio-net; the guest driver enables one pair per vCPU).
# Usage: peer.sh [PATH/TO/vhu-net [QUEUES]]   (default $VHU_BUILD_ROOT/devices/net/vhu-net, 1)
set -u
. "$(dirname "$0")/../lib.sh"

NET=${1:-${VHU_BUILD_ROOT:-.}/devices/net/vhu-net}
[ -x "$NET" ] || e2e_fail "vhu-net binary not found at $NET"
QUEUES=${2:-1}

e2e_init net-peer
e2e_need_tools
e2e_fetch_kernel

# guest NAME ME PEER LINGER: build that guest's initramfs.
guest() {
	sed -e "s/@ME@/$2/g; s/@PEER@/$3/g; s/@LINGER@/$4/g; s/@TCP_PORT@//g; s/@SINK_PORT@/5555/g" \
		"$(dirname "$0")/guest_ping.sh" \
		>"$E2E_WORK/$1.sh"
	e2e_build_initramfs "$E2E_WORK/$1.initrd" "$E2E_WORK/$1.sh" virtio_pci virtio_net
}
guest a 10.203.118.1 10.203.118.2 15
guest b 10.203.118.2 10.203.118.1 15

A="$E2E_WORK/a.sock"
B="$E2E_WORK/b.sock"
e2e_spawn NET_PID "$E2E_WORK/vhu-net.log" "$NET" --peer --queues "$QUEUES" \
	--socket-path "$A" --socket-path "$B"
e2e_wait_socket "$A" && e2e_wait_socket "$B" ||
	e2e_fail "vhu-net did not listen: $(cat "$E2E_WORK/vhu-net.log")"

# vectors=0: QEMU 7.2 under TCG crashes in vhost_net_start with MSI-X.
run_guest() {
	local name=$1 sock=$2 mac=$3 mq=()
	[ "$QUEUES" -gt 1 ] && mq=(-smp "$QUEUES")
	E2E_INITRD="$E2E_WORK/$name.initrd" e2e_run_qemu "$E2E_WORK/$name.console" \
		"${VHU_E2E_TIMEOUT:-240}" "${mq[@]}" \
		-chardev "socket,id=c0,path=$sock" \
		-netdev "vhost-user,id=n0,chardev=c0,queues=$QUEUES" \
		-device "virtio-net-pci,netdev=n0,mac=$mac,vectors=0,mq=$([ "$QUEUES" -gt 1 ] && echo on || echo off)"
}
run_guest a "$A" 52:54:00:00:76:01 &
pa=$!
run_guest b "$B" 52:54:00:00:76:02 &
pb=$!
wait "$pa"
ra=$?
wait "$pb"
rb=$?

e2e_stop "$NET_PID"
rc=$?
sed 's/^/  vhu-net: /' "$E2E_WORK/vhu-net.log" >&2
grep -a '^guest:' "$E2E_WORK/a.console" | sed 's/^/  A /' >&2
grep -a '^guest:' "$E2E_WORK/b.console" | sed 's/^/  B /' >&2
[ "$ra" = 0 ] || e2e_fail "guest A did not pass"
[ "$rb" = 0 ] || e2e_fail "guest B did not pass"
[ "$rc" -eq 0 ] || e2e_fail "vhu-net exited with status $rc after SIGTERM"
e2e_log "PASS: two guests pinged each other through vhu-net --peer"
