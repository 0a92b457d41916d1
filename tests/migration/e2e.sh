#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Live migration end to end with QEMU 7.2 (TCG), docs/migration.md.
#
#   e2e.sh VHU_BLK VHU_NET [split|packed]
#
# MIG_BLK=qsd serves the disk with qemu-storage-daemon's vhost-user-blk
# export (libvhost-user) instead of vhu-blk, for comparison: under QEMU 7.2
# its postcopy migration fails (docs/migration.md).  MIG_DEVICES=qemu runs
# the same guest and migrations with QEMU's own virtio-blk and virtio-net
# (a tap each side, no vhost-user at all), the control for anything that
# goes wrong.  MIG_RAM sets the guest's memory size (see qemu_start).
#
# Two sides, A and B, each with its own vhu-blk and vhu-net on their own
# sockets; both vhu-blk serve the same image file, each vhu-net a tap of
# its own on one bridge (in a network namespace of this run, with the
# host's end of the stream).  A guest (2 vCPUs, 2 blk queues) runs
# migguest: O_DIRECT writes and read-backs of a checksummed pattern on the
# disk, and a checksummed TCP stream from the host, checked byte by byte.
# While that runs:
#   - a migration A->B is cancelled mid-way: the guest runs on on A and
#     A's back ends turn dirty logging off again;
#   - the guest migrates A->B (precopy), B->A (precopy), A->B (postcopy);
#     after each, the guest's traffic goes on on the new side, a RARP with
#     its MAC came out of the new side's tap and the bridge learnt it there.
# Then the stream ends, the guest checks every block of the disk, writes a
# final pattern that the host finds in the image file, and powers off.  A
# page a back end wrote without logging it shows up as a failed check in
# the guest; a request lost or done twice at a switch-over as a hang or a
# failed final check.
set -u
MIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$MIG_DIR/../e2e/lib.sh"

BLK=${1:?vhu-blk binary}
NET=${2:?vhu-net binary}
RING=${3:-split}
MIB=24
GUEST_MAC=52:54:00:4d:49:47
HOST_IP=10.77.0.1
GUEST_IP=10.77.0.2
MIGCTL="python3 -B $MIG_DIR/migctl.py"

[ -x "$BLK" ] || e2e_fail "vhu-blk binary not found at $BLK"
[ -x "$NET" ] || e2e_fail "vhu-net binary not found at $NET"
case $RING in
split) DEV_OPTS= ;;
packed) DEV_OPTS=,packed=on ;;
*) e2e_fail "ring layout split or packed, not $RING" ;;
esac

e2e_init "mig-$RING"
e2e_need_tools
e2e_apt_install_missing ip iproute2 bridge iproute2
e2e_fetch_kernel
W=$E2E_WORK
NS=vhumig$$
NETNS=(ip netns exec "$NS")
PORT=$((20000 + $$ % 20000))

cleanup_ns() {
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$NS" 2>/dev/null
}
trap 'rc=$?; cleanup_ns; e2e_cleanup; exit $rc' EXIT

# ---- guest ----------------------------------------------------------------

cc -static -O2 -Wall -Wextra -Werror -pthread -o "$W/migguest" "$MIG_DIR/migguest.c" ||
	e2e_fail "cannot build the static guest workload (libc.a missing?)"
cat >"$W/guest.sh" <<EOF
ip link set lo up
ip link set eth0 up || exit 10
ip addr add $GUEST_IP/24 dev eth0 || exit 11
/migguest /dev/vda 2 $MIB $HOST_IP $PORT
EOF
E2E_INITRAMFS_FILES="$W/migguest:/migguest"
e2e_build_initramfs "$W/initrd" "$W/guest.sh" virtio_pci virtio_blk virtio_net
truncate -s $((MIB + 8))M "$W/disk.img"

# ---- host: namespace, bridge, back ends ------------------------------------

ip netns add "$NS" || e2e_fail "cannot create network namespace $NS"
"${NETNS[@]}" ip link set lo up
"${NETNS[@]}" ip link add br0 type bridge || e2e_fail "cannot create a bridge"
"${NETNS[@]}" ip addr add $HOST_IP/24 dev br0
"${NETNS[@]}" ip link set br0 up

