#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Manual pages (TAP), as installed by `meson install` into a scratch
# DESTDIR: `man vhu-blk` and `man FUNCTION` resolve for every daemon and
# every exported function, every daemon page documents exactly the options
# its --help lists, every public header has its page and is listed in
# libvhu(3), and groff renders every page without a warning.
# usage: man.sh BUILD_ROOT SOURCE_ROOT
set -u
build=$1 src=$2
. "$src/tests/lib/tap.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhu-man.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if ! command -v man >/dev/null || ! command -v scdoc >/dev/null; then
	not_ok "man and scdoc present" "apt-get install man-db scdoc (scripts/deps)"
	tap_done
	exit
fi
intro() { meson_opt "$build" "$1"; }
prefix=$(intro prefix)
install_destdir "$build"
export MANPATH=$root$prefix/$(intro mandir) MANWIDTH=100 LC_ALL=C.UTF-8
bindir=$root$prefix/$(intro bindir)

# Long options of a --help text, or of a page's OPTIONS section.
help_opts() { grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }
for exe in "$bindir"/vhu-*; do
	d=$(basename "$exe")
	if ! page=$(man -w "$d" 2>&1); then
		not_ok "man $d" "$page"
		continue
	fi
	LD_LIBRARY_PATH="$root$prefix/$(intro libdir)" "$exe" --help | help_opts >"$WORK/help"
	man "$d" 2>/dev/null | sed -n '/^OPTIONS/,/^[A-Z]/p' | help_opts >"$WORK/man"
	if diff "$WORK/help" "$WORK/man" >"$WORK/diff"; then
		ok "man $d ($page) documents the $(wc -l <"$WORK/help") options of $d --help"
	else
		not_ok "man $d: OPTIONS differ from --help (< only in --help, > only in the page: man/$d.1.scd)" \
			"$(grep '^[<>]' "$WORK/diff" | tr '\n' ' ')"
	fi
done

# Every function the libraries export has a page.
missing=""
nfunc=0
for lib in "$build/src/libvhu.so" "$build"/frontend/libvhu-frontend.so; do
	[ -e "$lib" ] || continue
	for f in $(nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }'); do
		nfunc=$((nfunc + 1))
		man -w "$f" >/dev/null 2>&1 || missing="$missing $f"
	done
done
# The static archive also holds the front end's internal functions: those
# frontend.h declares.
for f in $(nm --defined-only "$build"/frontend/libvhu-frontend.a 2>/dev/null | awk '$2 == "T" && $3 ~ /^vhuf_/ { print $3 }'); do
	grep -qw "$f" "$src/include/vhu/frontend.h" || continue
	nfunc=$((nfunc + 1))
	man -w "$f" >/dev/null 2>&1 || missing="$missing $f"
done
if [ -z "$missing" ] && [ "$nfunc" -gt 60 ]; then
	ok "man FUNCTION resolves for all $nfunc exported functions"
else
	not_ok "man FUNCTION for every exported function ($nfunc)" "no page:$missing"
fi

# Every installed header has its page, and libvhu(3) lists it.
bad=""
for h in "$root$prefix"/include/vhu/*.h; do
	b=$(basename "$h")
	[ "$b" = vhu.h ] && continue
	man -w "vhu_$b" >/dev/null 2>&1 || bad="$bad vhu_$b(no page: vhu_headers in include/vhu/meson.build)"
	man libvhu 2>/dev/null | grep -q "vhu_$b(3)" || bad="$bad vhu_$b(not in man/libvhu.3.scd)"
done
if [ -z "$bad" ]; then
	ok "every public header has a section 3 page listed in libvhu(3)"
else
	not_ok "header pages" "$bad"
fi

# groff renders each page without a warning, and its NAME line parses.
bad=""
npages=0
for p in "$MANPATH"/man1/*.1 "$MANPATH"/man3/*.3; do
	grep -q '^\.so ' "$p" && continue
	npages=$((npages + 1))
	w=$(man --warnings -l "$p" 2>&1 >/dev/null)
	[ -z "$w" ] || bad="$bad $(basename "$p"): $w"
	lexgrog "$p" >/dev/null 2>&1 || bad="$bad $(basename "$p"): no whatis"
done
if [ -z "$bad" ] && [ "$npages" -ge 12 ]; then
	ok "$npages pages render without a groff warning and have a NAME line"
else
	not_ok "pages render cleanly ($npages)" "$bad"
fi
tap_done
