#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A device writer's build (TAP): libvhu installed into a scratch DESTDIR,
# pkg-config and the loader pointed at it as docs/writing-a-device.md says,
# then examples/ (its Makefile and sources copied out of the tree) built
# with gcc and with clang, against the shared and against the static
# libraries, and each build run: rng-minimal and console serve
# examples/client (libvhu-frontend) over a real socket.
# usage: install.sh BUILD_ROOT SOURCE_ROOT
set -u
build=$1 src=$2
. "$src/tests/lib/tap.sh"
tap_scratch vhu-api-install
libdir=$(meson_opt "$build" prefix)/$(meson_opt "$build" libdir)
install_destdir "$build"
# What the guide tells a user with a prefix of their own (the sysroot
# variable stands for the DESTDIR here).
export PKG_CONFIG_PATH="$root$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
export LD_LIBRARY_PATH="$root$libdir"

# The archives hold plain machine code: no compiler's LTO bytecode, which
# another compiler cannot link and GCC would recompile with the user's
# flags.
for a in libvhu.a libvhu-frontend.a libvhu-frontend.so libvhu.so; do
	[ -e "$root$libdir/$a" ] || { not_ok "$a installed"; continue; }
	case $a in *.so) ok "$a installed"; continue ;; esac
	text=0
	while read -r size; do
		text=$((text + 16#$size))
	done < <(readelf -SW "$root$libdir/$a" | sed -n 's/.* \.text  *PROGBITS  *[0-9a-f]*  *[0-9a-f]*  *\([0-9a-f]*\) .*/\1/p')
	# GCC's LTO sections; clang's LTO objects are bitcode, not ELF at all.
	lto=$(readelf -SW "$root$libdir/$a" 2>&1 | grep -c '\.gnu\.lto_\|\.llvmbc\|Not an ELF')
	if [ "$text" -gt 0 ] && [ "$lto" -eq 0 ]; then
		ok "$a installed: $text bytes of machine code, no LTO sections"
	else
		not_ok "$a: plain machine code" "$text bytes of .text, $lto LTO sections"
	fi
done

# The guide's listing is the example, so what a reader copies compiles.
if diff <(awk '/^```c$/ { f = 1; next } /^```$/ { if (f) exit } f' "$src/docs/writing-a-device.md") \
	<(sed -n '/^#include <errno.h>/,$p' "$src/examples/rng_minimal.c") >"$WORK/doc.diff"; then
	ok "docs/writing-a-device.md lists examples/rng_minimal.c as it is"
else
	not_ok "the guide's listing differs from examples/rng_minimal.c" "$(head -10 "$WORK/doc.diff")"
fi

# run_pair NAME CMD...: start the device CMD on $sock, run the client with
# the operations in $ops, compare its output with $want.
run_pair() {
	local name=$1 out
	shift
	"$@" --socket-path "$sock" <"${stdin:-/dev/null}" >"$WORK/dev.out" 2>"$WORK/dev.err" &
	local pid=$!
	pids+=("$pid")
	if ! wait_listening "$sock"; then
		not_ok "$name: device listens" "$(head -c 300 "$WORK/dev.err")"
		return 1
	fi
	# shellcheck disable=SC2086
	out=$("$dir/client" "$sock" $ops 2>&1)
	kill "$pid"
	wait "$pid"
	local rc=$?
	if [[ $out =~ $want ]] && [ "$rc" -eq 0 ]; then
		out=${out//$'\n'/; }
		ok "$name: ${out:0:48}... (device exit $rc)"
	else
		not_ok "$name" "client: $out" "device exit $rc: $(head -c 300 "$WORK/dev.err")"
		return 1
	fi
}

for cc in gcc clang; do
	for link in shared static; do
		dir=$WORK/$cc-$link
		mkdir -p "$dir"
		cp "$src"/examples/Makefile "$src"/examples/*.c "$dir/"
		static=0
		[ $link = static ] && static=1
		if ! make -C "$dir" CC="$cc" STATIC=$static \
			CFLAGS="-O2 -Wall -Wextra -Werror -Wno-unused-parameter" >"$dir/make.log" 2>&1; then
			not_ok "$cc, $link: make (examples/Makefile)" "$(tail -5 "$dir/make.log")"
			continue
		fi
		libs=$(ldd "$dir/rng-minimal" "$dir/client" | awk '/libvhu/ { print $3 }' | sort -u | tr '\n' ' ')
		if [ $link = static ]; then
			want_libs=""
		else
			want_libs="$(readlink -f "$root$libdir/libvhu-frontend.so.0") $(readlink -f "$root$libdir/libvhu.so.0") "
			libs=$(for l in $libs; do readlink -f "$l"; done | sort -u | tr '\n' ' ')
			want_libs=$(echo $want_libs | tr ' ' '\n' | sort -u | tr '\n' ' ')
		fi
		if [ "$libs" = "$want_libs" ]; then
			ok "$cc, $link: built; libvhu resolves to '${libs% }'"
		else
			not_ok "$cc, $link: linkage" "ldd: '$libs'" "want: '$want_libs'"
		fi
		sock=$WORK/$cc-$link-rng.sock ops="1 r:0 r:0" want='^0 64 [0-9a-f]{128}'$'\n''0 64 [0-9a-f]{128}$' \
			stdin="" run_pair "$cc, $link: rng-minimal serves 2 requests" "$dir/rng-minimal"
		mkfifo "$dir/in"
		exec 7<>"$dir/in"
		printf pong >&7
		sock=$WORK/$cc-$link-con.sock ops="2 w:1:ping r:0" want='^0 4 706f6e67$' \
			stdin="$dir/in" run_pair "$cc, $link: console reads stdin into the guest" "$dir/console" &&
			if [ "$(cat "$WORK/dev.out")" = ping ]; then
				ok "$cc, $link: console writes the guest's output to stdout"
			else
				not_ok "$cc, $link: console stdout" "got '$(cat "$WORK/dev.out")'"
			fi
		exec 7>&-
	done
done
tap_done
