# Guest side of the vhu-net e2e tests (busybox sh).  Placeholders replaced
# by the host script: @ME@ (this guest's address), @PEER@ (address to ping),
# @LINGER@ (seconds to stay up afterwards, answering the other side).
fail() { echo "guest: $*"; exit 1; }
# QEMU runs with -nodefaults: the only interface besides lo is ours.
ifc=
for d in /sys/class/net/*; do
	[ "${d##*/}" = lo ] || { ifc=${d##*/}; break; }
done
[ -n "$ifc" ] || fail "no network interface"
echo "guest: interface $ifc mac $(cat /sys/class/net/$ifc/address) mtu $(cat /sys/class/net/$ifc/mtu)"
ip link set lo up
ip addr add @ME@/24 dev "$ifc" || fail "ip addr"
ip link set "$ifc" up || fail "ip link up"
ok=0
for i in $(seq 1 120); do
	if ping -c 1 -W 1 @PEER@ >/tmp/ping 2>&1; then
		ok=1
		break
	fi
done
[ "$ok" = 1 ] || { cat /tmp/ping; fail "no reply from @PEER@ after $i tries"; }
echo "guest: first reply from @PEER@ after $i tries"
ping -c 3 -W 2 @PEER@ || fail "ping -c 3"
# Full-size frames (1442 bytes on the wire) and fragmented datagrams.
ping -c 2 -W 2 -s 1400 @PEER@ || fail "ping -s 1400"
ping -c 2 -W 2 -s 4000 @PEER@ || fail "ping -s 4000 (fragments)"
cat /sys/class/net/$ifc/statistics/rx_packets /sys/class/net/$ifc/statistics/tx_packets |
	tr '\n' ' ' | sed 's/^/guest: rx_packets tx_packets: /'
echo
sleep @LINGER@
exit 0
