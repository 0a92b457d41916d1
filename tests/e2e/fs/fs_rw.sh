#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: a guest mounts vhu-fs's share (mount -t virtiofs) and runs
# tests/e2e/fs/fsguest.c: 1000 files of random sizes with checksums, rename
# / link / symlink / chmod / chown / truncate / fallocate / RENAME_EXCHANGE,
# mmap write + msync, fsync, a 5000-entry readdir, xattrs, flock between two
# processes; drops its caches (FORGETs on the hiprio queue), unmounts,
# mounts again and verifies everything from the host's copy.  With NCPU > 1:
# that many vCPUs and request queues, and as many parallel writers instead
# of the battery.  The host then checks the directory itself.
# Usage: fs_rw.sh [PATH/TO/vhu-fs] [NCPU] [EXTRA vhu-fs ARGS...]
. "$(dirname "$0")/common.sh"
NCPU=${2:-1}
shift 2 2>/dev/null || shift $#

e2e_init fs-rw
e2e_need_tools
e2e_fetch_kernel
fs_build_guest
SHARE="$E2E_WORK/share"
SOCK="$E2E_WORK/fs.sock"
mkdir -p "$SHARE"

# One vCPU: the whole battery.  More: parallel writers, one per vCPU
# (the battery again would double the run time under TCG).
sed -e "s/@NCPU@/$NCPU/g" >"$E2E_WORK/guest.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
NCPU=@NCPU@
N=$((600 / NCPU))
mkdir -p /mnt
mount -t virtiofs share /mnt || fail "mount -t virtiofs"
grep -q "share /mnt virtiofs" /proc/mounts || fail "not mounted as virtiofs"
if [ $NCPU = 1 ]; then
	FSGUEST_XATTR=1 /fsguest write /mnt || fail "fsguest write"
	# Evict what the guest caches: FORGETs on the hiprio queue.
	sync
	echo 2 >/proc/sys/vm/drop_caches
fi
i=0
pids=
while [ $i -lt $NCPU ]; do
	taskset -c $i /fsguest many /mnt $i $N &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait $p || fail "parallel writer"; done
sync
umount /mnt || fail "umount"
grep -q " /mnt " /proc/mounts && fail "still mounted"
mount -t virtiofs share /mnt || fail "mount again"
if [ $NCPU = 1 ]; then
	FSGUEST_XATTR=1 /fsguest verify /mnt || fail "verify after remount"
fi
i=0
while [ $i -lt $NCPU ]; do
	/fsguest manyverify /mnt $i $N || fail "writer $i's files after remount"
	i=$((i + 1))
done
umount /mnt || fail "umount again"
echo "guest: all done"
exit 0
GUEST

E2E_INITRAMFS_FILES="$FSGUEST:/fsguest"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" $FS_MODULES
E2E_INITRD="$E2E_WORK/initrd"

VHU_LOG=info fs_start vhu-fs.log --xattr --num-request-queues "$NCPU" "$@"
FS_DEVICE_OPTS=",num-request-queues=$NCPU"
fs_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-400}" "$NCPU" ||
	e2e_fail "guest failed"
grep -a "fsguest:\|guest:" "$E2E_WORK/console.log" | sed 's/^/  /' >&2
fs_stop_checked vhu-fs.log

# The host's own view: the same checks with the host's kernel and tools.
N=$((600 / NCPU))
for i in $(seq 0 $((NCPU - 1))); do
	"$FSGUEST" manyverify "$SHARE" "$i" "$N" >&2 || e2e_fail "p$i on the host"
	[ "$(ls "$SHARE/p$i" | wc -l)" = "$N" ] || e2e_fail "p$i: not $N files on the host"
done
if [ "$NCPU" = 1 ]; then
	FSGUEST_XATTR=1 "$FSGUEST" verify "$SHARE" >&2 || e2e_fail "host verify of the share"
	[ "$(stat -c '%a %u %g %h' "$SHARE/ops/b")" = "640 1234 5678 2" ] ||
		e2e_fail "ops/b on the host: $(stat -c '%a %u %g %h' "$SHARE/ops/b")"
	[ "$(readlink "$SHARE/ops/sym")" = b ] || e2e_fail "ops/sym on the host"
	[ "$(ls "$SHARE/many" | wc -l)" = 5000 ] || e2e_fail "many/ on the host"
	[ "$(stat -c %s "$SHARE/ops/trunc")" = 12345 ] || e2e_fail "ops/trunc on the host"
	grep -q "queue 0: [1-9][0-9]* requests" "$E2E_WORK/vhu-fs.log" ||
		e2e_fail "no FORGET came on the hiprio queue after drop_caches"
fi
# Which request queues carried the guest's requests (informational: the
# 6.1 guest driver sends every request on the first one).
grep -o "queue [0-9]*: [0-9]* requests" "$E2E_WORK/vhu-fs.log" | sed 's/^/  /' >&2
e2e_log "PASS (guest run ${E2E_QEMU_SECONDS}s)"