# e2e_wait_socket for a socket made in the namespace (/proc/net/unix is
# per namespace).
wait_ns_socket() {
	for _ in $(seq 100); do
		"${NETNS[@]}" awk -v p="$1" '$4 == "00010000" && $8 == p { f = 1 } END { exit !f }' \
			/proc/net/unix && return 0
		sleep 0.1
	done
	return 1
}

# start_blk SIDE: the disk's back end for SIDE.
start_blk() {
	if [ "${MIG_BLK:-vhu}" = qsd ]; then
		e2e_spawn "BLK_$1" "$W/blk-$1.log" qemu-storage-daemon \
			--blockdev "driver=file,node-name=file,filename=$W/disk.img,locking=off,cache.direct=on" \
			--blockdev driver=raw,node-name=disk,file=file \
			--export "type=vhost-user-blk,id=exp,node-name=disk,writable=on,num-queues=2,addr.type=unix,addr.path=$W/blk-$1.sock"
	else
		VHU_LOG=info e2e_spawn "BLK_$1" "$W/blk-$1.log" "$BLK" --num-queues 2 \
			--socket-path "$W/blk-$1.sock" "$W/disk.img"
	fi
}

if [ "${MIG_DEVICES:-vhu}" = qemu ]; then
	for side in A B; do
		"${NETNS[@]}" ip tuntap add "tap$side" mode tap vnet_hdr ||
			e2e_fail "cannot create tap$side"
		"${NETNS[@]}" ip link set "tap$side" master br0 up || e2e_fail "tap$side not on the bridge"
	done
else for side in A B; do
	start_blk "$side"
	VHU_LOG=info e2e_spawn "NET_$side" "$W/net-$side.log" "${NETNS[@]}" "$NET" \
		--tap "tap$side" --socket-path "$W/net-$side.sock"
	e2e_wait_socket "$W/blk-$side.sock" || e2e_fail "vhu-blk $side: $(cat "$W/blk-$side.log")"
	wait_ns_socket "$W/net-$side.sock" || e2e_fail "vhu-net $side: $(cat "$W/net-$side.log")"
	"${NETNS[@]}" ip link set "tap$side" master br0 up || e2e_fail "tap$side not on the bridge"
done; fi
e2e_spawn WATCH_PID "$W/watch.log" "${NETNS[@]}" $MIGCTL rarp-watch br0 "$W/rarp.log"
e2e_spawn SEND_PID "$W/sender.log" "${NETNS[@]}" "$W/migguest" --send $HOST_IP $PORT "$W/stop"

# ---- QEMU -----------------------------------------------------------------

QN=0
# One TCG thread for the two vCPUs by default: cheaper beside the other
# tests on a 2-core CI machine (MIG_TCG_THREAD=multi for MTTCG, which
# migrates right too once the RAM size below is used).
if [ "${VHU_E2E_ACCEL:-tcg}" = tcg ]; then
	ACCEL=(-accel "tcg,thread=${MIG_TCG_THREAD:-single}")
else
	ACCEL=(-machine "accel=$VHU_E2E_ACCEL")
