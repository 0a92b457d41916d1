# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by the vhu-blk end-to-end scripts: sources ../lib.sh, finds the
# binary, builds the static guest helper, starts vhu-blk.
set -u
E2E_BLK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$E2E_BLK_DIR/../lib.sh"

BLK=${1:-${VHU_BUILD_ROOT:-.}/devices/blk/vhu-blk}
[ -x "$BLK" ] || e2e_fail "vhu-blk binary not found at $BLK"
. "$E2E_BLK_DIR/storage.sh"

# Static helper for write-zeroes from the guest (busybox has none).
blk_build_helper() {
	BLKZERO="$E2E_WORK/vhu-e2e-blkzero"
	cc -static -O2 -o "$BLKZERO" "$E2E_BLK_DIR/blkzero.c" ||
		e2e_fail "cannot build the static guest helper (libc.a missing?)"
}

# blk_random FILE MIB: random content.
blk_random() {
	dd if=/dev/urandom of="$1" bs=1M count="$2" status=none || e2e_fail "cannot create $1"
}

# blk_start LOGNAME ARGS...: start vhu-blk on $SOCK, set BLK_PID.
blk_start() {
	local log=$1
	shift
	e2e_spawn BLK_PID "$E2E_WORK/$log" "$BLK" --socket-path "$SOCK" "$@"
	e2e_wait_socket "$SOCK" || e2e_fail "vhu-blk did not listen: $(cat "$E2E_WORK/$log")"
}

# blk_stop_checked LOG: stop vhu-blk (expect exit 0 on SIGTERM), show its log.
blk_stop_checked() {
	local log=$1 rc
	e2e_stop "$BLK_PID"
	rc=$?
	sed 's/^/  vhu-blk: /' "$E2E_WORK/$log" >&2
	[ "$rc" -eq 0 ] || e2e_fail "vhu-blk exited with status $rc after SIGTERM"
}

# blk_qemu LOG TIMEOUT NQ [EXTRA QEMU ARGS]: guest with a vhost-user-blk-pci
# on $SOCK (chardev options in $BLK_CHARDEV_OPTS, extra device properties
# such as ",packed=on" in $BLK_DEVICE_OPTS).
blk_qemu() {
	local log=$1 tmo=$2 nq=$3
	shift 3
	e2e_run_qemu "$log" "$tmo" -smp "$nq" \
		-chardev "socket,id=blk0,path=$SOCK${BLK_CHARDEV_OPTS:-}" \
		-device "vhost-user-blk-pci,chardev=blk0,num-queues=$nq${BLK_DEVICE_OPTS:-}" "$@"
}
