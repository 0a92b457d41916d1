# Guest side of tests/package/deb.sh (busybox sh in the e2e initramfs): the
# guest libvirt started uses the three socket-activated daemons.
#  vda: vhu-blk@disk0 (the default image): write a pattern, read it back;
#  vdb: vhu-blk@data1 (/etc/vhu/blk/data1.conf): its serial says the
#       configuration file was read;
#  share0: vhu-fs@share0 (virtiofs): read the host's file, write one;
#  network: vhu-net@port0 (tap port0 in the test's network namespace): ping
#       the address the host side gave the tap;
# Placeholders: @HOST@ @ME@ @SERIAL@.
fail() {
	echo "guest: $*"
	exit 1
}
[ -b /dev/vda ] || fail "no /dev/vda"
: >/tmp/pat
i=0
while [ $i -lt 256 ]; do
	printf 'VHU-PKG-LIBVIRT block %04d %0460d\n' $i 0 >>/tmp/pat
	i=$((i + 1))
done
n=$(wc -c </tmp/pat)
dd if=/tmp/pat of=/dev/vda bs=4096 conv=fsync 2>/dev/null || fail "write /dev/vda"
echo 3 >/proc/sys/vm/drop_caches
dd if=/dev/vda of=/tmp/back bs=4096 count=$((n / 4096 + 1)) 2>/dev/null || fail "read /dev/vda"
head -c "$n" /tmp/back | cmp - /tmp/pat || fail "/dev/vda: data read back differs"
echo "guest: vda ($(cat /sys/block/vda/size) sectors): wrote and read back $n bytes"

[ -b /dev/vdb ] || fail "no /dev/vdb"
serial=$(cat /sys/block/vdb/serial 2>/dev/null)
[ "$serial" = "@SERIAL@" ] || fail "vdb serial '$serial', want '@SERIAL@' (from data1.conf)"
echo "guest: vdb serial $serial, $(cat /sys/block/vdb/size) sectors"

ifc=
for d in /sys/class/net/*; do
	[ "${d##*/}" = lo ] || {
		ifc=${d##*/}
		break
	}
done
[ -n "$ifc" ] || fail "no network interface"
ip addr add @ME@/24 dev "$ifc" && ip link set "$ifc" up || fail "ip $ifc"
ok=0
for i in $(seq 1 120); do
	ping -c 1 -W 1 @HOST@ >/dev/null 2>&1 && {
		ok=1
		break
	}
done
[ $ok = 1 ] || fail "no ping reply from @HOST@"
ping -c 3 -W 2 @HOST@ >/dev/null || fail "ping -c 3 @HOST@"
echo "guest: $ifc: ping replies from @HOST@ through the tap"


mkdir -p /mnt && mount -t virtiofs share0 /mnt || fail "mount -t virtiofs share0"
[ "$(cat /mnt/hello)" = "from the host" ] || fail "share0/hello: '$(cat /mnt/hello)'"
echo "written by the guest" >/mnt/from-guest && sync || fail "write share0/from-guest"
umount /mnt || fail "umount share0"
echo "guest: share0 (virtiofs): read the host's file, wrote one"