fi
# Guest memory: 256 MiB less 8 KiB by default, NOT a multiple of 256 KiB.
# QEMU 7.2 under TCG loses guest stores during a migration: its dirty
# bitmap sync takes a fast path for RAM blocks whose size is a multiple of
# 64 pages and there forgets to re-arm the TCG TLB's dirty tracking, so
# pages the vCPUs write after a sync may never be sent again (fixed in
# QEMU 9.0, commit 03bfc2188f "physmem: Fix migration dirty bitmap
# coherency with TCG memory access").  The destination guest then crashes
# on stale memory, with QEMU's own devices just the same.  A block of
# another size takes the page-by-page path, which is right.
MIG_RAM=${MIG_RAM:-262136K}
# qemu_start SIDE [incoming]: boot (or wait for a migration into) a VM on
# SIDE's back ends (or QEMU's devices with MIG_DEVICES=qemu); sets QPID and
# Q (the run's number: console-Q.log, qmp-Q.sock, mig-Q.sock).
qemu_start() {
	local side=$1 extra=() pre=() devs
	QN=$((QN + 1))
	Q=$QN
	[ "${2:-}" = incoming ] && extra=(-incoming "unix:$W/mig-$Q.sock")
	if [ "${MIG_DEVICES:-vhu}" = qemu ]; then
		pre=("${NETNS[@]}")
		devs=(-drive "file=$W/disk.img,if=none,id=d0,format=raw,cache=none,aio=threads,file.locking=off"
			-device "virtio-blk-pci,drive=d0,num-queues=2$DEV_OPTS"
			-netdev "tap,id=n0,ifname=tap$side,script=no,downscript=no")
	else
		devs=(-chardev "socket,id=blk0,path=$W/blk-$side.sock"
			-device "vhost-user-blk-pci,chardev=blk0,num-queues=2$DEV_OPTS"
			-chardev "socket,id=net0,path=$W/net-$side.sock"
			-netdev vhost-user,id=n0,chardev=net0)
	fi
	"${pre[@]}" qemu-system-x86_64 \
		-machine q35,memory-backend=mem "${ACCEL[@]}" \
		-object "memory-backend-memfd,id=mem,size=$MIG_RAM,share=on" -m "$MIG_RAM" -smp 2 \
		-nodefaults -no-user-config -display none -no-reboot \
		-serial "file:$W/console-$Q.log" -qmp "unix:$W/qmp-$Q.sock,server=on,wait=off" \
		-kernel "$E2E_KERNEL" -initrd "$W/initrd" \
		-append "console=ttyS0 quiet panic=-1 init_on_alloc=0" \
		"${devs[@]}" -device "virtio-net-pci,netdev=n0,mac=$GUEST_MAC,vectors=0$DEV_OPTS" \
		"${extra[@]}" </dev/null >"$W/qemu-$Q.log" 2>&1 &
	QPID=$!
	E2E_PIDS+=("$QPID")
	for _ in $(seq 100); do
		[ -S "$W/qmp-$Q.sock" ] && return 0
		sleep 0.1
	done
	e2e_fail "QEMU $Q did not start: $(cat "$W/qemu-$Q.log")"
}

# wait_for FILE PATTERN SECONDS
wait_for() {
	for _ in $(seq $(($3 * 10))); do
		grep -aq "$2" "$1" 2>/dev/null && return 0
		grep -aq "mig: FAIL\|Kernel panic" "$1" 2>/dev/null && break
		sleep 0.1
	done
	e2e_log "no '$2' in $1 after $3 s:"
	tail -n 20 "$1" 2>/dev/null | sed 's/^/  /' >&2
	return 1
}

# Progress the guest printed last on console Q: "BLK NET".
progress() {
	grep -a '^mig: blk' "$W/console-$1.log" 2>/dev/null | tail -n 1 | awk '{print $3, $5}'
}

# The guest's disk and network traffic goes on on console $1, past
# what was printed before ($2 $3).
moves_on() {
	local q=$1 b0=$2 n0=$3 b n
	for _ in $(seq 900); do
		read -r b n < <(progress "$q")
		if [ -n "${b:-}" ] && [ "$b" -gt "$b0" ] && [ "$n" -gt "$n0" ]; then
			e2e_log "guest traffic goes on (console $q): blk $b0 -> $b, net $n0 -> $n records"
			return 0
		fi
		grep -aq "mig: FAIL" "$W/console-$q.log" && break
		sleep 0.2
	done
	tail -n 20 "$W/console-$q.log" | sed 's/^/  guest: /' >&2
	e2e_fail "guest traffic did not go on on console $q"
}

# After a migration onto SIDE: RARPs with the guest's MAC, bridge learnt it there.
announced() {
	local side=$1 before=$2
	for _ in $(seq 100); do
		[ "$(grep -c "$GUEST_MAC" "$W/rarp.log")" -gt "$before" ] && break
		sleep 0.1
	done
	[ "$(grep -c "$GUEST_MAC" "$W/rarp.log")" -gt "$before" ] ||
		e2e_fail "no RARP for $GUEST_MAC on the bridge after the move to $side"
	[ "${MIG_DEVICES:-vhu}" = qemu ] || grep -q "RARP for $GUEST_MAC sent" "$W/net-$side.log" ||
		e2e_fail "vhu-net $side did not send the RARP"
	"${NETNS[@]}" bridge fdb show br br0 >"$W/fdb.txt"
	grep -q "$GUEST_MAC dev tap$side" "$W/fdb.txt" ||
		e2e_fail "the bridge did not learn $GUEST_MAC on tap$side: $(grep -i "$GUEST_MAC" "$W/fdb.txt")"
	e2e_log "RARP from side $side seen on the bridge; $GUEST_MAC learnt on tap$side"
}

