#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# DPDK testpmd through vhu-net (TAP output).  testpmd's net_virtio_user
# port is a complete vhost-user front end and virtio-net driver in user
# space: it negotiates, shares its (memfd) memory, and drives the rings.
#
#   testpmd.sh loopback    PATH/TO/vhu-net   one port, io forwarding: the
#        frames testpmd sends come back and are sent again, so the counters
#        keep growing only if frames round-trip through vhu-net
#   testpmd.sh loopback-mq PATH/TO/vhu-net   same with 2 queue pairs
#   testpmd.sh loopback-poll PATH/TO/vhu-net same with --poll (adaptive polling)
#   testpmd.sh peer        PATH/TO/vhu-net   vhu-net --peer between two ports
#        of one testpmd (io forwarding across the cable), then between two
#        testpmd processes (txonly -> rxonly), as between two VMs
#
# Machine notes: no hugepages (--no-huge -m 512: EAL backs memory with one
# memfd, which virtio-user passes in SET_MEM_TABLE), --total-num-mbufs keeps
# the pool inside 512 MiB; forwarding lcores of two testpmds go on
# different cores.
set -u
MODE=${1:?usage: testpmd.sh loopback|loopback-mq|loopback-poll|peer PATH/TO/vhu-net}
NET=${2:?usage: testpmd.sh MODE PATH/TO/vhu-net}
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
WORK=$(mktemp -d /tmp/vhu-net-testpmd.XXXXXX)
NET_PID=
cleanup() {
	[ -n "$NET_PID" ] && kill -KILL "$NET_PID" 2>/dev/null
	jobs -p | xargs -r kill -KILL 2>/dev/null
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

listening() {
	awk -v p="$1" '$4 == "00010000" && $8 == p { f = 1 } END { exit !f }' /proc/net/unix
}

wait_listening() {
	for _ in $(seq 100); do
		listening "$1" && return 0
		sleep 0.1
	done
	return 1
}

# start_net ARGS...: vhu-net in the background, pinned to core 0.
start_net() {
	taskset -c 0 "$NET" "$@" >"$WORK/net.log" 2>&1 &
	NET_PID=$!
	local prev= a
	for a in "$@"; do
		if [ "$prev" = -s ] && ! wait_listening "$a"; then
			echo "# vhu-net did not listen on $a: $(cat "$WORK/net.log")"
			return 1
		fi
		prev=$a
	done
}

# stop_net: SIGTERM, wait, print its log (it ends with its counters).
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

# feed "COMMANDS": print testpmd commands (";"-separated; "sleep N" pauses),
# then quit.
feed() {
	local IFS=';' c
	for c in $1; do
		case "$c" in
		sleep*) sleep "${c#sleep }" ;;
		*) echo "$c" ;;
		esac
	done
	echo quit
}

# testpmd NAME MAIN_LCORE EAL-ARGS... -- APP-ARGS...: interactive testpmd
# reading commands from stdin, output to $WORK/NAME.log.
testpmd() {
	local name=$1 main=$2
	shift 2
	local eal=() app=() seen_dd=0 a
	for a in "$@"; do
		if [ "$a" = -- ]; then
			seen_dd=1
		elif [ $seen_dd = 0 ]; then
			eal+=("$a")
		else
			app+=("$a")
		fi
	done
	timeout -s KILL 90 stdbuf -oL "$TESTPMD" -l 0-1 --main-lcore "$main" --no-huge -m 512 --no-pci \
		--file-prefix="vhu-$name-$$" --log-level=lib.eal,warning "${eal[@]}" -- -i \
		--total-num-mbufs=32768 "${app[@]}" >"$WORK/$name.log" 2>&1
}

# run_testpmd NAME MAIN_LCORE "COMMANDS" ARGS...: testpmd fed COMMANDS.
run_testpmd() {
	local name=$1 main=$2 cmds=$3
	shift 3
	feed "$cmds" | testpmd "$name" "$main" "$@"
}

