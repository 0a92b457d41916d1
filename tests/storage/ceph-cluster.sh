#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A throw-away single-node Ceph cluster for tests and benchmarks: one
# ceph-mon and one ceph-osd (memstore: data in RAM), `auth none`, pool size
# 1, no systemd, no ceph-mgr; everything under DIR, ports picked free.
#
#   ceph-cluster.sh start DIR [POOL]   start it (2-8 s), create POOL (default
#                                      "rbd"); prints the conf file path
#   ceph-cluster.sh stop DIR           kill the daemons by PID (SIGKILL after 5 s)
#   ceph-cluster.sh osd-pid DIR        PID of the OSD (for fault tests)
#
# CEPH_EXTRA_CONF: more lines for the [osd] section.
# Clients then use `-c DIR/ceph.conf` (ceph, rbd) or the spec
# `rbd:POOL/IMAGE:conf=DIR/ceph.conf` (vhu-blk, qemu).  Sourced, it defines
# the functions ceph_cluster_start / ceph_cluster_stop instead.
# See docs/storage.md.

ceph_free_port() {
	# A port nothing listens on, out of the ephemeral range's usual start.
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 20000))
		if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

ceph_cluster_start() {
	local dir=$1 pool=${2:-rbd} port fsid osd_uuid i
	mkdir -p "$dir/run" "$dir/mon.a" "$dir/osd.0" || return 1
	dir=$(cd "$dir" && pwd)
	port=$(ceph_free_port) || return 1
	fsid=$(cat /proc/sys/kernel/random/uuid)
	cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon mgr mkfs grace = 86400
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.01
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
# Pages, not one bufferlist per object: with bufferlists every 4 KiB write
# splits its object's list further and the OSD grows slower with each write
# (a benchmark's later repetitions 2-3x slower than its first).
memstore page set = true
# A short PG log: memstore keeps it in memory, and with the default (up to
# 10000 entries a PG) writes grew slower as it filled (QD32 writes 5.8k ->
# 3.8k IOPS over 8 runs of 5 s; stable with 100).
osd min pg log entries = 100
osd max pg log entries = 100
osd pg log trim min = 10
osd op num shards = 1
osd op num threads per shard = 2
run dir = $dir/run
log file = $dir/\$name.log
keyring = $dir/keyring
[mon]
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
mon data = $dir/mon.\$id
[osd]
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
osd data = $dir/osd.\$id
${CEPH_EXTRA_CONF:-}
[client]
admin socket =
log file =
CONF
	ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. \
		--cap mon 'allow *' >/dev/null || return 1
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" \
		"$dir/monmap" >/dev/null || return 1
	ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" || return 1
	ceph-mon -c "$dir/ceph.conf" -i a || return 1
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	i=$(timeout 60 ceph -c "$dir/ceph.conf" osd new "$osd_uuid") || return 1
	ceph-osd -c "$dir/ceph.conf" -i "$i" --mkfs --osd-uuid "$osd_uuid" \
		2>"$dir/osd-mkfs.log" || { cat "$dir/osd-mkfs.log" >&2; return 1; }
	ceph-osd -c "$dir/ceph.conf" -i "$i" || return 1
	timeout 60 ceph -c "$dir/ceph.conf" osd pool create "$pool" 8 8 >/dev/null 2>&1 || return 1
	timeout 60 ceph -c "$dir/ceph.conf" osd pool application enable "$pool" rbd \
		>/dev/null 2>&1 || return 1
	# Wait until the PGs are active: an object operation blocks until then
	# (`ceph pg stat` needs a ceph-mgr, which this cluster does not run).
	if ! timeout 60 rados -c "$dir/ceph.conf" -p "$pool" stat vhu-probe 2>&1 |
		grep -q 'No such file'; then
		echo "ceph-cluster: pool $pool not usable after 60 s" >&2
		return 1
	fi
	echo "$dir/ceph.conf"
}

ceph_cluster_pid() {
	cat "$1/run/$2.pid" 2>/dev/null
}

ceph_cluster_stop() {
	local dir=$1 name pid
	for name in osd.0 mon.a; do
		pid=$(ceph_cluster_pid "$dir" "$name") || continue
		[ -n "$pid" ] || continue
		# Each may find the daemon gone (it died, or the TERM worked):
		# under a caller's `set -e` a failed kill must not end the
		# clean-up before the monitor is stopped.
		kill -CONT "$pid" 2>/dev/null || true
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	case "${1:-}" in
	start) ceph_cluster_start "${2:?DIR}" "${3:-rbd}" ;;
	stop) ceph_cluster_stop "${2:?DIR}" ;;
	osd-pid) ceph_cluster_pid "${2:?DIR}" osd.0 ;;
	*) echo "usage: $0 start DIR [POOL] | stop DIR | osd-pid DIR" >&2; exit 2 ;;
	esac
fi