# migrate FROM_Q TO_SIDE [--postcopy]: migrate VM FROM_Q into a new QEMU on
# TO_SIDE; sets Q to the new one.
migrate() {
	local from=$1 to=$2 mode=${3:-} b n r rc
	read -r b n < <(progress "$from")
	r=$(grep -c "$GUEST_MAC" "$W/rarp.log")
	qemu_start "$to" incoming
	$MIGCTL migrate "$W/qmp-$from.sock" "$W/qmp-$Q.sock" "unix:$W/mig-$Q.sock" $mode \
		>"$W/migctl-$Q.log" 2>&1
	rc=$?
	tee -a "$W/migrations.log" <"$W/migctl-$Q.log" >&2
	[ "$rc" = 0 ] ||
		e2e_fail "migration $from -> $Q ($to) failed: $(tail -n 5 "$W/qemu-$from.log" "$W/qemu-$Q.log" "$W/console-$Q.log" | tr -cd '[:print:]\n')"
	$MIGCTL quit "$W/qmp-$from.sock"
	moves_on "$Q" "${b:-0}" "${n:-0}"
	announced "$to" "$r"
}

qemu_start A
FIRST=$Q
wait_for "$W/console-$FIRST.log" "mig: blk [1-9][0-9]* net [1-9]" 120 || e2e_fail "guest workload did not start"

# A migration cancelled mid-way: the source runs on, logging off again.
read -r b0 n0 < <(progress "$FIRST")
qemu_start B incoming
DEST=$Q DEST_PID=$QPID
$MIGCTL migrate "$W/qmp-$FIRST.sock" "$W/qmp-$DEST.sock" "unix:$W/mig-$DEST.sock" --cancel >&2 ||
	e2e_fail "cancelled migration: $(tail -n 5 "$W/qemu-$FIRST.log")"
# The destination gives up on the broken stream and exits.
for _ in $(seq 100); do kill -0 "$DEST_PID" 2>/dev/null || break; sleep 0.1; done
kill "$DEST_PID" 2>/dev/null
for b in blk net; do
	[ "${MIG_DEVICES:-vhu}" = qemu ] && continue
	[ "$b" = blk ] && [ "${MIG_BLK:-vhu}" = qsd ] && continue
	grep -q "dirty logging on" "$W/$b-A.log" || e2e_fail "vhu-$b A never logged"
	tail -n 1 <(grep "dirty logging" "$W/$b-A.log") | grep -q "dirty logging off" ||
		e2e_fail "vhu-$b A still logging after the cancel"
done
moves_on "$FIRST" "$b0" "$n0"
e2e_log "cancelled migration: the guest runs on on A, its back ends stopped logging"

migrate "$FIRST" B
migrate "$Q" A
migrate "$Q" B --postcopy
LAST=$Q

# End of the run: the guest checks the whole disk and reports.
touch "$W/stop"
wait_for "$W/console-$LAST.log" "VHU-E2E-RESULT:" 300 || e2e_fail "the guest did not finish"
grep -a "^mig: \|VHU-E2E-RESULT" "$W/console-$LAST.log" | tail -n 3 | sed 's/^/  guest: /' >&2
grep -aq "VHU-E2E-RESULT: PASS" "$W/console-$LAST.log" || e2e_fail "the guest saw corrupted or lost data"
wait "$SEND_PID" || e2e_fail "stream: $(cat "$W/sender.log")"
sed 's/^/  host /' "$W/sender.log" >&2
"$W/migguest" --expect "$W/disk.img" $MIB >&2 || e2e_fail "the image file differs from what the guest wrote"

if [ "${MIG_DEVICES:-vhu}" = qemu ]; then
	e2e_log "PASS ($RING rings, QEMU's own devices): cancel, 2 precopy + 1 postcopy migrations"
	exit 0
fi
for side in A B; do
	for b in blk net; do
		pid_var=${b^^}_$side
		e2e_stop "${!pid_var}" || e2e_fail "vhu-$b $side did not exit cleanly"
		if grep -q "still in flight\|failed:\|not logged" "$W/$b-$side.log"; then
			grep "still in flight\|failed:\|not logged" "$W/$b-$side.log" >&2
			e2e_fail "vhu-$b $side reported a problem"
		fi
	done
done
grep -h "waited .* ms for chains in flight" "$W"/blk-*.log | sed 's/^/  /' >&2
e2e_log "PASS ($RING rings): cancel, 2 precopy + 1 postcopy migrations with disk and network traffic"
