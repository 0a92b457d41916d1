#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# systemd units (TAP), as `meson install` puts them into a scratch DESTDIR,
# with systemd's own tools where PID 1 need not be systemd:
#  - systemd-analyze verify: no warning for an instance of each pair;
#  - systemd-analyze security --offline: each service stays hardened
#    (exposure at most the figure in docs/install.md's table);
#  - systemd-socket-activate: the command each service runs, fed the
#    listening socket as systemd would (LISTEN_FDS, fd 3), accepts the
#    connection that activated it, answers a front end (GET_FEATURES), serves
#    real I/O (vhu-blk: vhu-bench writes), serves a second front end on the
#    same socket, and exits 0 on SIGTERM; vhu-net --peer on two activated
#    sockets as vhu-net(1) documents.
# The packaged units under a real systemd: tests/package/deb.sh.
# usage: units.sh BUILD_ROOT SOURCE_ROOT
set -u
build=$1 src=$2
. "$src/tests/lib/tap.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhu-units.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
for t in systemd-analyze systemd-socket-activate; do
	command -v $t >/dev/null || { not_ok "$t present" "apt-get install systemd"; tap_done; exit; }
done
intro() { meson_opt "$build" "$1"; }
prefix=$(intro prefix)
unitdir=$(intro systemdunitdir)
[ -n "$unitdir" ] || unitdir=$prefix/lib/systemd/system
install_destdir "$build"
export LD_LIBRARY_PATH=$root$prefix/$(intro libdir)

# Highest exposure (systemd-analyze security, in tenths: 15 = 1.5) each
# service may reach.
declare -A max_exposure=([blk]=15 [net]=25 [rng]=10 [fs]=35)
daemons=()
for d in blk net rng fs; do [ -x "$root$prefix/bin/vhu-$d" ] && daemons+=("$d"); done

# Units with ExecStart pointing into the DESTDIR, in a unit directory of
# their own searched before the system's.
mkdir -p "$WORK/units"
for f in "$root$unitdir"/vhu-*; do
	sed "s#^ExecStart=$prefix/#ExecStart=$root$prefix/#" "$f" >"$WORK/units/$(basename "$f")"
done
for d in "${daemons[@]}"; do
	if [ ! -f "$WORK/units/vhu-$d@.socket" ] || [ ! -f "$WORK/units/vhu-$d@.service" ]; then
		not_ok "vhu-$d@.socket and vhu-$d@.service installed in $unitdir"
		continue
	fi
	out=$(cd "$WORK/units" && SYSTEMD_UNIT_PATH="$WORK/units:" systemd-analyze verify --man=no \
		"vhu-$d@test0.socket" "vhu-$d@test0.service" 2>&1)
	if [ -z "$out" ]; then
		ok "systemd-analyze verify vhu-$d@test0.socket vhu-$d@test0.service: clean"
	else
		not_ok "systemd-analyze verify vhu-$d@: warnings" "$out"
	fi
	out=$(systemd-analyze security --offline=true --threshold="${max_exposure[$d]}" \
		"$WORK/units/vhu-$d@.service" 2>&1)
	rc=$?
	level=$(grep -o 'Overall exposure level[^:]*: [0-9.]*' <<<"$out" | awk '{print $NF}')
	svc=$WORK/units/vhu-$d@.service
	missing=""
	for k in NoNewPrivileges=yes PrivateTmp=yes 'SystemCallFilter=@system-service.*' \
		'ProtectSystem=(strict|full)'; do
		grep -qxE "$k" "$svc" || missing="$missing $k"
	done
	# vhu-fs acts as the guest's users: root, with a bounded capability set.
	grep -qE '^(User=|DynamicUser=yes|CapabilityBoundingSet=CAP_)' "$svc" ||
		missing="$missing User=/DynamicUser=/CapabilityBoundingSet="
	if [ "$rc" -eq 0 ] && [ -n "$level" ] && [ -z "$missing" ]; then
		ok "vhu-$d@.service hardened: exposure $level <= ${max_exposure[$d]}/10"
	else
		not_ok "vhu-$d@.service hardening (exposure '$level', max ${max_exposure[$d]})" \
			"missing:$missing" "$(grep -E '^✗' <<<"$out" | head -5)"
	fi
done
if [ -f "$root$prefix/lib/sysusers.d/vhu-blk.conf" ] && [ -f "$root$prefix/lib/tmpfiles.d/vhu-blk.conf" ] &&
	[ -f "$root$prefix/lib/tmpfiles.d/vhu-fs.conf" ] &&
	grep -q '^u vhu-blk ' "$root$prefix/lib/sysusers.d/vhu-blk.conf"; then
	ok "vhu-blk's user (sysusers.d), image and share directories (tmpfiles.d) installed"