# wait_log FILE PATTERN: until FILE has a line matching PATTERN (60 s).
wait_log() {
	for _ in $(seq 600); do
		grep -aq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# rx_of LOG PORT: RX-packets of the last "Forward statistics for port PORT".
rx_of() {
	awk -v p="$2" '/Forward statistics for port/ { cur = ($NF == p || $(NF-1) == p) }
		/Accumulated/ { cur = 0 } cur && /RX-packets:/ { v = $2 } END { print v + 0 }' "$1"
}

tx_of() {
	awk -v p="$2" '/Forward statistics for port/ { cur = ($NF == p || $(NF-1) == p) }
		/Accumulated/ { cur = 0 } cur && /TX-packets:/ { v = $2 } END { print v + 0 }' "$1"
}

vdev() { # vdev INDEX SOCK QUEUES
	echo "--vdev=net_virtio_user$1,path=$2,queues=$3,queue_size=256"
}

# Frames keep circulating (io forwarding re-sends what arrives) only if
# they come back: much more than the initial bursts must be received.
check_loop() {
	local name=$1 log=$2 port=$3 bursts=$4 rx tx
	rx=$(rx_of "$log" "$port")
	tx=$(tx_of "$log" "$port")
	if [ "$rx" -gt $((bursts * 32 * 4)) ] && [ "$tx" -gt 0 ]; then
		ok "$name (port $port: rx $rx, tx $tx)"
	else
		not_ok "$name (port $port: rx $rx, tx $tx)" \
			"$(grep -a -E 'Error|error|fail|Fail' "$log" | head -5 | tr '\n' ' ')" \
			"$(tail -25 "$log" | tr '\n' ' ')"
	fi
}

loopback() {
	local q=$1 sock="$WORK/lo.sock"
	shift
	start_net --loopback -q "$q" "$@" -s "$sock" || { not_ok "vhu-net --loopback starts"; return; }
	run_testpmd lo 0 "start tx_first 4;sleep $RUN_S;stop" "$(vdev 0 "$sock" "$q")" -- \
		--forward-mode=io --rxq="$q" --txq="$q"
	check_loop "testpmd io loop through vhu-net --loopback $*, $q queue pair(s)" "$WORK/lo.log" 0 4
	if stop_net; then ok "vhu-net exits 0 on SIGTERM"; else not_ok "vhu-net exits 0 on SIGTERM"; fi
	# vhu-net's own counters agree: every frame it took it delivered.
	local line tx rx
	line=$(grep -a 'vhu-net0: tx' "$WORK/net.log" | tail -1)
	tx=$(sed -n 's/.*: tx \([0-9]*\) .*/\1/p' <<<"$line")
	rx=$(sed -n 's/.* rx \([0-9]*\) .*/\1/p' <<<"$line")
	if [ -n "$tx" ] && [ "$tx" -gt 0 ] && [ "$tx" = "$rx" ]; then
		ok "vhu-net counters: tx $tx = rx $rx"
	else
		not_ok "vhu-net counters" "$line"
	fi
}

peer() {
	local a="$WORK/a.sock" b="$WORK/b.sock" rx0 rx1
	start_net --peer -s "$a" -s "$b" || { not_ok "vhu-net --peer starts"; return; }
	# One testpmd, two ports, one on each end of the cable.
	run_testpmd two 0 "start tx_first 4;sleep $RUN_S;stop" "$(vdev 0 "$a" 1)" "$(vdev 1 "$b" 1)" -- \
		--forward-mode=io
	check_loop "testpmd io forwarding across vhu-net --peer" "$WORK/two.log" 0 4
	check_loop "testpmd io forwarding across vhu-net --peer" "$WORK/two.log" 1 4
	# Two testpmd processes, as two VMs: B receives what A sends.  Both
	# forwarding lcores poll on core 1, so that vhu-net (core 0) is not
	# starved of CPU by a spinning poller (2 cores here).  B is driven
	# through a fifo: A starts once B forwards, B stops once A is done.
	mkfifo "$WORK/rx.fifo"
	testpmd rx 0 "$(vdev 0 "$b" 1)" -- <"$WORK/rx.fifo" &
	local rxpid=$!
	exec 8>"$WORK/rx.fifo"
	printf 'set fwd rxonly\nstart\n' >&8
	wait_log "$WORK/rx.log" "rxonly packet forwarding - ports" ||
		echo "# testpmd B did not start forwarding: $(tail -5 "$WORK/rx.log" | tr '\n' ' ')"
	run_testpmd tx 0 "set fwd txonly;start;sleep $RUN_S;stop" "$(vdev 0 "$a" 1)" --
	sleep 1
	printf 'stop\n' >&8
	feed "" >&8
	exec 8>&-
	wait "$rxpid"
	rx1=$(rx_of "$WORK/rx.log" 0)
	rx0=$(tx_of "$WORK/tx.log" 0)
	if [ "$rx1" -gt 1000 ] && [ "$rx1" -le "$rx0" ]; then
		ok "two testpmd processes: A txonly sent $rx0, B rxonly received $rx1"
	else
		not_ok "two testpmd processes: A sent $rx0, B received $rx1" \
			"B: $(tail -15 "$WORK/rx.log" | tr '\n' ' ')" "A: $(tail -15 "$WORK/tx.log" | tr '\n' ' ')"
	fi
	if stop_net; then ok "vhu-net --peer exits 0 on SIGTERM"; else not_ok "vhu-net --peer exits 0"; fi
}

case "$MODE" in
loopback) loopback 1 ;;
loopback-mq) loopback 2 ;;
loopback-poll) loopback 1 --poll ;;
peer) peer ;;
*)
	echo "usage: testpmd.sh loopback|loopback-mq|loopback-poll|peer PATH/TO/vhu-net" >&2
	exit 2
	;;
esac
echo "1..$n"
[ "$failed" -eq 0 ]
