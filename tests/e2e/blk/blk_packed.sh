#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end with packed virtqueues (virtio 1.1 2.8): runs blk_rw.sh or
# blk_reconnect.sh with packed=on on the vhost-user-blk-pci device and then
# checks, from vhu-blk's log, that the packed layout was really used (the
# guest falls back to split rings if the feature is not negotiated):
#   rw         the acked features (debug log) have VIRTIO_F_RING_PACKED
#   reconnect  the restarted back ends resumed packed rings at the position
#              their inflight area recorded (vring_packed.c)
# Usage: blk_packed.sh rw|reconnect [PATH/TO/vhu-blk [NQ]]
set -u
MODE=${1:?usage: blk_packed.sh rw|reconnect [PATH/TO/vhu-blk [NQ]]}
shift
DIR=$(cd "$(dirname "$0")" && pwd)
export BLK_DEVICE_OPTS=",packed=on"
case "$MODE" in
rw)
	export VHU_BLK_LOG=debug
	script=blk_rw.sh
	;;
reconnect) script=blk_reconnect.sh ;;
*)
	echo "usage: blk_packed.sh rw|reconnect [PATH/TO/vhu-blk [NQ]]" >&2
	exit 2
	;;
esac
out=$(mktemp /tmp/vhu-e2e-blk-packed.XXXXXX)
trap 'rm -f "$out"' EXIT
bash "$DIR/$script" "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || exit "$rc"
if [ "$MODE" = rw ]; then
	f=$(grep -ao 'acked features 0x[0-9a-f]*' "$out" | tail -1 | awk '{print $3}')
	if [ -z "$f" ] || ! (((f >> 34) & 1)); then
		echo "e2e: FAIL: VIRTIO_F_RING_PACKED not negotiated (acked features '${f:-none}')"
		exit 1
	fi
	echo "e2e: packed ring in use (acked features $f)"
else
	n=$(grep -ac 'packed ring resumes at the recorded position' "$out")
	if [ "$n" -lt 1 ]; then
		echo "e2e: FAIL: no restarted back end resumed a packed ring from its inflight area"
		exit 1
	fi
	echo "e2e: $n packed ring(s) resumed from the inflight area"
fi