else
	not_ok "sysusers.d / tmpfiles.d for vhu-blk"
fi

# listening_pid SOCKET: a process listening at SOCKET within 10 s.
activate() { # NAME SOCKET ARGV...
	local name=$1 sock=$2
	shift 2
	rm -f "$sock"
	systemd-socket-activate -l "$sock" -- "$@" >"$WORK/$name.log" 2>&1 &
	pid=$!
	wait_listening "$sock"
}
stop() { # exit status of $pid after SIGTERM, 124 if it had to be killed
	local rc
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; wait "$pid"; pid=; return 124; }
	wait "$pid"
	rc=$?
	pid=
	return $rc
}
truncate -s 64M "$WORK/disk0.img"
mkdir -p "$WORK/share"
declare -A overrides=([blk]="IMAGE=$WORK/disk0.img" [net]="OPTIONS=--loopback" [rng]="OPTIONS="
	[fs]="SHARED_DIR=$WORK/share")
for d in "${daemons[@]}"; do
	mapfile -t argv < <(python3 "$src/tests/package/unit_cmd.py" "$WORK/units/vhu-$d@.service" test0 ${overrides[$d]})
	sock=$WORK/$d.sock
	if ! activate "$d" "$sock" "${argv[@]}"; then
		not_ok "systemd-socket-activate vhu-$d: socket not listening" "$(cat "$WORK/$d.log")"
		stop
		continue
	fi
	# The first connection makes systemd-socket-activate exec the daemon,
	# which must accept it from the inherited listening socket.
	p1=$(timeout 20 python3 "$src/tests/package/vhost_probe.py" "$sock" 2>&1)
	r1=$?
	io="" r2=0
	if [ "$d" = blk ] && [ $r1 -eq 0 ]; then
		io=$(timeout 60 "$build/bench/vhu-bench" --socket "$sock" --rw write --duration 0.5 \
			--warmup 0 --queue-depth 4 2>&1)
		r2=$?
		io=$(awk '$1 == "requests" && $7 == "0" && $5 > 0 { print $5, "writes" }' <<<"$io")
		[ $r2 -eq 0 ] && [ -n "$io" ] || r2=1
	fi
	p3=$(timeout 20 python3 "$src/tests/package/vhost_probe.py" "$sock" 2>&1)
	r3=$?
	stop
	rs=$?
	if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ $r3 -eq 0 ] && [ $rs -eq 0 ]; then
		ok "vhu-$d socket-activated as its unit says (${argv[*]##*/}): front ends served one after another${io:+, $io done}, exit 0 on SIGTERM"
	else
		not_ok "vhu-$d socket-activated (${argv[*]})" "probe 1 ($r1): $p1" "vhu-bench ($r2): $io" \
			"probe 2 ($r3): $p3" "exit status after SIGTERM: $rs" "log: $(tail -5 "$WORK/$d.log" | tr '\n' '|')"
	fi
done

# vhu-net --peer as vhu-net(1) tells: a second ListenStream= (fd 4) and
# OPTIONS=--peer --fd 4.  Both sides answer, the second one too.
if [[ " ${daemons[*]} " == *" net "* ]]; then
	mapfile -t argv < <(python3 "$src/tests/package/unit_cmd.py" "$WORK/units/vhu-net@.service" test0 \
		"OPTIONS=--peer --fd 4")
	rm -f "$WORK/a.sock" "$WORK/b.sock"
	systemd-socket-activate -l "$WORK/a.sock" -l "$WORK/b.sock" -- "${argv[@]}" >"$WORK/peer.log" 2>&1 &
	pid=$!
	r1=1 r2=1
	if wait_listening "$WORK/a.sock" && wait_listening "$WORK/b.sock"; then
		p1=$(timeout 20 python3 "$src/tests/package/vhost_probe.py" "$WORK/b.sock" 2>&1)
		r1=$?
		p2=$(timeout 20 python3 "$src/tests/package/vhost_probe.py" "$WORK/a.sock" 2>&1)
		r2=$?
	fi
	stop
	rs=$?
	if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ $rs -eq 0 ]; then
		ok "vhu-net --peer socket-activated on two sockets (${argv[*]##*/}): both sides answer, exit 0"
	else
		not_ok "vhu-net --peer on two activated sockets" "b ($r1): ${p1:-}" "a ($r2): ${p2:-}" \
			"exit $rs" "log: $(tail -5 "$WORK/peer.log" | tr '\n' '|')"
	fi
fi
tap_done
