#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: vhu-blk --read-only.  The guest sees a read-only disk
# (VIRTIO_BLK_F_RO), reads the host's pattern back, and its writes and
# discards fail; the image file is unchanged afterwards.
# Usage: blk_ro.sh [PATH/TO/vhu-blk]
. "$(dirname "$0")/common.sh"
MIB=8
BYTES=$((MIB * 1048576))

e2e_init blk-ro
e2e_need_tools
e2e_fetch_kernel
blk_random "$E2E_WORK/disk.img" "$MIB"
cp "$E2E_WORK/disk.img" "$E2E_WORK/pattern.bin"

sed -e "s/@BYTES@/$BYTES/g" >"$E2E_WORK/guest.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
DEV=/dev/vda
BYTES=@BYTES@
[ -b $DEV ] || fail "no $DEV"
[ "$(cat /sys/block/vda/ro)" = 1 ] || fail "disk not read-only"
[ "$(blockdev --getsize64 $DEV)" = $BYTES ] || fail "size"
dd if=$DEV of=/tmp/all bs=64k iflag=direct 2>/dev/null || fail "read failed"
cmp /tmp/all /pattern.bin || fail "content differs from the image"
rm /tmp/all
if dd if=/dev/zero of=$DEV bs=4096 count=1 oflag=direct conv=notrunc 2>/tmp/err; then
	fail "write to a read-only disk succeeded"
fi
echo "guest: write refused: $(cat /tmp/err | head -n 1)"
if blkdiscard -o 0 -l 65536 $DEV 2>/tmp/err; then
	fail "discard on a read-only disk succeeded"
fi
echo "guest: discard refused: $(cat /tmp/err | head -n 1)"
# Even with the kernel's read-only flag cleared, the device refuses.
if blockdev --setrw $DEV 2>/dev/null; then
	if dd if=/dev/zero of=$DEV bs=4096 count=1 oflag=direct conv=notrunc 2>/tmp/err; then
		fail "write after --setrw succeeded"
	fi
	echo "guest: write after setrw refused: $(cat /tmp/err | head -n 1)"
fi
dd if=$DEV of=/tmp/first bs=4096 count=1 iflag=direct 2>/dev/null || fail "read after write failed"
cmp -n 4096 /tmp/first /pattern.bin || fail "first block changed"
exit 0
GUEST

E2E_INITRAMFS_FILES="$E2E_WORK/pattern.bin:/pattern.bin"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_blk
E2E_INITRD="$E2E_WORK/initrd"

SOCK="$E2E_WORK/blk.sock"
blk_start vhu-blk.log --read-only "$E2E_WORK/disk.img"
guest_ok=0
blk_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-180}" 1 && guest_ok=1
blk_stop_checked vhu-blk.log
[ "$guest_ok" = 1 ] || e2e_fail "guest did not pass"
cmp "$E2E_WORK/pattern.bin" "$E2E_WORK/disk.img" || e2e_fail "read-only image was modified"
e2e_log "PASS (guest run ${E2E_QEMU_SECONDS}s)"
