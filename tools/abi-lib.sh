# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by tools/abi-baseline and tests/abi/abi-check.sh (docs/abi.md).

# The shared libraries under ABI discipline (the environment may name fewer).
ABI_LIBS=${ABI_LIBS:-"libvhu libvhu-frontend"}

# abi_lib_path LIB: the library's unversioned .so in the build tree.
abi_lib_path() {
	case $1 in
	libvhu) echo src/libvhu.so ;;
	libvhu-frontend) echo frontend/libvhu-frontend.so ;;
	*) return 1 ;;
	esac
}

# abi_dump SO HEADERS_DIR: abigail's description of SO, public types only,
# without paths of the build tree (stable across build directories).
abi_dump() {
	abidw --headers-dir "$2" --drop-private-types --no-corpus-path --no-comp-dir-path \
		--short-locs --type-id-style hash "$1"
}

# abi_symbols SO: exported symbols with their version node, sorted
# ("vhu_daemon_new@VHU_0.1").
abi_symbols() {
	nm -D --defined-only --with-symbol-versions "$1" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' |
		sed 's/@@*/@/' | grep -v '^VHUF\?_[0-9.]*@' | LC_ALL=C sort
}

# abi_soname SO
abi_soname() {
	readelf -d "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'
}
