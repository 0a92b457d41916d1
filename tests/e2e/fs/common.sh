# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by the vhu-fs end-to-end scripts: sources ../lib.sh, finds the
# binary, builds the static guest helper, starts vhu-fs, boots a guest
# with a vhost-user-fs-pci device on it.
set -u
E2E_FS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$E2E_FS_DIR/../lib.sh"

FS=${1:-${VHU_BUILD_ROOT:-.}/devices/fs/vhu-fs}
[ -x "$FS" ] || e2e_fail "vhu-fs binary not found at $FS"
FS_MODULES="virtio_pci virtiofs"

# fs_build_guest: $FSGUEST, the static guest helper (also run on the host).
fs_build_guest() {
	FSGUEST="$E2E_WORK/fsguest"
	cc -static -O2 -o "$FSGUEST" "$E2E_FS_DIR/fsguest.c" ||
		e2e_fail "cannot build the static guest helper (libc.a missing?)"
}

# fs_start LOGNAME ARGS...: vhu-fs on $SOCK sharing $SHARE, sets FS_PID.
fs_start() {
	local log=$1
	shift
	e2e_spawn FS_PID "$E2E_WORK/$log" "$FS" --socket-path "$SOCK" --shared-dir "$SHARE" "$@"
	e2e_wait_socket "$SOCK" || e2e_fail "vhu-fs did not listen: $(cat "$E2E_WORK/$log")"
}

# fs_stop_checked LOGNAME: SIGTERM vhu-fs, it must exit 0; show its log.
fs_stop_checked() {
	local log=$1 rc
	e2e_stop "$FS_PID"
	rc=$?
	sed 's/^/  vhu-fs: /' "$E2E_WORK/$log" >&2
	[ "$rc" -eq 0 ] || e2e_fail "vhu-fs exited with status $rc after SIGTERM"
}

# fs_qemu LOG TIMEOUT NCPU [EXTRA QEMU ARGS]: a guest with
# vhost-user-fs-pci (tag "share") on $SOCK; device properties such as
# ",num-request-queues=2" in $FS_DEVICE_OPTS.
fs_qemu() {
	local log=$1 tmo=$2 ncpu=$3
	shift 3
	e2e_run_qemu "$log" "$tmo" -smp "$ncpu" \
		-chardev "socket,id=fs0,path=$SOCK" \
		-device "vhost-user-fs-pci,chardev=fs0,tag=share${FS_DEVICE_OPTS:-}" "$@"
}
