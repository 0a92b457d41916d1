#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: a Linux guest in QEMU (vhost-user-blk-pci, TCG) with NQ
# queues writes a known pattern across the disk (NQ parallel O_DIRECT
# writers pinned to different CPUs, so to different queues), reads it back
# with O_DIRECT and checks it, discards and writes zeroes (with and without
# unmap) and checks those, checks the size, serial, queue count, limits and
# the write-cache toggle it sees.  The host then compares the image file
# (or, with BLK_STORAGE=rbd|nbd, the disk read back by the storage's own
# tools: see storage.sh).
# Usage: [BLK_STORAGE=file|rbd|nbd] blk_rw.sh [PATH/TO/vhu-blk] [NQ]
. "$(dirname "$0")/common.sh"
NQ=${2:-1}
MIB=32
BYTES=$((MIB * 1048576))

e2e_init "blk-rw$NQ-$BLK_STORAGE"
e2e_need_tools
e2e_fetch_kernel
blk_build_helper
blk_random "$E2E_WORK/pattern.bin" "$MIB"
storage_setup "$BYTES"

sed -e "s/@NQ@/$NQ/g" -e "s/@BYTES@/$BYTES/g" >"$E2E_WORK/guest.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
DEV=/dev/vda
NQ=@NQ@
BYTES=@BYTES@
[ -b $DEV ] || fail "no $DEV"
sz=$(cat /sys/block/vda/size)
[ "$sz" = $((BYTES / 512)) ] || fail "size $sz sectors"
b=$(blockdev --getsize64 $DEV)
[ "$b" = $BYTES ] || fail "getsize64 $b"
nq=$(ls /sys/block/vda/mq | wc -l)
[ "$nq" = $NQ ] || fail "$nq hardware queues, want $NQ"
serial=$(cat /sys/block/vda/serial)
[ "$serial" = "e2e-serial-$NQ" ] || fail "serial '$serial'"
[ "$(cat /sys/block/vda/ro)" = 0 ] || fail "read-only"
dmax=$(cat /sys/block/vda/queue/discard_max_bytes)
zmax=$(cat /sys/block/vda/queue/write_zeroes_max_bytes)
[ "$dmax" -gt 0 ] || fail "no discard"
[ "$zmax" -gt 0 ] || fail "no write zeroes"
echo "guest: vda $sz sectors, $nq queues, serial $serial, discard_max $dmax, write_zeroes_max $zmax"

# Pattern across the disk: NQ stripes written in parallel.
STRIPE=$((BYTES / NQ / 65536))
NCPU=$(nproc)
i=0
pids=
while [ $i -lt $NQ ]; do
	taskset -c $((i % NCPU)) dd if=/pattern.bin of=$DEV bs=64k skip=$((i * STRIPE)) \
		seek=$((i * STRIPE)) count=$STRIPE oflag=direct conv=notrunc 2>/tmp/w$i.err &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait $p || fail "pattern write failed: $(cat /tmp/w*.err)"; done
# Small and odd-sized direct writes too (same data).
dd if=/pattern.bin of=$DEV bs=512 skip=7 seek=7 count=9 oflag=direct conv=notrunc 2>/dev/null ||
	fail "512-byte writes failed"
dd if=/pattern.bin of=$DEV bs=4096 skip=1001 seek=1001 count=33 oflag=direct conv=notrunc 2>/dev/null ||
	fail "4k writes failed"
echo "guest: pattern written"

# Read back with O_DIRECT, in parallel, and compare.
i=0
pids=
while [ $i -lt $NQ ]; do
	( taskset -c $((i % NCPU)) dd if=$DEV of=/tmp/r$i bs=64k skip=$((i * STRIPE)) \
		count=$STRIPE iflag=direct 2>/dev/null &&
	  cmp -n $((STRIPE * 65536)) /tmp/r$i /pattern.bin 0 $((i * STRIPE * 65536)) &&
	  rm /tmp/r$i ) &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait $p || fail "pattern read-back differs"; done
echo "guest: pattern verified"

is_zero() { # OFFSET LEN
	dd if=$DEV of=/tmp/z bs=4096 skip=$(($1 / 4096)) count=$(($2 / 4096)) iflag=direct 2>/dev/null ||
		return 1
	[ -z "$(od -An -tx1 -v /tmp/z | tr -d ' 0\n')" ]
}
is_pattern() { # OFFSET LEN
	dd if=$DEV of=/tmp/p bs=4096 skip=$(($1 / 4096)) count=$(($2 / 4096)) iflag=direct 2>/dev/null &&
		cmp -n $2 /tmp/p /pattern.bin 0 $1
}
M=1048576
blkdiscard -o $((4 * M)) -l $M $DEV || fail "blkdiscard"
/vhu-e2e-blkzero zero $DEV $((8 * M)) $M || fail "write zeroes"
/vhu-e2e-blkzero punch $DEV $((12 * M)) $M || fail "write zeroes (unmap)"
for off in 4 8 12; do
	is_zero $((off * M)) $M || fail "range at ${off}M not zero"
	is_pattern $(((off - 1) * M)) $M || fail "range before ${off}M damaged"
	is_pattern $(((off + 1) * M)) $M || fail "range after ${off}M damaged"
done
echo "guest: discard and write zeroes verified"

# Write-cache mode: toggled through the config space.
ct=$(cat /sys/block/vda/cache_type)
[ "$ct" = "write back" ] || fail "cache_type '$ct'"
echo "write through" >/sys/block/vda/cache_type || fail "cannot set write through"
[ "$(cat /sys/block/vda/cache_type)" = "write through" ] || fail "cache_type not changed"
dd if=/pattern.bin of=$DEV bs=64k skip=300 seek=300 count=16 oflag=direct conv=notrunc 2>/dev/null ||
	fail "write-through write failed"
is_pattern $((300 * 65536)) $M || fail "write-through data differs"
echo "write back" >/sys/block/vda/cache_type
sync
blockdev --flushbufs $DEV || fail "flush"
echo "guest: all checks passed"
exit 0
GUEST

E2E_INITRAMFS_FILES="$E2E_WORK/pattern.bin:/pattern.bin $BLKZERO:/vhu-e2e-blkzero"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_blk
E2E_INITRD="$E2E_WORK/initrd"

SOCK="$E2E_WORK/blk.sock"
VHU_LOG=${VHU_BLK_LOG:-info} blk_start vhu-blk.log --num-queues "$NQ" --serial "e2e-serial-$NQ" "$IMAGE"

guest_ok=0
VHU_E2E_MEM=${VHU_E2E_MEM:-512M} blk_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-240}" "$NQ" &&
	guest_ok=1
blk_stop_checked vhu-blk.log
[ "$guest_ok" = 1 ] || e2e_fail "guest did not pass"

# The guest's cache_type writes reached the device's config space.
grep -q "write cache: write-through" "$E2E_WORK/vhu-blk.log" || e2e_fail "no write-through switch seen"
grep -q "write cache: writeback" "$E2E_WORK/vhu-blk.log" || e2e_fail "no writeback switch seen"

# The host sees the guest's writes in the image.
cp "$E2E_WORK/pattern.bin" "$E2E_WORK/expected.img"
for off in 4 8 12; do
	dd if=/dev/zero of="$E2E_WORK/expected.img" bs=1M seek=$off count=1 conv=notrunc status=none
done
storage_export "$E2E_WORK/disk.out"
cmp "$E2E_WORK/expected.img" "$E2E_WORK/disk.out" || e2e_fail "image differs from what the guest wrote"
e2e_log "PASS ($NQ queue(s), $BLK_STORAGE, guest run ${E2E_QEMU_SECONDS}s)"
