#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: the front end goes away and comes back.  A first guest writes
# and syncs 300 files, then keeps writing (open files, requests in flight)
# until the host SIGKILLs its QEMU; a second QEMU is started against the
# same vhu-fs, whose guest mounts the share, finds every synced file intact,
# writes more and unmounts.  vhu-fs serves both, ends the dead session by
# itself and exits 0 on SIGTERM; the host checks the files.
# Usage: fs_restart.sh [PATH/TO/vhu-fs]
. "$(dirname "$0")/common.sh"

e2e_init fs-restart
e2e_need_tools
e2e_fetch_kernel
fs_build_guest
SHARE="$E2E_WORK/share"
SOCK="$E2E_WORK/fs.sock"
mkdir -p "$SHARE"

cat >"$E2E_WORK/guest1.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
mkdir -p /mnt
mount -t virtiofs share /mnt || fail "mount"
/fsguest many /mnt 0 300 || fail "writer"
sync
exec 3</mnt/p0/1
echo "guest: written"
# Until the host kills us: more writes, so that some are in flight.
i=0
while :; do
	dd if=/dev/zero of=/mnt/busy.$((i % 4)) bs=64k count=16 2>/dev/null
	i=$((i + 1))
done
GUEST
cat >"$E2E_WORK/guest2.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
mkdir -p /mnt
mount -t virtiofs share /mnt || fail "mount after the restart"
/fsguest manyverify /mnt 0 300 || fail "files of the first guest"
/fsguest many /mnt 1 100 || fail "writer"
umount /mnt || fail "umount"
echo "guest: second guest done"
GUEST
E2E_INITRAMFS_FILES="$FSGUEST:/fsguest"
e2e_build_initramfs "$E2E_WORK/initrd1" "$E2E_WORK/guest1.sh" $FS_MODULES
e2e_build_initramfs "$E2E_WORK/initrd2" "$E2E_WORK/guest2.sh" $FS_MODULES

VHU_LOG=info fs_start vhu-fs.log

E2E_INITRD="$E2E_WORK/initrd1"
# (its stderr aside: e2e_run_qemu reports the kill as a failure)
fs_qemu "$E2E_WORK/console1.log" "${VHU_E2E_TIMEOUT:-300}" 1 -pidfile "$E2E_WORK/qemu1.pid" \
	2>"$E2E_WORK/qemu1.stderr" &
RUN1=$!
for _ in $(seq 1200); do
	grep -aq "guest: written" "$E2E_WORK/console1.log" 2>/dev/null && break
	grep -aq "guest: FAIL\|$E2E_MARKER" "$E2E_WORK/console1.log" 2>/dev/null && break
	sleep 0.1
done
grep -aq "guest: written" "$E2E_WORK/console1.log" ||
	{ wait "$RUN1"; e2e_fail "the first guest did not write its files"; }
sleep 1
kill -KILL "$(cat "$E2E_WORK/qemu1.pid")" || e2e_fail "cannot kill the first QEMU"
wait "$RUN1"
e2e_log "first QEMU killed with SIGKILL mid-I/O"

E2E_INITRD="$E2E_WORK/initrd2"
fs_qemu "$E2E_WORK/console2.log" "${VHU_E2E_TIMEOUT:-300}" 1 ||
	e2e_fail "the second guest failed"
grep -a "guest:" "$E2E_WORK/console2.log" | sed 's/^/  /' >&2
fs_stop_checked vhu-fs.log
grep -q "served 2 front end(s)" "$E2E_WORK/vhu-fs.log" || e2e_fail "vhu-fs did not serve both"
"$FSGUEST" manyverify "$SHARE" 0 300 >&2 || e2e_fail "first guest's files on the host"
"$FSGUEST" manyverify "$SHARE" 1 100 >&2 || e2e_fail "second guest's files on the host"
e2e_log "PASS (second guest run ${E2E_QEMU_SECONDS}s)"
