#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: one vhu-blk process serves eight QEMU guests at once (a disk
# each, `--disk` eight times, two pool threads).  Every guest writes rounds
# of random data to its disk with O_DIRECT, reads each round back and
# compares it, and reports the checksum of its last round.  While they run,
# one guest's QEMU is SIGKILLed in the middle of a write: the other seven
# go on (the host waits until each completed a round after the kill) and
# pass, and a new guest on the killed guest's disk does its own rounds.
# Guests stop when the host writes "stop" into the 4 KiB control block
# after their data (read with O_DIRECT after every round from the second
# on), so nothing depends on how fast the guests run.  The host then checks
# every image against the checksum its guest reported, and that vhu-blk
# stops cleanly.
# Usage: blk_guests.sh [PATH/TO/vhu-blk]
set -u
. "$(dirname "$0")/../e2e/lib.sh"

BLK=${1:-${VHU_BUILD_ROOT:-.}/devices/blk/vhu-blk}
[ -x "$BLK" ] || e2e_fail "vhu-blk binary not found at $BLK"
N=8
VICTIM=3
MIB=4
export VHU_E2E_MEM=128M
# Eight TCG guests booting at once on a busy machine: the kernel's check
# that the timer interrupt reaches the IO-APIC can time out and panic.
export VHU_E2E_APPEND="no_timer_check"

e2e_init blk-guests
e2e_need_tools
e2e_fetch_kernel

sed -e "s/@MIB@/$MIB/g" >"$E2E_WORK/guest.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
DEV=/dev/vda
MIB=@MIB@
[ -b $DEV ] || fail "no $DEV"
r=0
while :; do
	r=$((r + 1))
	dd if=/dev/urandom of=/tmp/round bs=1M count=$MIB 2>/dev/null || fail "urandom"
	echo "guest: writing round $r"
	dd if=/tmp/round of=$DEV bs=256k oflag=direct conv=notrunc 2>/dev/null ||
		fail "write failed in round $r"
	dd if=$DEV of=/tmp/back bs=256k count=$((MIB * 4)) iflag=direct 2>/dev/null ||
		fail "read failed in round $r"
	cmp /tmp/round /tmp/back || fail "round $r read back differs"
	echo "guest: round $r ok"
	if [ $r -ge 2 ]; then
		dd if=$DEV of=/tmp/ctl bs=4k skip=$((MIB * 256)) count=1 iflag=direct 2>/dev/null ||
			fail "control block read failed"
		grep -q stop /tmp/ctl && break
	fi
	[ $r -lt 1000 ] || fail "never told to stop"
done
echo "guest: last md5 $(md5sum /tmp/round | cut -d' ' -f1) after $r rounds"
exit 0
GUEST
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_blk
E2E_INITRD="$E2E_WORK/initrd"

args=()
for i in $(seq 0 $((N - 1))); do
	truncate -s $((MIB * 1048576 + 4096)) "$E2E_WORK/g$i.img"
	args+=(--disk "socket=$E2E_WORK/g$i.sock,image=$E2E_WORK/g$i.img")
done
e2e_spawn BLK_PID "$E2E_WORK/vhu-blk.log" "$BLK" -v --threads 2 "${args[@]}"
for i in $(seq 0 $((N - 1))); do
	e2e_wait_socket "$E2E_WORK/g$i.sock" || e2e_fail "vhu-blk did not listen: $(cat "$E2E_WORK/vhu-blk.log")"
done

guest() { # NAME DISK
	e2e_run_qemu "$E2E_WORK/$1.console" "${VHU_E2E_TIMEOUT:-300}" \
		-pidfile "$E2E_WORK/$1.pid" \
		-chardev "socket,id=blk0,path=$E2E_WORK/g$2.sock" \
		-device vhost-user-blk-pci,chardev=blk0,num-queues=1
}
track() { # NAME: the cleanup also stops this guest's QEMU (its pid file)
	for _ in $(seq 300); do
		[ -s "$E2E_WORK/$1.pid" ] && break
		sleep 0.1
	done
	[ -s "$E2E_WORK/$1.pid" ] && E2E_PIDS+=("$(cat "$E2E_WORK/$1.pid")")
}
rounds() { # NAME: rounds completed so far
	grep -ac "guest: round [0-9]* ok" "$E2E_WORK/$1.console" 2>/dev/null
}
stop_guest() { # DISK
	printf stop | dd of="$E2E_WORK/g$1.img" bs=4k seek=$((MIB * 256)) conv=notrunc status=none
}

