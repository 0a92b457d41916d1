#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end, client mode: a Linux guest (QEMU with `-chardev
# socket,server=on,wait=off`: the QEMU side listens) streams O_DIRECT writes
# through `vhu-blk --client`, which is SIGKILLed mid-I/O and started again
# (VHU_E2E_BLK_KILLS times).  Each new vhu-blk connects to QEMU by itself;
# QEMU re-runs the device set-up and hands over its in-flight region, and
# vhu-blk resubmits what was in flight; QEMU never restarts and the guest
# sees no error.
#
# The image is a file behind qemu-storage-daemon's NBD server with a
# write throttle (WRITE_BPS), so that each kill finds writes in flight in
# vhu-blk and the in-flight region has something to hand over: at least
# one resubmitted request is required.  (Served directly from a file, the
# writes complete too fast under a TCG guest for a kill to catch them
# reliably.)  Writes the killed process had sent stay ahead of the
# resubmitted ones in the throttle's queue.
#
# None lost, none done twice: each of the guest's two writers (one per
# queue) writes its stripe again and again, alternating two patterns, and
# says which one it wrote last.  A write acknowledged and then lost leaves
# the other pattern (or a mix) behind; a write done twice (an old request
# replayed after a newer one to the same blocks completed) does the same.
# The guest reads the disk back, and the host compares the image, stripe
# by stripe, with the pattern each writer wrote last.
# Usage: blk_restart.sh [PATH/TO/vhu-blk]
set -u
. "$(dirname "$0")/../e2e/lib.sh"

BLK=${1:-${VHU_BUILD_ROOT:-.}/devices/blk/vhu-blk}
[ -x "$BLK" ] || e2e_fail "vhu-blk binary not found at $BLK"
KILLS=${VHU_E2E_BLK_KILLS:-3}
MIB=16
NQ=2
WRITE_BPS=16000000
STRIPE=$((MIB / NQ))

e2e_init blk-client
e2e_need_tools
e2e_apt_install_missing qemu-storage-daemon qemu-system-common
e2e_fetch_kernel
for p in a b; do
	dd if=/dev/urandom of="$E2E_WORK/$p.bin" bs=1M count=$MIB status=none ||
		e2e_fail "cannot create pattern $p"
done
truncate -s ${MIB}M "$E2E_WORK/disk.img"

sed -e "s/@NQ@/$NQ/g" -e "s/@STRIPE@/$STRIPE/g" >"$E2E_WORK/guest.sh" <<'GUEST'
fail() { echo "guest: FAIL: $*"; exit 1; }
DEV=/dev/vda
NQ=@NQ@
STRIPE=@STRIPE@
SECS=10
[ -b $DEV ] || fail "no $DEV"
# Write-through: every write is O_DSYNC on the host, so requests stay in
# flight long enough for the kills to catch some.
echo "write through" >/sys/block/vda/cache_type || fail "cannot set write through"
now() { cut -d. -f1 /proc/uptime; }
END=$(($(now) + SECS))
echo "guest: io-started at $(cut -d" " -f1 /proc/uptime)"
i=0
pids=
while [ $i -lt $NQ ]; do
	( p=0 pat=a
	  while [ $p -lt 2 ] || [ $(now) -lt $END ]; do
		if [ $((p % 2)) = 0 ]; then pat=a; else pat=b; fi
		taskset -c $i dd if=/$pat.bin of=$DEV bs=1M skip=$((i * STRIPE)) \
			seek=$((i * STRIPE)) count=$STRIPE oflag=direct conv=notrunc 2>/dev/null ||
			exit 1
		p=$((p + 1))
	  done
	  echo $pat >/tmp/last.$i
	  echo "guest: writer $i did $p passes, last pattern $pat" ) &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait $p || fail "write failed"; done
echo "guest: writes done at $(cut -d" " -f1 /proc/uptime)"
i=0
while [ $i -lt $NQ ]; do
	pat=$(cat /tmp/last.$i)
	dd if=$DEV of=/tmp/got bs=1M skip=$((i * STRIPE)) count=$STRIPE iflag=direct 2>/dev/null ||
		fail "read failed"
	dd if=/$pat.bin of=/tmp/want bs=1M skip=$((i * STRIPE)) count=$STRIPE 2>/dev/null
	cmp /tmp/got /tmp/want || fail "stripe $i differs from pattern $pat"
	rm -f /tmp/got /tmp/want
	echo "guest: stripe $i verified ($pat)"
	i=$((i + 1))
done
exit 0
GUEST

