#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end: the back end goes away mid-I/O and comes back.  The guest
# streams O_DIRECT writes of a pattern; the host SIGKILLs vhu-blk while they
# run and restarts it on the same socket; QEMU (chardev reconnect=1)
# reconnects and hands over the inflight region, vhu-blk resubmits what was
# in flight, and the guest's I/O completes.  The guest then verifies the
# whole pattern, and the host the image: no acknowledged write lost.
# BLK_STORAGE=rbd|nbd keeps the disk in Ceph / behind qemu-nbd (storage.sh).
# BLK_FAULT=storage hits the storage instead of the back end: the OSD is
# SIGSTOPped for 2 s (requests wait, docs/storage.md), or the NBD server is
# SIGKILLed and started again 2 s later (requests wait for the reconnect).
# Usage: [BLK_STORAGE=..] [BLK_FAULT=backend|storage] blk_reconnect.sh [PATH/TO/vhu-blk]
. "$(dirname "$0")/common.sh"
MIB=24
BYTES=$((MIB * 1048576))
NQ=2

FAULT=${BLK_FAULT:-backend}
e2e_init "blk-reconnect-$BLK_STORAGE-$FAULT"
e2e_need_tools
e2e_fetch_kernel
blk_random "$E2E_WORK/pattern.bin" "$MIB"
storage_setup "$BYTES"

sed -e "s/@BYTES@/$BYTES/g" -e "s/@NQ@/$NQ/g" >"$E2E_WORK/guest.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
DEV=/dev/vda
BYTES=@BYTES@
NQ=@NQ@
[ -b $DEV ] || fail "no $DEV"
# A writer per queue, 1 MiB direct writes (each several requests in
# flight), the whole stripe again and again for SECS seconds, so the host's
# kill lands mid-I/O.
STRIPE=$((BYTES / NQ / 1048576))
SECS=10
now() { cut -d. -f1 /proc/uptime; }
# Write-through: every write is O_DSYNC on the host, so requests stay in
# flight long enough for the kill to catch some.
echo "write through" >/sys/block/vda/cache_type || fail "cannot set write through"
END=$(($(now) + SECS))
echo "guest: io-started at $(cut -d" " -f1 /proc/uptime)"
i=0
pids=
while [ $i -lt $NQ ]; do
	( p=0
	  while [ $p -lt 2 ] || [ $(now) -lt $END ]; do
		taskset -c $i dd if=/pattern.bin of=$DEV bs=1M skip=$((i * STRIPE)) seek=$((i * STRIPE)) \
			count=$STRIPE oflag=direct conv=notrunc 2>/dev/null || exit 1
		p=$((p + 1))
	  done
	  echo "guest: writer $i did $p passes" ) &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait $p || fail "write failed"; done
echo "guest: writes done at $(cut -d" " -f1 /proc/uptime)"
dd if=$DEV of=/tmp/all bs=64k iflag=direct 2>/dev/null || fail "read failed"
cmp /tmp/all /pattern.bin || fail "data differs after the back-end restart"
echo "guest: pattern verified"
exit 0
GUEST

E2E_INITRAMFS_FILES="$E2E_WORK/pattern.bin:/pattern.bin"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_blk
E2E_INITRD="$E2E_WORK/initrd"

SOCK="$E2E_WORK/blk.sock"
KILLS=${VHU_E2E_BLK_KILLS:-3}
blk_start vhu-blk-0.log --num-queues "$NQ" "$IMAGE"

# The controller kills the back end KILLS times while the guest writes and
# restarts it each time; after QEMU is done it stops the last one and
# records its exit status.  (Back ends it starts are its own children.)
(
	pid=$BLK_PID
	for _ in $(seq 600); do
		grep -aq "guest: io-started" "$E2E_WORK/console.log" 2>/dev/null && break
		sleep 0.1
	done
	for k in $(seq "$KILLS"); do
		sleep 1.5
		if [ "$FAULT" = storage ]; then
			storage_fault start
			echo "host: storage fault ($k, $BLK_STORAGE) mid-I/O at $(date +%T.%N)" \
				>>"$E2E_WORK/host.log"
			sleep 2
			storage_fault stop
			continue
		fi
		kill -KILL "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
		echo "host: killed vhu-blk ($k) mid-I/O at $(date +%T.%N)" >>"$E2E_WORK/host.log"
		sleep 0.3
		VHU_LOG=info "$BLK" --socket-path "$SOCK" --num-queues "$NQ" "$IMAGE" \
			>"$E2E_WORK/vhu-blk-$k.log" 2>&1 &
		pid=$!
	done
	while [ ! -e "$E2E_WORK/qemu.done" ]; do sleep 0.1; done
	[ "$FAULT" = storage ] && exit 0 # the first back end: this shell's child
	kill -TERM "$pid"
	wait "$pid"
	echo $? >"$E2E_WORK/last.rc"
) &
CONTROLLER=$!

guest_ok=0
BLK_CHARDEV_OPTS=",reconnect=1" blk_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-300}" "$NQ" &&
	guest_ok=1
touch "$E2E_WORK/qemu.done"
wait "$CONTROLLER"
if [ "$FAULT" = storage ]; then
	e2e_stop "$BLK_PID"
	echo $? >"$E2E_WORK/last.rc"
fi
cat "$E2E_WORK/host.log" >&2 2>/dev/null
grep -a "guest:" "$E2E_WORK/console.log" | sed 's/^/  /' >&2
for k in $(seq 0 "$KILLS"); do
	[ -f "$E2E_WORK/vhu-blk-$k.log" ] || continue
	grep -v '^ ' "$E2E_WORK/vhu-blk-$k.log" | sed "s/^/  vhu-blk($k): /" >&2
done
[ "$(cat "$E2E_WORK/last.rc" 2>/dev/null)" = 0 ] || e2e_fail "last vhu-blk did not exit 0 on SIGTERM"
[ "$(grep -c "killed vhu-blk\|storage fault" "$E2E_WORK/host.log")" = "$KILLS" ] ||
	e2e_fail "$FAULT not hit $KILLS times"
grep -aq "guest: writes done" "$E2E_WORK/console.log" || e2e_fail "guest writes did not finish"
[ "$guest_ok" = 1 ] || e2e_fail "guest did not pass"
storage_export "$E2E_WORK/disk.out"
cmp "$E2E_WORK/pattern.bin" "$E2E_WORK/disk.out" || e2e_fail "image differs: acknowledged writes lost"
# Informational: a kill between two requests leaves nothing in flight.
resub=$(cat "$E2E_WORK"/vhu-blk-*.log | grep -o "resubmitting [0-9]* inflight" | awk '{ n += $2 } END { print n + 0 }')
e2e_log "$KILLS $FAULT faults ($BLK_STORAGE); requests in flight at the kills, resubmitted after reconnect: $resub"
e2e_log "PASS (guest run ${E2E_QEMU_SECONDS}s)"
