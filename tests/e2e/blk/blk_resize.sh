#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: an RBD image grows under a running guest.  The guest sees
# 16 MiB, says so; the host runs `rbd resize --size 32M`; vhu-blk's watch
# sees the new size and sends a config-change message; QEMU updates the
# config space and the guest's kernel picks up the new capacity.  The guest
# then writes and reads back a pattern beyond the old end, and the host
# finds it in the cluster (rbd export).
# Usage: BLK_STORAGE=rbd blk_resize.sh [PATH/TO/vhu-blk]
. "$(dirname "$0")/common.sh"
[ "$BLK_STORAGE" = rbd ] || e2e_fail "blk_resize.sh needs BLK_STORAGE=rbd"
OLD=$((16 * 1048576))
NEW=$((32 * 1048576))

e2e_init blk-resize-rbd
e2e_need_tools
e2e_fetch_kernel
blk_random "$E2E_WORK/pattern.bin" 4
storage_setup "$OLD"

sed -e "s/@OLD@/$OLD/g" -e "s/@NEW@/$NEW/g" >"$E2E_WORK/guest.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
DEV=/dev/vda
[ -b $DEV ] || fail "no $DEV"
sz=$(cat /sys/block/vda/size)
[ "$sz" = $((@OLD@ / 512)) ] || fail "size $sz sectors at start"
echo "guest: ready-for-resize"
i=0
while [ "$(cat /sys/block/vda/size)" = "$sz" ] && [ $i -lt 1200 ]; do
	sleep 0.1
	i=$((i + 1))
done
new=$(cat /sys/block/vda/size)
[ "$new" = $((@NEW@ / 512)) ] || fail "size $new sectors after the resize"
echo "guest: new size $new sectors after $i polls"
dd if=/pattern.bin of=$DEV bs=1M seek=24 count=4 oflag=direct conv=notrunc 2>/dev/null ||
	fail "write beyond the old end failed"
dd if=$DEV of=/tmp/back bs=1M skip=24 count=4 iflag=direct 2>/dev/null || fail "read back failed"
cmp /tmp/back /pattern.bin || fail "data beyond the old end differs"
echo "guest: pattern beyond the old end verified"
exit 0
GUEST

E2E_INITRAMFS_FILES="$E2E_WORK/pattern.bin:/pattern.bin"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_blk
E2E_INITRD="$E2E_WORK/initrd"

SOCK="$E2E_WORK/blk.sock"
VHU_LOG=info blk_start vhu-blk.log "$IMAGE"
(
	for _ in $(seq 1200); do
		grep -aq "guest: ready-for-resize" "$E2E_WORK/console.log" 2>/dev/null && break
		sleep 0.1
	done
	timeout 60 rbd -c "$CEPH_CONF" resize --no-progress --size 32M rbd/e2e
	echo "host: resized ($?)" >"$E2E_WORK/host.log"
) &
CONTROLLER=$!
guest_ok=0
blk_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-240}" 1 && guest_ok=1
wait "$CONTROLLER"
blk_stop_checked vhu-blk.log
grep -a "guest:" "$E2E_WORK/console.log" | sed 's/^/  /' >&2
grep -q "resized (0)" "$E2E_WORK/host.log" || e2e_fail "rbd resize failed"
grep -aq "new size" "$E2E_WORK/console.log" || e2e_fail "the guest kernel did not report the new size"
[ "$guest_ok" = 1 ] || e2e_fail "guest did not pass"
grep -q "image resized" "$E2E_WORK/vhu-blk.log" || e2e_fail "vhu-blk did not log the resize"
storage_export "$E2E_WORK/disk.out"
cmp -n 4194304 "$E2E_WORK/pattern.bin" "$E2E_WORK/disk.out" 0 25165824 ||
	e2e_fail "the cluster does not hold what the guest wrote beyond the old end"
e2e_log "PASS (guest run ${E2E_QEMU_SECONDS}s)"
