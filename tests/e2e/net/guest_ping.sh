# Guest side of the vhu-net e2e tests (busybox sh).  Placeholders replaced
# by the host script: @ME@ (this guest's address), @PEER@ (address to ping),
# @LINGER@ (seconds to stay up afterwards, answering the other side),
# @TCP_PORT@ (if not empty: send 1 MiB to an echo server there and check
# what comes back, which exercises checksum and segmentation offloads),
# @SINK_PORT@ (if not empty: serve an md5 sink there and send 1 MiB to the
# other guest's sink: bulk TCP in both directions between two guests).
fail() { echo "guest: $*"; exit 1; }
# QEMU runs with -nodefaults: the only interface besides lo is ours.
ifc=
for d in /sys/class/net/*; do
	[ "${d##*/}" = lo ] || { ifc=${d##*/}; break; }
done
[ -n "$ifc" ] || fail "no network interface"
echo "guest: interface $ifc mac $(cat /sys/class/net/$ifc/address) mtu $(cat /sys/class/net/$ifc/mtu)" \
	"rx queues: $(ls -d /sys/class/net/$ifc/queues/rx-* | wc -l) cpus: $(grep -c ^processor /proc/cpuinfo)"
ip link set lo up
ip addr add @ME@/24 dev "$ifc" || fail "ip addr"
ip link set "$ifc" up || fail "ip link up"
sink=@SINK_PORT@
if [ -n "$sink" ]; then
	echo 'head -c 1048576 | md5sum' >/tmp/sink.sh
	nc -l -p "$sink" -e sh /tmp/sink.sh &
fi
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
port=@TCP_PORT@
if [ -n "$port" ]; then
	dd if=/dev/urandom of=/tmp/data bs=65536 count=16 2>/dev/null || fail "dd"
	nc @PEER@ "$port" </tmp/data >/tmp/back || echo "guest: nc exited with $?"
	sent=$(md5sum </tmp/data)
	back=$(md5sum </tmp/back)
	echo "guest: tcp echo: sent $(wc -c </tmp/data) bytes, got $(wc -c </tmp/back) back"
	[ "$sent" = "$back" ] || fail "tcp echo: data differs"
fi
if [ -n "$sink" ]; then
	dd if=/dev/urandom of=/tmp/data bs=65536 count=16 2>/dev/null || fail "dd"
	for i in $(seq 1 30); do
		nc @PEER@ "$sink" </tmp/data >/tmp/sum && [ -s /tmp/sum ] && break
		sleep 1
	done
	echo "guest: sink at @PEER@ got md5 $(cat /tmp/sum)"
	[ "$(cat /tmp/sum)" = "$(md5sum </tmp/data)" ] || fail "1 MiB to @PEER@: md5 differs"
fi
cat /sys/class/net/$ifc/statistics/rx_packets /sys/class/net/$ifc/statistics/tx_packets |
	tr '\n' ' ' | sed 's/^/guest: rx_packets tx_packets: /'
echo
sleep @LINGER@
exit 0