E2E_INITRAMFS_FILES="$E2E_WORK/a.bin:/a.bin $E2E_WORK/b.bin:/b.bin"
e2e_build_initramfs "$E2E_WORK/initrd" "$E2E_WORK/guest.sh" virtio_pci virtio_blk
E2E_INITRD="$E2E_WORK/initrd"
SOCK="$E2E_WORK/blk.sock"
NBD="$E2E_WORK/nbd.sock"
e2e_spawn QSD_PID "$E2E_WORK/qsd.log" qemu-storage-daemon \
	--blockdev "driver=file,filename=$E2E_WORK/disk.img,node-name=file0" \
	--object "throttle-group,id=tg0,x-bps-write=$WRITE_BPS" \
	--blockdev driver=throttle,throttle-group=tg0,file=file0,node-name=thr0 \
	--nbd-server "addr.type=unix,addr.path=$NBD" \
	--export type=nbd,id=exp0,node-name=thr0,name=disk,writable=on
e2e_wait_socket "$NBD" || e2e_fail "qemu-storage-daemon did not start: $(cat "$E2E_WORK/qsd.log")"

start_blk() { # LOG
	"$BLK" -v --client --socket-path "$SOCK" --num-queues "$NQ" \
		"nbd+unix:///disk?socket=$NBD" >"$E2E_WORK/$1" 2>&1 &
	BLK_PID=$!
	E2E_PIDS+=("$BLK_PID")
}

# QEMU listens and waits for its back end before the guest boots; the
# first vhu-blk may start before QEMU (it retries) or after.
e2e_run_qemu "$E2E_WORK/console.log" "${VHU_E2E_TIMEOUT:-300}" -smp "$NQ" \
	-chardev "socket,id=blk0,path=$SOCK,server=on,wait=off" \
	-device "vhost-user-blk-pci,chardev=blk0,num-queues=$NQ" &
QEMU_PID=$!
start_blk vhu-blk-0.log

for _ in $(seq 1200); do
	grep -aq "guest: io-started" "$E2E_WORK/console.log" 2>/dev/null && break
	kill -0 "$QEMU_PID" 2>/dev/null || break
	sleep 0.1
done
grep -aq "guest: io-started" "$E2E_WORK/console.log" || e2e_fail "the guest did not start writing"
for k in $(seq "$KILLS"); do
	sleep 1.5
	kill -KILL "$BLK_PID"
	wait "$BLK_PID" 2>/dev/null
	e2e_log "killed vhu-blk --client ($k) mid-I/O"
	sleep 0.5
	start_blk "vhu-blk-$k.log"
done
wait "$QEMU_PID"
guest_rc=$?
e2e_stop "$BLK_PID"
last_rc=$?
e2e_stop "$QSD_PID" >/dev/null # flushed to the image
for k in $(seq 0 "$KILLS"); do
	grep -v '^ ' "$E2E_WORK/vhu-blk-$k.log" | sed "s/^/  vhu-blk($k): /" >&2
done
grep -a "guest:" "$E2E_WORK/console.log" | sed 's/^/  /' >&2
[ "$guest_rc" = 0 ] || e2e_fail "guest did not pass"
[ "$last_rc" = 0 ] || e2e_fail "the last vhu-blk exited with status $last_rc after SIGTERM"
# Every restarted vhu-blk served QEMU again (connected by itself).
for k in $(seq "$KILLS"); do
	grep -q "connected to" "$E2E_WORK/vhu-blk-$k.log" ||
		e2e_fail "vhu-blk ($k) never connected to QEMU"
done
# The host's view: each stripe holds the pattern its writer wrote last.
for i in $(seq 0 $((NQ - 1))); do
	pat=$(grep -ao "writer $i did [0-9]* passes, last pattern [ab]" "$E2E_WORK/console.log" |
		awk '{ print $NF }')
	[ -n "$pat" ] || e2e_fail "writer $i did not report"
	off=$((i * STRIPE * 1048576))
	cmp -n $((STRIPE * 1048576)) -i "$off:$off" "$E2E_WORK/disk.img" "$E2E_WORK/$pat.bin" ||
		e2e_fail "image stripe $i differs from pattern $pat: a write lost or done twice"
done
resub=$(cat "$E2E_WORK"/vhu-blk-*.log | grep -o "resubmitting [0-9]* inflight" |
	awk '{ n += $2 } END { print n + 0 }')
[ "$resub" -gt 0 ] || e2e_fail "no request was in flight at any of the $KILLS kills"
e2e_log "PASS: $KILLS SIGKILLs of vhu-blk --client mid-I/O, QEMU ran on (guest ${E2E_QEMU_SECONDS:-?}s); requests resubmitted after reconnecting: $resub"
