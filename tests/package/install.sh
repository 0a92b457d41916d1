#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The install layout (TAP): `meson install` into a scratch DESTDIR, then
# check what an operator and a library user find there: every daemon in
# bin/ next to its vhost-user JSON descriptor, no benchmark tool unless
# asked for, pkg-config files without repeated flags, headers that compile
# alone, and a device built from the installed files with pkg-config (gcc
# and clang) that runs with the loader pointed at the prefix, as
# docs/install.md tells users to do.
# usage: install.sh BUILD_ROOT SOURCE_ROOT
set -u
build=$1 src=$2
. "$src/tests/lib/tap.sh"
tap_scratch vhu-install
intro() { meson_opt "$build" "$1"; }
prefix=$(intro prefix)
bindir=$prefix/$(intro bindir)
libdir=$prefix/$(intro libdir)
libexecdir=$prefix/$(intro libexecdir)
datadir=$prefix/$(intro datadir)
bench_tools=$(intro bench_tools)

install_destdir "$build"
ok "meson install into a DESTDIR"

# Daemons: one JSON descriptor each, pointing into bin/; nothing else there
# unless bench_tools.
descs=("$root$datadir"/qemu/vhost-user/*.json)
daemons=()
bad=""
for j in "${descs[@]}"; do
	bin=$(jq -r .binary "$j") type=$(jq -r .type "$j")
	daemons+=("$(basename "$bin")")
	[ "$(dirname "$bin")" = "$bindir" ] || bad="$bad $j:$bin(not in $bindir)"
	[ -x "$root$bin" ] || { bad="$bad $j:$bin(missing)"; continue; }
	got=$(LD_LIBRARY_PATH="$root$libdir" "$root$bin" --print-capabilities | jq -r .type)
	[ "$got" = "$type" ] || bad="$bad $bin(--print-capabilities type '$got', descriptor '$type')"
done
if [ ${#daemons[@]} -ge 3 ] && [ -z "$bad" ]; then
	ok "${#daemons[@]} daemons (${daemons[*]}) in $bindir, each with a JSON descriptor that matches --print-capabilities"
else
	not_ok "daemons and their descriptors" "descriptors: ${descs[*]}" "problems:$bad"
fi
if [ -d "$root$libexecdir" ] && [ -n "$(ls -A "$root$libexecdir")" ]; then
	not_ok "nothing in libexec" "$(ls "$root$libexecdir")"
else
	ok "nothing in libexec"
fi
extra=$(ls "$root$bindir" | grep -vxF -f <(printf '%s\n' "${daemons[@]}"))
want_extra=""
[ "$bench_tools" = True ] && want_extra=$(printf 'vhu-bench\nvhu-net-lowload')
if [ "$extra" = "$want_extra" ]; then
	ok "bin/ holds the daemons only (bench_tools=$bench_tools)"
else
	not_ok "bin/ holds the daemons only (bench_tools=$bench_tools)" "extra: $extra" "want: $want_extra"
fi

# pkg-config, pointed at the DESTDIR with the sysroot variable.
export PKG_CONFIG_PATH="$root$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
for pc in libvhu libvhu-frontend; do
	libs=$(pkg-config --libs "$pc" 2>&1)
	dup=$(tr ' ' '\n' <<<"$libs" | grep . | sort | uniq -d)
	if [ -n "$libs" ] && [ -z "$dup" ] && grep -q -- "-l${pc#lib}" <<<"$libs"; then
		ok "pkg-config --libs $pc: $libs"
	else
		not_ok "pkg-config --libs $pc" "got: $libs" "repeated: $dup"
	fi
done
cflags=$(pkg-config --cflags libvhu)

# Each installed header compiles on its own, as C and as C++.
bad=""
for h in "$root$prefix"/include/vhu/*.h; do
	name=vhu/$(basename "$h")
	printf '#include <%s>\n' "$name" >"$WORK/h.c"
	cc -std=gnu11 -Wall -Wextra -Werror $cflags -c "$WORK/h.c" -o "$WORK/h.o" 2>>"$WORK/h.err" || bad="$bad $name(C)"
	cp "$WORK/h.c" "$WORK/h.cc"
	g++ -Wall -Wextra -Werror $cflags -c "$WORK/h.cc" -o "$WORK/h.o" 2>>"$WORK/h.err" || bad="$bad $name(C++)"
done
if [ -z "$bad" ]; then
	ok "every installed header compiles alone as C and C++"
else
	not_ok "every installed header compiles alone" "failed:$bad" "$(head -5 "$WORK/h.err")"
fi

# A device built from the installed files only, with each compiler, runs
# against the installed libvhu.so (LD_LIBRARY_PATH = the prefix's libdir).
for compiler in gcc clang; do
	exe=$WORK/rng-$compiler sock=$WORK/$compiler.sock
	# shellcheck disable=SC2046
	if ! $compiler -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
		$(pkg-config --cflags libvhu) "$src/examples/rng_minimal.c" -o "$exe" \
		$(pkg-config --libs libvhu) 2>"$WORK/$compiler.err"; then
		not_ok "$compiler: a device built with pkg-config libvhu" "$(head -5 "$WORK/$compiler.err")"
		continue
	fi
	LD_LIBRARY_PATH="$root$libdir" "$exe" --socket-path "$sock" 2>"$WORK/$compiler.run" &
	pids+=($!)
	lib=$(LD_LIBRARY_PATH="$root$libdir" ldd "$exe" | awk '$1 ~ /^libvhu\.so/ { print $3 }')
	if [ "$lib" = "$(readlink -f "$root$libdir/libvhu.so.0" 2>/dev/null || echo "$root$libdir/libvhu.so.0")" ] ||
		[ "$lib" = "$root$libdir/libvhu.so.0" ]; then
		if wait_listening "$sock"; then
			ok "$compiler: a device built with pkg-config libvhu runs on $lib"
		else
			not_ok "$compiler: device built against the prefix did not listen" "$(cat "$WORK/$compiler.run")"
		fi
	else
		not_ok "$compiler: device resolves libvhu.so to the prefix" "ldd: '$lib'"
	fi
done
tap_done
