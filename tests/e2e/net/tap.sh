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

PORT=$((20000 + $$ % 20000))
sed -e "s/@ME@/$GUEST/g; s/@PEER@/$HOST/g; s/@LINGER@/1/g; s/@TCP_PORT@/$PORT/g; s/@SINK_PORT@//g" \
	"$(dirname "$0")/guest_ping.sh" \
	>"$E2E_WORK/guest.sh"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_net
E2E_INITRD="$E2E_WORK/initrd"

SOCK="$E2E_WORK/net.sock"
e2e_spawn NET_PID "$E2E_WORK/vhu-net.log" "$NET" --tap "$TAP" --socket-path "$SOCK"
e2e_wait_socket "$SOCK" || e2e_fail "vhu-net did not listen: $(cat "$E2E_WORK/vhu-net.log")"
ip addr add "$HOST/24" dev "$TAP" || e2e_fail "cannot address $TAP"
ip link set "$TAP" up || e2e_fail "cannot bring $TAP up"

# A one-shot TCP echo server for 1 MiB on the host side of the tap.
python3 - "$HOST" "$PORT" $((1 << 20)) >"$E2E_WORK/echo.log" 2>&1 <<'PY' &
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(1)
s.settimeout(600)
c, peer = s.accept()
c.settimeout(120)
buf = bytearray()
while len(buf) < n:
    d = c.recv(65536)
    if not d:
        break
    buf += d
c.sendall(buf)
c.close()
print("echo: received and returned %d bytes from %s" % (len(buf), peer[0]))
PY
ECHO_PID=$!
E2E_PIDS+=("$ECHO_PID")

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
sed 's/^/  host /' "$E2E_WORK/echo.log" >&2
[ "$guest_ok" = 1 ] || e2e_fail "guest did not pass"
[ "$rc" -eq 0 ] || e2e_fail "vhu-net exited with status $rc after SIGTERM"
e2e_log "PASS: guest pinged the host through vhu-net --tap $TAP"
