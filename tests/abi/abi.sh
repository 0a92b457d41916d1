#!/bin/bash
# libvhu.so exports exactly the functions include/vhu declares, and a
# program linked against it (examples/rng_minimal.c) serves a front end.
# usage: abi.sh BUILD_ROOT SOURCE_ROOT
set -u
build=$1 src=$2
. "$src/tests/lib/tap.sh"
so=$(ls "$build"/src/libvhu.so.* | head -1)
exported=$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | grep -v '^VHU_' | sort)
declared=$(for h in protocol backend mem vring daemon channel log program; do
	sed 's#/\*.*\*/##' "$src/include/vhu/$h.h" | grep -v '^#' | grep -oE '\bvhu_[a-z0-9_]+ *\(' | tr -d '( '
done | sort -u)
if [ -n "$exported" ] && [ "$exported" = "$declared" ]; then
	ok "exported symbols == functions declared in include/vhu ($(echo "$exported" | wc -l))"
else
	not_ok "exported symbols differ from include/vhu" "$(diff <(echo "$exported") <(echo "$declared"))"
fi
if echo "$exported" | grep -qE '^vhu_(be_|on_|conn_|worker|mem_new|dirty|inflight_)'; then
	not_ok "internal symbols exported"
else
	ok "no internal symbol is exported"
fi
WORK=$(mktemp -d)
"$build/examples/rng-minimal" --socket-path "$WORK/rng.sock" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$WORK"' EXIT
if ldd "$build/examples/rng-minimal" | grep -q 'libvhu.so' && wait_listening "$WORK/rng.sock"; then
	ok "example linked against libvhu.so listens on its socket"
else
	not_ok "example linked against libvhu.so did not listen"
fi
tap_done