QPID=()
for i in $(seq 0 $((N - 1))); do
	if [ "$i" = "$VICTIM" ]; then
		# Its QEMU dies by SIGKILL: e2e_run_qemu's verdict goes aside.
		guest "g$i" "$i" 2>"$E2E_WORK/g$i.e2e.log" &
	else
		guest "g$i" "$i" &
	fi
	QPID[$i]=$!
done
for i in $(seq 0 $((N - 1))); do
	[ "$i" = "$VICTIM" ] || track "g$i"
done

# The victim: killed once it is writing its second round.
for _ in $(seq 3000); do
	grep -aq "guest: writing round 2" "$E2E_WORK/g$VICTIM.console" 2>/dev/null && break
	kill -0 "${QPID[$VICTIM]}" 2>/dev/null || break
	sleep 0.1
done
grep -aq "guest: writing round 2" "$E2E_WORK/g$VICTIM.console" ||
	e2e_fail "guest $VICTIM did not reach its second round"
kill -KILL "$(cat "$E2E_WORK/g$VICTIM.pid")" || e2e_fail "cannot kill guest $VICTIM's QEMU"
wait "${QPID[$VICTIM]}" 2>/dev/null
AT_KILL=()
for i in $(seq 0 $((N - 1))); do
	AT_KILL[$i]=$(rounds "g$i")
done
e2e_log "killed guest $VICTIM's QEMU mid-write; rounds done by the guests then: ${AT_KILL[*]}"

# A new guest on the killed guest's disk, alongside the others (it stops
# after two rounds).
stop_guest "$VICTIM"
guest "g$VICTIM-new" "$VICTIM" &
NEW_PID=$!
track "g$VICTIM-new"

# The others go on: each completes a round after the kill, then is told
# to stop.
for i in $(seq 0 $((N - 1))); do
	[ "$i" = "$VICTIM" ] && continue
	for _ in $(seq 3000); do
		[ "$(rounds "g$i")" -gt "${AT_KILL[$i]}" ] && break
		kill -0 "${QPID[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	[ "$(rounds "g$i")" -gt "${AT_KILL[$i]}" ] ||
		e2e_fail "guest $i did no round after guest $VICTIM was killed"
	stop_guest "$i"
done

failed=0
for i in $(seq 0 $((N - 1))); do
	[ "$i" = "$VICTIM" ] && continue
	wait "${QPID[$i]}" || { e2e_log "guest $i did not pass"; failed=1; }
done
wait "$NEW_PID" || { e2e_log "the new guest on disk $VICTIM did not pass"; failed=1; }
e2e_stop "$BLK_PID"
blk_rc=$?
grep -v '^ \|^qemu' "$E2E_WORK/vhu-blk.log" | grep -v "worker [0-9]*: front end hung up" |
	sed 's/^/  /' >&2
for c in "$E2E_WORK"/*.console; do
	n=$(basename "$c" .console)
	grep -a "guest: \(last\|FAIL\)" "$c" | sed "s/^/  $n: /" >&2
done
[ "$failed" = 0 ] || e2e_fail "a guest did not pass"
[ "$blk_rc" = 0 ] || e2e_fail "vhu-blk exited with status $blk_rc after SIGTERM"

# Every image holds the last round its guest wrote.
for i in $(seq 0 $((N - 1))); do
	name=g$i
	[ "$i" = "$VICTIM" ] && name=g$i-new
	want=$(grep -ao "guest: last md5 [0-9a-f]*" "$E2E_WORK/$name.console" | awk '{ print $4 }')
	got=$(head -c $((MIB * 1048576)) "$E2E_WORK/g$i.img" | md5sum | cut -d' ' -f1)
	[ -n "$want" ] && [ "$want" = "$got" ] ||
		e2e_fail "disk $i: image md5 $got, its guest's last round ${want:-(none)}"
done
grep -q "disk $VICTIM: stopped after 2 front end(s)" "$E2E_WORK/vhu-blk.log" ||
	e2e_fail "disk $VICTIM did not serve exactly two front ends"
e2e_log "PASS: $N guests on one vhu-blk (2 pool threads); guest $VICTIM's QEMU killed mid-write, the others went on, a new guest used its disk"
