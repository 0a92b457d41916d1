#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The performance gate (suite perf): bench/icount.sh counts the user-space
# instructions per request of vhu-blk (--null, 4 KiB writes, queue depth
# 32) and vhu-net (--loopback, 64 B frames through DPDK testpmd's
# virtio-user port) under callgrind, and each figure must stay within its
# budget in tests/perf/budgets.  Counting, not timing: the figure does not
# depend on what else the machine runs.
#   gate.sh BUILD_ROOT default|other
# "other": not the default build (sanitizers, no LTO, debug): the budgets
# do not apply, the test is skipped.
set -u
build=${1:?usage: gate.sh BUILD_ROOT default|other}
kind=${2:-other}
here=$(cd "$(dirname "$0")" && pwd)
src=${VHU_SOURCE_ROOT:-$here/../..}
if [ "$kind" != default ]; then
	echo "1..0 # SKIP budgets are for the default build (release + LTO); this one differs"
	exit 0
fi
budgets="$here/budgets"
mapfile -t whats < <(awk '!/^#/ && NF >= 2 { print $1 }' "$budgets")
echo "1..${#whats[@]}"
n=0
for what in "${whats[@]}"; do
	n=$((n + 1))
	budget=$(awk -v w="$what" '$1 == w { print $2 }' "$budgets")
	# A full disk (other jobs) can cost callgrind its profile: one retry.
	for try in 1 2; do
		out=$("$src/bench/icount.sh" -b "$build" -n 100000 -s 3 "$what" 2>&1)
		fig=$(echo "$out" | sed -n "s/^$what: \([0-9]*\) Ir\/.*/\1/p")
		[ -n "$fig" ] && [ "$fig" -gt 0 ] && break
	done
	if [ -z "$fig" ] || [ "$fig" -le 0 ]; then
		echo "not ok $n - $what: no figure"
		echo "$out" | sed 's/^/# /'
	elif [ "$fig" -le "$budget" ]; then
		echo "ok $n - $what: $fig instructions per request (budget $budget)"
		echo "# $out"
	else
		echo "not ok $n - $what: $fig instructions per request, over the budget of $budget"
		echo "# $out"
		echo "# the data path got dearer: find what with bench/icount.sh -k $what" \
			"(callgrind_annotate on the kept profile), or raise tests/perf/budgets with a reason"
	fi
done
