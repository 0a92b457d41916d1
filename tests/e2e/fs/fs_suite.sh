#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: test suites nobody here wrote, from Debian's packages, run in
# one guest on a tmpfs and on vhu-fs's share (virtiofs), and compared:
#   stress-ng  every file-system and file-I/O stressor, 1 s each, --verify
#   fio        verify jobs (checksummed blocks written, read back, checked)
#              with psync, pvsync2, libaio (buffered and O_DIRECT),
#              io_uring, mmap, posixaio, fsync, O_SYNC, trims
#   dbench     the client.txt load (NetBench), 3 s
# Each program is copied into the initramfs with its shared libraries
# (e2e_dynamic_files).  The test fails if anything that passes on tmpfs
# does not pass on virtiofs, unless listed in EXPECTED below with the
# reason, or if an expected difference stops being one (the list must stay
# true).  Prints the table and the pass fractions.
# Usage: fs_suite.sh [PATH/TO/vhu-fs]
. "$(dirname "$0")/common.sh"

# test -> why it cannot pass over virtiofs (FUSE) as it does on tmpfs.
declare -A EXPECTED=(
)
# test -> why its outcome is reported but not judged (it varies run to run
# whatever the file system).
declare -A UNJUDGED=(
	[io-uring]="stress-ng 0.15.06 stats (IORING_OP_STATX) a file it may have removed: ENOENT on tmpfs too in some runs"
)

e2e_init fs-suite
e2e_need_tools
e2e_apt_install_missing stress-ng stress-ng fio fio dbench dbench
e2e_fetch_kernel
SHARE="$E2E_WORK/share"
SOCK="$E2E_WORK/fs.sock"
mkdir -p "$SHARE"

cat >"$E2E_WORK/guest.sh" <<'GUEST'
mkdir -p /mnt/vfs /mnt/tmp
mount -t virtiofs share /mnt/vfs || { echo "guest: FAIL: mount"; exit 1; }
mount -t tmpfs -o size=384m tmpfs /mnt/tmp || { echo "guest: FAIL: tmpfs"; exit 1; }
sh /suite_guest.sh /mnt/tmp tmpfs
sh /suite_guest.sh /mnt/vfs virtiofs
umount /mnt/vfs || { echo "guest: FAIL: umount"; exit 1; }
echo "guest: suite done"
GUEST

E2E_INITRAMFS_FILES="$E2E_FS_DIR/suite_guest.sh:/suite_guest.sh $E2E_FS_DIR/suite.fio:/suite.fio \
/usr/share/dbench/client.txt:/client.txt $(e2e_dynamic_files stress-ng fio dbench | tr '\n' ' ')"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" $FS_MODULES
E2E_INITRD="$E2E_WORK/initrd"
e2e_log "initramfs $(du -m "$E2E_WORK/initrd" | cut -f1) MiB"

VHU_LOG=info fs_start vhu-fs.log --xattr
VHU_E2E_MEM=${VHU_E2E_MEM:-1G} fs_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-600}" 1 ||
	e2e_fail "guest failed"
fs_stop_checked vhu-fs.log
grep -a "SUITE-LOG" "$E2E_WORK/console.log" | sed 's/^/  /' >&2

# status: 0 pass; stress-ng 3 (no resource) and 4 (not implemented) skip.
classify() {
	case "$1:$2" in
	*:0) echo pass ;;
	stress-ng:3 | stress-ng:4) echo skip ;;
	*) echo fail ;;
	esac
}
declare -A ST
declare -A SECS
while read -r _ tool test label rc t0 t1; do
	ST[$tool/$test/$label]=$(classify "$tool" "$rc")
	SECS[$tool/$test/$label]=$(awk -v a="$t0" -v b="${t1%$'\r'}" 'BEGIN { printf "%.1f", b - a }')
done < <(grep -a "^SUITE " "$E2E_WORK/console.log")

bad=0
declare -A PASS TOTAL
printf '  %-10s %-26s %-14s %-14s\n' tool test "tmpfs (s)" "virtiofs (s)" >&2
for key in $(printf '%s\n' "${!ST[@]}" | grep '/tmpfs$' | sort); do
	tool=${key%%/*}
	rest=${key#*/}
	test=${rest%/*}
	t=${ST[$tool/$test/tmpfs]}
	v=${ST[$tool/$test/virtiofs]:-missing}
	note=
	for label in tmpfs virtiofs; do
		TOTAL[$tool/$label]=$((${TOTAL[$tool/$label]:-0} + 1))
		[ "${ST[$tool/$test/$label]:-}" = pass ] && PASS[$tool/$label]=$((${PASS[$tool/$label]:-0} + 1))
	done
	if [ -n "${UNJUDGED[$test]:-}" ]; then
		note="not judged: ${UNJUDGED[$test]}"
	elif [ -n "${EXPECTED[$test]:-}" ]; then
		note="expected: ${EXPECTED[$test]}"
		if [ "$t" = "$v" ]; then
			note="EXPECTED DIFFERENCE GONE (update the list)"
			bad=1
		fi
	elif [ "$v" != pass ] && [ "$t" = pass ]; then
		note="REGRESSION"
		bad=1
	elif [ "$v" = fail ]; then
		note="FAILS (on tmpfs too)"
	fi
	printf '  %-10s %-26s %-14s %-14s %s\n' "$tool" "$test" "$t (${SECS[$tool/$test/tmpfs]})" \
		"$v (${SECS[$tool/$test/virtiofs]:-})" "$note" >&2
done
for tool in stress-ng fio dbench; do
	e2e_log "$tool: tmpfs ${PASS[$tool/tmpfs]:-0}/${TOTAL[$tool/tmpfs]:-0} pass," \
		"virtiofs ${PASS[$tool/virtiofs]:-0}/${TOTAL[$tool/virtiofs]:-0} pass"
done
[ "${#ST[@]}" -gt 100 ] || e2e_fail "the suite did not run (${#ST[@]} results)"
# The tools themselves must work in this guest: most of each passes on tmpfs.
for tool in stress-ng fio dbench; do
	[ $((${PASS[$tool/tmpfs]:-0} * 4)) -ge $((${TOTAL[$tool/tmpfs]:-1} * 3)) ] ||
		e2e_fail "$tool does not work in the guest (tmpfs: ${PASS[$tool/tmpfs]:-0}/${TOTAL[$tool/tmpfs]:-0})"
done
[ "$bad" = 0 ] || e2e_fail "virtiofs differs from tmpfs beyond the expected differences"
e2e_log "PASS (guest run ${E2E_QEMU_SECONDS}s)"
