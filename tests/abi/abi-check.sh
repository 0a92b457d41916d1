#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# ABI discipline (TAP): a shared library (libvhu.so, libvhu-frontend.so)
# against the committed baseline (abi/LIB.*).
# Under the baseline's soname, a symbol may be added, never removed, and no
# exported function or variable may change its type (abidiff from
# abigail-tools: a public struct that grows or changes layout counts), unless
# abi/libvhu.abignore suppresses it after review.  A new soname starts a new
# ABI: the check passes and asks for tools/abi-baseline.  docs/abi.md.
# usage: abi-check.sh BUILD_ROOT SOURCE_ROOT [LIB]   (LIB: libvhu by default)
set -u
build=$1 src=$2 lib=${3:-libvhu}
. "$src/tests/lib/tap.sh"
. "$src/tools/abi-lib.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhu-abi.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
so=$(readlink -f "$build/$(abi_lib_path "$lib")")
base_abi=$src/abi/$lib.abi base_syms=$src/abi/$lib.symbols
if ! command -v abidiff >/dev/null; then
	not_ok "abidiff present" "apt-get install abigail-tools (scripts/deps test)"
	[ "$failed" -eq 0 ] || echo "# an incompatible change to $lib.so: bump its soname, or, before the first release only, re-take the baseline (tools/abi-baseline BUILD_DIR; docs/abi.md)"
tap_done
	exit
fi
base_soname=$(sed -n "s/.*soname='\([^']*\)'.*/\1/p;q" "$base_abi")
soname=$(abi_soname "$so")
if [ "$soname" != "$base_soname" ]; then
	ok "soname $soname differs from the baseline's ($base_soname): a new ABI # re-take it: tools/abi-baseline"
	[ "$failed" -eq 0 ] || echo "# an incompatible change to $lib.so: bump its soname, or, before the first release only, re-take the baseline (tools/abi-baseline BUILD_DIR; docs/abi.md)"
tap_done
	exit
fi
ok "soname $soname as in the baseline"

abi_symbols "$so" >"$WORK/syms"
removed=$(comm -23 "$base_syms" "$WORK/syms")
added=$(comm -13 "$base_syms" "$WORK/syms")
if [ -z "$removed" ]; then
	ok "no baseline symbol removed ($(wc -l <"$base_syms") in the baseline, $(echo -n "$added" | grep -c .) added)"
else
	not_ok "symbols removed under soname $soname" $removed
fi
suppr=()
[ -f "$src/abi/$lib.abignore" ] && suppr=(--suppressions "$src/abi/$lib.abignore")
abidiff --headers-dir2 "$src/include/vhu" --drop-private-types "${suppr[@]}" \
	"$base_abi" "$so" >"$WORK/diff" 2>&1
rc=$?
# abidiff: bit 1 error, 2 usage, 4 some change, 8 incompatible change.
# Additions set bit 4 too: judge the summary lines, not the bit.
changes=$(awk '/changes summary:/ {
	for (i = 1; i <= NF; i++) if ($i ~ /^(Removed|Changed)/) { n = $(i - 1); gsub(/[^0-9]/, "", n); s += n }
} END { print s + 0 }' "$WORK/diff")
if [ $((rc & 3)) -ne 0 ]; then
	not_ok "abidiff ran" "exit $rc" "$(head -20 "$WORK/diff")"
elif [ $((rc & 8)) -ne 0 ] || [ "$changes" -ne 0 ]; then
	not_ok "abidiff: no removed or changed function/variable under soname $soname (exit $rc)" \
		"$(head -60 "$WORK/diff")"
else
	ok "abidiff: additions only (exit $rc) # $(grep 'changes summary' "$WORK/diff" | tr '\n' ' ')"
fi
[ "$failed" -eq 0 ] || echo "# an incompatible change to $lib.so: bump its soname, or, before the first release only, re-take the baseline (tools/abi-baseline BUILD_DIR; docs/abi.md)"
tap_done
