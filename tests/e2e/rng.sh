#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: a Linux guest in QEMU reads /dev/hwrng from a
# vhost-user-rng-pci device served by vhu-rng.
# Usage: rng.sh [PATH/TO/vhu-rng [DAEMON OPTION...]]
#   (default binary: $VHU_BUILD_ROOT/devices/rng/vhu-rng)
set -u
. "$(dirname "$0")/lib.sh"

RNG=${1:-${VHU_BUILD_ROOT:-.}/devices/rng/vhu-rng}
shift $(($# > 0 ? 1 : 0))
[ -x "$RNG" ] || e2e_fail "vhu-rng binary not found at $RNG"

e2e_init rng
e2e_need_tools
e2e_fetch_kernel

cat >"$E2E_WORK/guest.sh" <<'GUEST'
fail() { echo "guest: $*"; exit 1; }
avail=$(cat /sys/class/misc/hw_random/rng_available) || fail "no hw_random"
cur=$(cat /sys/class/misc/hw_random/rng_current)
echo "guest: rng_available=$avail rng_current=$cur"
case "$cur" in virtio_rng*) ;; *) fail "current rng is '$cur', not virtio_rng" ;; esac
[ -c /dev/hwrng ] || fail "/dev/hwrng missing"
dd if=/dev/hwrng of=/tmp/a bs=64 count=4 2>/dev/null || fail "read a failed"
dd if=/dev/hwrng of=/tmp/b bs=4096 count=4 2>/dev/null || fail "read b failed"
na=$(wc -c </tmp/a); nb=$(wc -c </tmp/b)
[ "$na" -eq 256 ] || fail "read $na bytes, wanted 256"
[ "$nb" -eq 16384 ] || fail "read $nb bytes, wanted 16384"
od -An -tx1 /tmp/a | head -n 2
[ -n "$(od -An -tx1 -v /tmp/a | tr -d ' 0\n')" ] || fail "bytes are all zero"
head -c 256 /tmp/b >/tmp/b256
cmp -s /tmp/a /tmp/b256 && fail "two reads returned the same bytes"
exit 0
GUEST

e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_rng
E2E_INITRD="$E2E_WORK/initrd"

SOCK="$E2E_WORK/rng.sock"
e2e_spawn RNG_PID "$E2E_WORK/vhu-rng.log" "$RNG" --socket-path "$SOCK" -v "$@"
e2e_wait_socket "$SOCK" || e2e_fail "vhu-rng did not listen: $(cat "$E2E_WORK/vhu-rng.log")"

guest_ok=0
e2e_run_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-120}" \
	-chardev "socket,id=rng0,path=$SOCK" \
	-device vhost-user-rng-pci,chardev=rng0 && guest_ok=1

e2e_stop "$RNG_PID"
rc=$?
sed 's/^/  vhu-rng: /' "$E2E_WORK/vhu-rng.log" >&2
[ "$guest_ok" = 1 ] || e2e_fail "guest did not pass"
[ "$rc" -eq 0 ] || e2e_fail "vhu-rng exited with status $rc after SIGTERM"
e2e_log "PASS (guest run ${E2E_QEMU_SECONDS}s)"
