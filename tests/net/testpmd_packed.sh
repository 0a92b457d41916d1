#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# DPDK testpmd with packed virtqueues (net_virtio_user packed_vq=1, virtio
# 1.1 2.8) through vhu-net (TAP output).  The checks: testpmd really uses
# the packed ring (its driver falls back to split rings when the back end
# does not offer VIRTIO_F_RING_PACKED), frames round-trip, and vhu-net's
# counters agree.
#
#   testpmd_packed.sh loopback    PATH/TO/vhu-net   one port, io forwarding
#   testpmd_packed.sh loopback-mq PATH/TO/vhu-net   same, 2 queue pairs
#   testpmd_packed.sh peer        PATH/TO/vhu-net   vhu-net --peer between a
#        packed port and a split port of one testpmd (io forwarding)
#
# Same machine notes as testpmd.sh: no hugepages, vhu-net on core 0.
set -u
MODE=${1:?usage: testpmd_packed.sh loopback|loopback-mq|peer PATH/TO/vhu-net}
NET=${2:?usage: testpmd_packed.sh MODE PATH/TO/vhu-net}
RUN_S=${VHU_TESTPMD_SECONDS:-3}
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for line in "$@"; do
		echo "# $line"
	done
}

TESTPMD=$(command -v dpdk-testpmd || true)
if [ -z "$TESTPMD" ]; then
	echo "1..0 # SKIP dpdk-testpmd not installed"
	exit 0
fi
WORK=$(mktemp -d /tmp/vhu-net-packed.XXXXXX)
NET_PID=
cleanup() {
	[ -n "$NET_PID" ] && kill -KILL "$NET_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

listening() {
	awk -v p="$1" '$4 == "00010000" && $8 == p { f = 1 } END { exit !f }' /proc/net/unix
}

# start_net ARGS... SOCKETS...: vhu-net in the background on core 0; waits
# for every -s socket to listen.
start_net() {
	taskset -c 0 "$NET" "$@" >"$WORK/net.log" 2>&1 &
	NET_PID=$!
	local prev= a
	for a in "$@"; do
		if [ "$prev" = -s ]; then
			for _ in $(seq 100); do
				listening "$a" && break
				sleep 0.1
			done
			listening "$a" || return 1
		fi
		prev=$a
	done
}

stop_net() {
	kill -TERM "$NET_PID" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$NET_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$NET_PID" 2>/dev/null
	wait "$NET_PID"
	local rc=$?
	NET_PID=
	sed 's/^/# vhu-net: /' "$WORK/net.log"
	return $rc
}

# run_testpmd NAME EAL/APP ARGS...: "start tx_first 4", run, stop, quit.
run_testpmd() {
	local name=$1
	shift
	{
		echo "start tx_first 4"
		sleep "$RUN_S"
		echo stop
		echo quit
	} | timeout -s KILL 90 stdbuf -oL "$TESTPMD" -l 0-1 --main-lcore 0 --no-huge -m 512 \
		--no-pci --file-prefix="vhu-pk-$name-$$" --log-level=lib.eal,warning \
		--log-level="pmd.net.virtio.*,info" "$@" \
		--total-num-mbufs=32768 --forward-mode=io >"$WORK/$name.log" 2>&1
}

stat_of() { # stat_of LOG PORT RX|TX: the last forward statistics of PORT
	awk -v p="$2" -v k="$3-packets:" '/Forward statistics for port/ { cur = ($NF == p || $(NF-1) == p) }
		/Accumulated/ { cur = 0 } cur && $1 == k { v = $2 } END { print v + 0 }' "$1"
}

vdev() { # vdev INDEX SOCK QUEUES PACKED
	echo "--vdev=net_virtio_user$1,path=$2,queues=$3,queue_size=256,packed_vq=$4"
}

check_packed() { # check_packed LOG PORT: testpmd's driver chose packed rings
	if grep -aq "using packed ring .* on port $2" "$1"; then
		ok "port $2 drives packed rings"
	else
		not_ok "port $2 drives packed rings" "$(grep -a 'using' "$1" | tr '\n' ' ')"
	fi
}

check_loop() { # check_loop NAME LOG PORT: frames keep circulating
	local rx tx
	rx=$(stat_of "$2" "$3" RX)
	tx=$(stat_of "$2" "$3" TX)
	if [ "$rx" -gt $((4 * 32 * 4)) ] && [ "$tx" -gt 0 ]; then
		ok "$1 (port $3: rx $rx, tx $tx)"
	else
		not_ok "$1 (port $3: rx $rx, tx $tx)" "$(tail -25 "$2" | tr '\n' ' ')"
	fi
}

check_counters() { # every frame vhu-net took from the guest it delivered
	local line tx rx
	line=$(grep -a "$1: tx" "$WORK/net.log" | tail -1)
	tx=$(sed -n 's/.*: tx \([0-9]*\) .*/\1/p' <<<"$line")
	rx=$(sed -n 's/.* rx \([0-9]*\) .*/\1/p' <<<"$line")
	if [ -n "$tx" ] && [ "$tx" -gt 0 ] && [ "$tx" = "$rx" ]; then
		ok "vhu-net counters $1: tx $tx = rx $rx"
	else
		not_ok "vhu-net counters $1" "$line"
	fi
}

loopback() {
	local q=$1 sock="$WORK/lo.sock"
	start_net --loopback -q "$q" -s "$sock" || { not_ok "vhu-net --loopback starts"; return; }
	run_testpmd lo "$(vdev 0 "$sock" "$q" 1)" -- -i --rxq="$q" --txq="$q"
	check_packed "$WORK/lo.log" 0
	check_loop "testpmd io loop through vhu-net --loopback, $q queue pair(s), packed" \
		"$WORK/lo.log" 0
	if stop_net; then ok "vhu-net exits 0 on SIGTERM"; else not_ok "vhu-net exits 0 on SIGTERM"; fi
	check_counters vhu-net0
}

peer() {
	local a="$WORK/a.sock" b="$WORK/b.sock"
	start_net --peer -s "$a" -s "$b" || { not_ok "vhu-net --peer starts"; return; }
	run_testpmd two "$(vdev 0 "$a" 1 1)" "$(vdev 1 "$b" 1 0)" -- -i
	check_packed "$WORK/two.log" 0
	if grep -aq "using packed ring .* on port 1" "$WORK/two.log"; then
		not_ok "port 1 (packed_vq=0) drives split rings"
	else
		ok "port 1 (packed_vq=0) drives split rings"
	fi
	check_loop "testpmd io forwarding packed -> vhu-net --peer -> split" "$WORK/two.log" 0
	check_loop "testpmd io forwarding split -> vhu-net --peer -> packed" "$WORK/two.log" 1
	if stop_net; then ok "vhu-net --peer exits 0 on SIGTERM"; else not_ok "vhu-net --peer exits 0"; fi
}

case "$MODE" in
loopback) loopback 1 ;;
loopback-mq) loopback 2 ;;
peer) peer ;;
*)
	echo "usage: testpmd_packed.sh loopback|loopback-mq|peer PATH/TO/vhu-net" >&2
	exit 2
	;;
esac
echo "1..$n"
[ "$failed" -eq 0 ]
