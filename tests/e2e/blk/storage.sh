# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Where the vhu-blk end-to-end scripts keep the disk: BLK_STORAGE=file (the
# default: a raw file), rbd (an image in a throw-away Ceph cluster,
# tests/storage/ceph-cluster.sh) or nbd (qemu-nbd exporting a qcow2 over a
# unix socket).  Sourced by common.sh.  See docs/storage.md.
#
#   storage_setup BYTES   create the disk; sets IMAGE (the vhu-blk argument)
#   storage_export FILE   the disk's content as a raw file, read by the
#                         storage's own tools (rbd export, qemu-img convert)
#   storage_fault start|stop
#                         rbd: SIGSTOP / SIGCONT the OSD; nbd: SIGKILL the
#                         server / start it again; file: nothing
BLK_STORAGE=${BLK_STORAGE:-file}
STORAGE_SRC=$(cd "$E2E_BLK_DIR/../../storage" && pwd)

# Also stops what a subshell (the fault controller) started.
storage_cleanup() {
	local rc=$?
	[ -d "$E2E_WORK/ceph" ] && ceph_cluster_stop "$E2E_WORK/ceph"
	# (the server this shell started is e2e_cleanup's)
	if [ -f "$E2E_WORK/nbd.pid" ] && [ "$(cat "$E2E_WORK/nbd.pid")" != "${NBD_PID:-}" ]; then
		kill -KILL "$(cat "$E2E_WORK/nbd.pid")" 2>/dev/null
	fi
	(exit "$rc")
	e2e_cleanup
}

storage_nbd_start() {
	rm -f "$E2E_WORK/nbd.sock"
	e2e_spawn NBD_PID "$E2E_WORK/qemu-nbd.log" qemu-nbd -t --shared=8 -f qcow2 \
		-k "$E2E_WORK/nbd.sock" --discard=unmap "$E2E_WORK/disk.qcow2"
	echo "$NBD_PID" >"$E2E_WORK/nbd.pid"
	e2e_wait_socket "$E2E_WORK/nbd.sock" || e2e_fail "qemu-nbd did not listen"
}

storage_setup() {
	local bytes=$1
	case $BLK_STORAGE in
	file)
		IMAGE="$E2E_WORK/disk.img"
		truncate -s "$bytes" "$IMAGE" || e2e_fail "cannot create $IMAGE"
		;;
	rbd)
		command -v ceph-mon >/dev/null || e2e_fail "ceph-mon missing (scripts/deps test)"
		. "$STORAGE_SRC/ceph-cluster.sh"
		trap storage_cleanup EXIT
		# A killed vhu-blk's exclusive lock is broken once its watch
		# expires: 5 s here instead of 30 (docs/storage.md).
		CEPH_EXTRA_CONF="osd client watch timeout = 5" \
			ceph_cluster_start "$E2E_WORK/ceph" >/dev/null 2>"$E2E_WORK/ceph-start.log" ||
			e2e_fail "Ceph cluster did not start: $(cat "$E2E_WORK/ceph-start.log")"
		CEPH_CONF="$E2E_WORK/ceph/ceph.conf"
		timeout 60 rbd -c "$CEPH_CONF" create --size "$((bytes / 1024))K" rbd/e2e ||
			e2e_fail "rbd create failed"
		IMAGE="rbd:rbd/e2e:conf=$CEPH_CONF"
		;;
	nbd)
		qemu-img create -q -f qcow2 "$E2E_WORK/disk.qcow2" "$bytes" ||
			e2e_fail "qemu-img create failed"
		trap storage_cleanup EXIT
		storage_nbd_start
		IMAGE="nbd+unix:///?socket=$E2E_WORK/nbd.sock"
		;;
	*) e2e_fail "BLK_STORAGE=$BLK_STORAGE: expected file, rbd or nbd" ;;
	esac
	e2e_log "disk: $IMAGE"
}

storage_export() {
	local out=$1
	case $BLK_STORAGE in
	file) cp "$IMAGE" "$out" ;;
	rbd) timeout 120 rbd -c "$CEPH_CONF" export --no-progress rbd/e2e "$out" ;;
	nbd)
		# qemu-nbd holds the qcow2 open: read it through the server.
		timeout 120 qemu-img convert -f raw -O raw "$IMAGE" "$out"
		;;
	esac || e2e_fail "cannot read the disk back from $BLK_STORAGE"
}

storage_fault() {
	case $BLK_STORAGE:$1 in
	rbd:start) kill -STOP "$(ceph_cluster_pid "$E2E_WORK/ceph" osd.0)" ;;
	rbd:stop) kill -CONT "$(ceph_cluster_pid "$E2E_WORK/ceph" osd.0)" ;;
	nbd:start)
		kill -KILL "$(cat "$E2E_WORK/nbd.pid")"
		;;
	nbd:stop) storage_nbd_start ;;
	esac
}
