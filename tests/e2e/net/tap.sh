#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: a Linux guest in QEMU (virtio-net-pci on a vhost-user netdev)
# pings the host through vhu-net --tap: the guest's frames go out of a tap
# interface the host has an address on.  Skipped (exit 77) where the
# sandbox cannot create a tap (no /dev/net/tun or no CAP_NET_ADMIN).
# Usage: tap.sh [PATH/TO/vhu-net]   (default $VHU_BUILD_ROOT/devices/net/vhu-net)
set -u
. "$(dirname "$0")/../lib.sh"

NET=${1:-${VHU_BUILD_ROOT:-.}/devices/net/vhu-net}
[ -x "$NET" ] || e2e_fail "vhu-net binary not found at $NET"
TAP=vhut$$
TAP=${TAP:0:15}
HOST=10.203.119.1
GUEST=10.203.119.2

if [ ! -c /dev/net/tun ] || ! ip tuntap add dev "$TAP" mode tap vnet_hdr 2>/dev/null; then
	echo "e2e: SKIP: cannot create a tap device here" >&2
	exit 77
fi
ip tuntap del dev "$TAP" mode tap 2>/dev/null

e2e_init net-tap
e2e_need_tools
e2e_fetch_kernel

sed -e "s/@ME@/$GUEST/g; s/@PEER@/$HOST/g; s/@LINGER@/1/g" "$(dirname "$0")/guest_ping.sh" \
	>"$E2E_WORK/guest.sh"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_net
E2E_INITRD="$E2E_WORK/initrd"

SOCK="$E2E_WORK/net.sock"
e2e_spawn NET_PID "$E2E_WORK/vhu-net.log" "$NET" --tap "$TAP" --socket-path "$SOCK"
e2e_wait_socket "$SOCK" || e2e_fail "vhu-net did not listen: $(cat "$E2E_WORK/vhu-net.log")"
ip addr add "$HOST/24" dev "$TAP" || e2e_fail "cannot address $TAP"
ip link set "$TAP" up || e2e_fail "cannot bring $TAP up"

guest_ok=0
# vectors=0: QEMU 7.2 under TCG crashes in vhost_net_start with MSI-X.
e2e_run_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-240}" \
	-chardev "socket,id=c0,path=$SOCK" \
	-netdev vhost-user,id=n0,chardev=c0 \
	-device virtio-net-pci,netdev=n0,mac=52:54:00:00:77:02,vectors=0 && guest_ok=1

ip -s link show "$TAP" | sed 's/^/  host: /' >&2
e2e_stop "$NET_PID"
rc=$?
sed 's/^/  vhu-net: /' "$E2E_WORK/vhu-net.log" >&2
grep -a '^guest:' "$E2E_WORK/console.log" | sed 's/^/  /' >&2
[ "$guest_ok" = 1 ] || e2e_fail "guest did not pass"
[ "$rc" -eq 0 ] || e2e_fail "vhu-net exited with status $rc after SIGTERM"
e2e_log "PASS: guest pinged the host through vhu-net --tap $TAP"
