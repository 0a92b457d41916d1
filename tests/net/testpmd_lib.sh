# SPDX-License-Identifier: Apache-2.0
# tests/net/testpmd_lib.sh: shared by testpmd.sh and testpmd_packed.sh.
# DPDK testpmd's net_virtio_user port is a complete vhost-user front end
# and virtio-net driver in user space: it negotiates, shares its (memfd)
# memory, and drives the rings.  Source it after setting NET (vhu-net) and
# WORK_TAG (names the scratch directory and testpmd's file prefix); it skips
# the whole script when dpdk-testpmd is not installed.
#
# Machine notes: no hugepages (--no-huge -m 512: EAL backs memory with one
# memfd, which virtio-user passes in SET_MEM_TABLE), --total-num-mbufs keeps
# the pool inside 512 MiB; vhu-net runs on core 0, forwarding lcores of two
# testpmds go on core 1.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"

RUN_S=${VHU_TESTPMD_SECONDS:-3}
TESTPMD=$(command -v dpdk-testpmd || true)
if [ -z "$TESTPMD" ]; then
	echo "1..0 # SKIP dpdk-testpmd not installed"
	exit 0
fi
WORK=$(mktemp -d "/tmp/vhu-net-$WORK_TAG.XXXXXX")
NET_PID=
cleanup() {
	[ -n "$NET_PID" ] && kill -KILL "$NET_PID" 2>/dev/null
	jobs -p | xargs -r kill -KILL 2>/dev/null
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# start_net ARGS...: vhu-net in the background, pinned to core 0; waits for
# every -s socket to listen.
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

# feed "COMMANDS" [LOG]: print testpmd commands (";"-separated; "sleep N"
# pauses), then quit.  "forwarding" waits until LOG shows that testpmd
# started forwarding: the commands are written into a pipe at once, and a
# testpmd that takes longer than RUN_S to initialise (a loaded machine)
# would otherwise read "start" and "stop" back to back and forward for a
# few milliseconds only.
feed() {
	local IFS=';' c
	for c in $1; do
		case "$c" in
		sleep*) sleep "${c#sleep }" ;;
		forwarding)
			wait_log "$2" "packet forwarding - ports" ||
				echo "# testpmd did not start forwarding: $(tail -5 "$2" | tr '\n' ' ')" >&2
			;;
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
		--file-prefix="vhu-$WORK_TAG-$name-$$" --log-level=lib.eal,warning "${eal[@]}" -- -i \
		--total-num-mbufs=32768 "${app[@]}" >"$WORK/$name.log" 2>&1
}

# run_testpmd NAME MAIN_LCORE "COMMANDS" ARGS...: testpmd fed COMMANDS
# (see feed; its LOG is NAME's).
run_testpmd() {
	local name=$1 main=$2 cmds=$3
	shift 3
	feed "$cmds" "$WORK/$name.log" | testpmd "$name" "$main" "$@"
}

# wait_log FILE PATTERN: until FILE has a line matching PATTERN (60 s).
wait_log() {
	for _ in $(seq 600); do
		grep -aq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# stat_of LOG PORT RX|TX: packets of the last "Forward statistics for port
# PORT".
stat_of() {
	awk -v p="$2" -v k="$3-packets:" '/Forward statistics for port/ { cur = ($NF == p || $(NF-1) == p) }
		/Accumulated/ { cur = 0 } cur && $1 == k { v = $2 } END { print v + 0 }' "$1"
}

# vdev INDEX SOCK QUEUES [PACKED]: a net_virtio_user port (PACKED: 0 or 1,
# the packed_vq parameter; absent: the driver's default).
vdev() {
	echo "--vdev=net_virtio_user$1,path=$2,queues=$3,queue_size=256${4:+,packed_vq=$4}"
}

# check_loop NAME LOG PORT BURSTS: frames keep circulating (io forwarding
# re-sends what arrives) only if they come back: much more than the initial
# bursts must be received.
check_loop() {
	local name=$1 log=$2 port=$3 bursts=$4 rx tx
	rx=$(stat_of "$log" "$port" RX)
	tx=$(stat_of "$log" "$port" TX)
	if [ "$rx" -gt $((bursts * 32 * 4)) ] && [ "$tx" -gt 0 ]; then
		ok "$name (port $port: rx $rx, tx $tx)"
	else
		not_ok "$name (port $port: rx $rx, tx $tx)" \
			"$(grep -a -E 'Error|error|fail|Fail' "$log" | head -5 | tr '\n' ' ')" \
			"$(tail -25 "$log" | tr '\n' ' ')"
	fi
}

# check_counters DEV: vhu-net's own counters agree (after stop_net): every
# frame DEV took from the guest it delivered.
check_counters() {
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
