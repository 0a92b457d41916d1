#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end, client mode: two Linux guests (QEMU with
# `-chardev socket,server=on,wait=off`, the QEMU side listens) ping each
# other through `vhu-net --peer --client`, which connects to both.  While
# the pings run, vhu-net is killed with SIGKILL and started again: it
# reconnects to both QEMUs by itself, QEMU re-runs the device set-up, and
# the pings resume in both guests without any QEMU restarting.  This is
# done twice (VHU_E2E_NET_KILLS), each time after 10 more replies; each
# guest must get 5 more replies after the last restart and never lose more
# than 20 in a row.
# Usage: net_restart.sh [PATH/TO/vhu-net]
set -u
. "$(dirname "$0")/../e2e/lib.sh"

NET=${1:-${VHU_BUILD_ROOT:-.}/devices/net/vhu-net}
[ -x "$NET" ] || e2e_fail "vhu-net binary not found at $NET"
KILLS=${VHU_E2E_NET_KILLS:-2}

e2e_init net-client
e2e_need_tools
e2e_fetch_kernel

# guest NAME ME PEER: a guest that pings PEER every 0.2 s, printing each
# reply ("guest: pong N"), until it has TARGET replies, then stays up
# (answering) while the other guest gets its own.  It reports the longest
# run of lost replies; more than 20 in a row is a failure.
TARGET=$((10 * (KILLS + 1)))
guest() {
	cat >"$E2E_WORK/$1.sh" <<EOF
fail() { echo "guest: FAIL: \$*"; exit 1; }
ifc=
for d in /sys/class/net/*; do
	[ "\${d##*/}" = lo ] || { ifc=\${d##*/}; break; }
done
[ -n "\$ifc" ] || fail "no network interface"
ip link set lo up
ip addr add $2/24 dev "\$ifc" || fail "ip addr"
ip link set "\$ifc" up || fail "ip link up"
i=0
until ping -c 1 -W 1 $3 >/dev/null 2>&1; do
	i=\$((i + 1))
	[ \$i -lt 180 ] || fail "no first reply from $3"
done
pongs=0 lost=0 worst=0
while [ \$pongs -lt $TARGET ]; do
	if ping -c 1 -W 1 $3 >/dev/null 2>&1; then
		pongs=\$((pongs + 1))
		echo "guest: pong \$pongs"
		lost=0
	else
		lost=\$((lost + 1))
		[ \$lost -gt \$worst ] && worst=\$lost
		[ \$lost -le 20 ] || fail "no reply from $3 for \$lost pings in a row"
	fi
	sleep 0.2
done
echo "guest: $TARGET replies; at most \$worst lost in a row"
sleep 8
exit 0
EOF
	e2e_build_initramfs "$E2E_WORK/$1.initrd" "$E2E_WORK/$1.sh" virtio_pci virtio_net
}
guest a 10.203.120.1 10.203.120.2
guest b 10.203.120.2 10.203.120.1

A="$E2E_WORK/a.sock"
B="$E2E_WORK/b.sock"

# QEMU listens (server=on) and waits for its back end before it boots.
# vectors=0: QEMU 7.2 under TCG crashes in vhost_net_start with MSI-X.
run_guest() {
	local name=$1 sock=$2 mac=$3
	E2E_INITRD="$E2E_WORK/$name.initrd" e2e_run_qemu "$E2E_WORK/$name.console" \
		"${VHU_E2E_TIMEOUT:-300}" \
		-chardev "socket,id=c0,path=$sock,server=on,wait=off" \
		-netdev "vhost-user,id=n0,chardev=c0" \
		-device "virtio-net-pci,netdev=n0,mac=$mac,vectors=0"
}
run_guest a "$A" 52:54:00:00:78:01 &
pa=$!
run_guest b "$B" 52:54:00:00:78:02 &
pb=$!

start_net() { # LOG
	"$NET" --peer --client --socket-path "$A" --socket-path "$B" -v >"$E2E_WORK/$1" 2>&1 &
	NET_PID=$!
	E2E_PIDS+=("$NET_PID")
}
pongs() { # GUEST: replies it has seen so far
	grep -ac "guest: pong" "$E2E_WORK/$1.console" 2>/dev/null
}
wait_pongs() { # COUNT: both guests have COUNT replies (2 minutes at most)
	for _ in $(seq 1200); do
		[ "$(pongs a)" -ge "$1" ] && [ "$(pongs b)" -ge "$1" ] && return 0
		kill -0 "$pa" 2>/dev/null && kill -0 "$pb" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start_net vhu-net-0.log
for k in $(seq "$KILLS"); do
	wait_pongs $((10 * k)) || e2e_fail "the guests' pings did not go on ($k)"
	sleep 0.5
	kill -KILL "$NET_PID"
	wait "$NET_PID" 2>/dev/null
	AT_KILL="$(pongs a) $(pongs b)"
	e2e_log "killed vhu-net ($k) with pings running (replies so far: $AT_KILL)"
	sleep 1
	start_net "vhu-net-$k.log"
done
wait "$pa"
ra=$?
wait "$pb"
rb=$?
e2e_stop "$NET_PID"
rc=$?
for k in $(seq 0 "$KILLS"); do
	sed "s/^/  vhu-net($k): /" "$E2E_WORK/vhu-net-$k.log" >&2
done
grep -a '^guest:' "$E2E_WORK/a.console" | sed 's/^/  A /' >&2
grep -a '^guest:' "$E2E_WORK/b.console" | sed 's/^/  B /' >&2
[ "$ra" = 0 ] || e2e_fail "guest A did not pass"
[ "$rb" = 0 ] || e2e_fail "guest B did not pass"
[ "$rc" -eq 0 ] || e2e_fail "the last vhu-net exited with status $rc after SIGTERM"
read -r ka kb <<<"$AT_KILL"
[ "$(pongs a)" -ge $((ka + 5)) ] && [ "$(pongs b)" -ge $((kb + 5)) ] ||
	e2e_fail "too few replies after the last restart"
e2e_log "PASS: pings resumed by themselves after $KILLS SIGKILLs of vhu-net --client; QEMU ran on"
