#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The Debian packages, end to end (TAP):
#  1. dpkg-buildpackage -us -uc -b of a copy of the tree (nocheck: the suite
#     runs on its own), lintian on the result: no error, no warning that
#     docs/install.md ("Lintian") does not list and justify;
#  2. a throw-away system container (systemd-nspawn, volatile overlay over
#     this machine's root, private network) booted with systemd as PID 1:
#     apt install ./*.deb, man pages, units verified where they are
#     installed, a device and a front end built from the -dev packages with
#     gcc and clang;
#  3. the socket units enabled and started as an operator would; the
#     front ends built from libvhu-frontend-dev negotiate with vhu-rng@rng0;
#     then libvirt (libvirtd started by the test, QEMU under TCG as user
#     libvirt-qemu) defines and starts a domain with <disk type='vhostuser'>
#     on vhu-blk@disk0 and vhu-blk@data1 (its /etc/vhu/blk/data1.conf),
#     <interface type='vhostuser'> on vhu-net@port0 (a tap) and a
#     <filesystem> (virtiofs) on vhu-fs@share0; the guest uses them all;
#     the services were started by their sockets, run as their users, wrote
#     the image and the share, and stop cleanly.
# usage: deb.sh SOURCE_ROOT
set -u
src=$(cd "$1" && pwd)
. "$src/tests/lib/tap.sh"
. "$src/tests/e2e/lib.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhu-deb.XXXXXX")
chmod 755 "$WORK" # libvirt's QEMU (user libvirt-qemu) reads the kernel here
E2E_WORK=$WORK
# The container's root: a bind mount of / in a directory of its own that
# cleanup only unmounts and rmdirs (never rm -r: it is the host's root).
rootbind=$(mktemp -d "${TMPDIR:-/tmp}/vhu-deb-root.XXXXXX")
ns_pid= leader=
cleanup() {
	local rc=$?
	if [ -n "$leader" ]; then
		nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1
		for _ in $(seq 100); do kill -0 "$ns_pid" 2>/dev/null || break; sleep 0.1; done
	fi
	[ -n "$ns_pid" ] && kill -KILL "$ns_pid" 2>/dev/null && wait "$ns_pid" 2>/dev/null
	mountpoint -q "$rootbind" && { umount "$rootbind" || umount -l "$rootbind"; }
	mountpoint -q "$rootbind" || rmdir "$rootbind"
	if [ "${VHU_E2E_KEEP:-0}" = 1 ] || [ "$failed" -ne 0 ]; then
		echo "# work dir kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	return $rc
}
trap cleanup EXIT
diag() { sed 's/^/# /' "$@"; }
ver=$(sed -n '1s/.*(\(.*\)).*/\1/p' "$src/debian/changelog")
arch=$(dpkg --print-architecture)

missing=""
for t in dpkg-buildpackage dh lintian systemd-nspawn libvirtd virsh qemu-system-x86_64 scdoc; do
	command -v $t >/dev/null || missing="$missing $t"
done
if [ -n "$missing" ]; then
	not_ok "tools present" "missing:$missing (scripts/deps test installs them)"
	tap_done
	exit
fi

# ---- 1. build and lintian ---------------------------------------------
tree=$WORK/libvhu-$ver
mkdir -p "$tree"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$src" && git ls-files -co --exclude-standard -z | grep -zv '^build' |
		tar --null -cf - -T -) | tar -xf - -C "$tree"
else
	tar -C "$src" --exclude='./build*' -cf - . | tar -xf - -C "$tree"
fi
start=$(date +%s)
(cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b) \
	>"$WORK/build.log" 2>&1
rc=$?
debs=$(cd "$WORK" && ls ./*_"$ver"_*.deb 2>/dev/null | grep -v -- -dbgsym_)
want="libvhu0 libvhu-dev libvhu-frontend0 libvhu-frontend-dev vhu-blk vhu-net vhu-rng vhu-fs"
got=$(for d in $debs; do basename "$d" | cut -d_ -f1; done | sort | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$got" = "$(tr ' ' '\n' <<<"$want" | sort | tr '\n' ' ')" ]; then
	ok "dpkg-buildpackage -us -uc -b: $got($(($(date +%s) - start)) s)"
else
	not_ok "dpkg-buildpackage (exit $rc), packages: $got" "$(tail -30 "$WORK/build.log" | tr '\n' '|')"
	tap_done
	exit
fi
gensym=$(grep -c '^+ ' <(sed -n '/dpkg-gensymbols: warning/,/^[^ +-@]/p' "$WORK/build.log"))
[ "$gensym" -gt 0 ] && echo "# dpkg-gensymbols: $gensym symbol(s) newer than debian/libvhu0.symbols (tools/abi-baseline, docs/abi.md)"

lintian --pedantic -I -E "$WORK/libvhu_${ver}_$arch.changes" >"$WORK/lintian.log" 2>&1
# Tags docs/install.md's "Lintian" table justifies (first column).
allowed=$(sed -n '/^## Lintian/,/^## /p' "$src/docs/install.md" | sed -n 's/^| `\([a-z0-9-]*\)`.*/\1/p')
bad=$(grep -E '^[EW]: ' "$WORK/lintian.log" | while read -r _ _ tag _; do
	grep -qxF "$tag" <<<"$allowed" || echo "$tag"
done | sort -u)
if [ -z "$bad" ] && ! grep -q '^E: ' "$WORK/lintian.log"; then
	ok "lintian --pedantic: no error, warnings only those docs/install.md justifies ($(grep -c '^[WIP]: ' "$WORK/lintian.log") W/I/P tags)"
else
	not_ok "lintian: unexpected tags: $bad" "$(grep -E '^[EW]: ' "$WORK/lintian.log" | head -20 | tr '\n' '|')"
fi
grep -E '^[IP]: ' "$WORK/lintian.log" | diag

# ---- 2. a system container with systemd as PID 1 ------------------------
mount --bind / "$rootbind" || {
	not_ok "bind-mount / for the container"
	tap_done
	exit
}
# The container sees this machine's installed packages through a volatile
# overlay (nothing it writes reaches the host) and has its own network
# namespace: vhu-net's tap lives there.
systemd-nspawn -D "$rootbind" --volatile=overlay --machine="vhu-pkg-$$" -q --register=no \
	--keep-unit --link-journal=no --private-network --bind="$WORK" \
	-b systemd.unit=basic.target >"$WORK/container.log" 2>&1 &
ns_pid=$!
end=$((SECONDS + 120))
while [ $SECONDS -lt $end ]; do
	leader=$(pgrep -P "$ns_pid" -x systemd | head -1)
	[ -n "$leader" ] && nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null |
		grep -qE '^(running|degraded)$' && break
	kill -0 "$ns_pid" 2>/dev/null || break
	sleep 0.1
done
C() { nsenter -t "$leader" -a "$@"; }
if [ -n "$leader" ] && C systemctl is-system-running 2>/dev/null | grep -qE '^(running|degraded)$'; then
	ok "container booted (systemd-nspawn, systemd as PID 1: $(C systemctl is-system-running))"
else
	leader=
	not_ok "container did not boot" "$(tail -20 "$WORK/container.log" | tr '\n' '|')"
	tap_done
	exit
fi

if C sh -c "cd '$WORK' && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends $(echo $debs)" >"$WORK/apt.log" 2>&1; then
	ok "apt install ./*.deb in the container"
else
	not_ok "apt install ./*.deb" "$(tail -10 "$WORK/apt.log" | tr '\n' '|')"
	tap_done
	exit
fi

out=$(C sh -c 'man -w vhu-blk vhu-net vhu-rng vhu-fs libvhu vhu_daemon_new vhuf_connect && MANWIDTH=80 man vhu-blk | grep -c "socket-activated"' 2>&1)
if [ $? -eq 0 ]; then
	ok "man vhu-blk, vhu-net, vhu-rng, vhu-fs, libvhu, vhu_daemon_new, vhuf_connect installed: $(head -1 <<<"$out")"
else
	not_ok "man pages after apt install" "$out"
fi
out=$(C systemd-analyze verify vhu-blk@disk0.socket vhu-blk@disk0.service vhu-net@port0.socket \
	vhu-net@port0.service vhu-rng@rng0.socket vhu-rng@rng0.service vhu-fs@share0.socket \
	vhu-fs@share0.service 2>&1)
if [ -z "$out" ]; then
	ok "systemd-analyze verify of the installed units: clean"
else
	not_ok "systemd-analyze verify of the installed units" "$out"
fi

# The -dev packages: a device (libvhu-dev) and a front end
# (libvhu-frontend-dev) built from the installed files with each compiler.
# Into $WORK, the one host directory the container sees: its / is a
# non-recursive bind of the host's /, so a source tree on another mount
# (CI's checkout) or under /tmp (a tmpfs in the container) is not there.
cp "$src/examples/rng_minimal.c" "$src/tests/package/frontend_probe.c" \
	"$src/tests/package/vhost_probe.py" "$WORK/"
for cc in gcc clang; do
	out=$(C sh -c "cd '$WORK' && $cc -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
		rng_minimal.c -o dev-$cc \$(pkg-config --cflags --libs libvhu) || exit 1
		./dev-$cc --socket-path dev-$cc.sock >dev-$cc.log 2>&1 &
		p=\$!
		for i in \$(seq 50); do [ -S dev-$cc.sock ] && break; sleep 0.1; done
		python3 vhost_probe.py dev-$cc.sock; rc=\$?
		{ kill \$p; wait \$p; } 2>/dev/null; exit \$rc" 2>&1)
	if [ $? -eq 0 ]; then
		ok "$cc: a device built with pkg-config libvhu (libvhu-dev) serves: $out"
	else
		not_ok "$cc: device built against libvhu-dev" "$out"
	fi
	C sh -c "cd '$WORK' && $cc -std=gnu11 -Wall -Wextra -Werror frontend_probe.c -o fe-$cc \
		\$(pkg-config --cflags --libs libvhu-frontend)" >"$WORK/fe-$cc.log" 2>&1
done

# ---- 3. the operator's part: sockets, libvirt, a guest -------------------
C sh -c 'truncate -s 64M /var/lib/vhu/blk/disk0.img /var/lib/vhu/blk/other.img &&
	chown vhu-blk: /var/lib/vhu/blk/disk0.img /var/lib/vhu/blk/other.img &&
	mkdir -p /etc/vhu/blk && printf "%s\n" "# a disk whose image is not named after it" \
		"IMAGE=/var/lib/vhu/blk/other.img" "OPTIONS=--serial pkgdata1 --num-queues 2" \
		>/etc/vhu/blk/data1.conf &&
	mkdir /var/lib/vhu/fs/share0 && echo "from the host" >/var/lib/vhu/fs/share0/hello'
units="vhu-blk@disk0.socket vhu-blk@data1.socket vhu-net@port0.socket vhu-rng@rng0.socket vhu-fs@share0.socket"
out=$(C systemctl enable --now $units 2>&1)
rc=$?
socks=$(C stat -c '%n %A %U:%G' /run/vhu/blk/disk0.sock /run/vhu/blk/data1.sock /run/vhu/net/port0.sock \
	/run/vhu/rng/rng0.sock /run/vhu/fs/share0.sock 2>&1)
active=$(C systemctl is-active vhu-blk@disk0.service vhu-blk@data1.service vhu-net@port0.service \
	vhu-rng@rng0.service vhu-fs@share0.service | sort -u | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$(grep -c ' srw-rw---- root:kvm$' <<<"$socks")" = 5 ] && [ "$active" = "inactive " ]; then
	ok "systemctl enable --now $units: sockets 0660 root:kvm, no service started yet"
else
	not_ok "socket units" "$out" "$socks" "services: $active"
fi

# The front ends built from libvhu-frontend-dev (above) negotiate with
# vhu-rng@rng0, which their first connection starts.
for cc in gcc clang; do
	out=$(C sh -c "cd '$WORK' && ./fe-$cc /run/vhu/rng/rng0.sock" 2>&1)
	rc=$?
	libs=$(C ldd "$WORK/fe-$cc" | awk '$1 ~ /^libvhu/ { printf "%s ", $3 }')
	case "$libs" in
	*/lib/*/libvhu-frontend.so.0*/lib/*/libvhu.so.0* | */lib/*/libvhu.so.0*/lib/*/libvhu-frontend.so.0*) ;;
	*) rc=1 out="$out; loads: $libs" ;;
	esac
	if [ $rc -eq 0 ]; then
		ok "$cc: a front end built with pkg-config libvhu-frontend (libvhu-frontend-dev, runs on $libs) $out with the socket-activated vhu-rng@rng0"
	else
		not_ok "$cc: front end built against libvhu-frontend-dev" \
			"$(head -5 "$WORK/fe-$cc.log" | tr '\n' '|')" "$out"
	fi
done

e2e_need_tools >/dev/null 2>&1
e2e_fetch_kernel
sed -e 's/@HOST@/10.203.121.1/g; s/@ME@/10.203.121.2/g; s/@SERIAL@/pkgdata1/g' \
	"$src/tests/package/guest_libvirt.sh" >"$WORK/guest.sh"
e2e_build_initramfs "$WORK/initrd" "$WORK/guest.sh" virtio_pci virtio_blk virtio_net virtiofs
cp "$E2E_KERNEL" "$WORK/vmlinuz"
chmod 644 "$WORK/vmlinuz" "$WORK/initrd"

# libvirt as Debian's libvirt-daemon-system sets it up (QEMU as
# libvirt-qemu, a member of kvm), without a security driver, cgroups or
# per-VM mount namespaces, which a container does not offer.
C sh -c 'getent group libvirt-qemu >/dev/null || addgroup --quiet --system libvirt-qemu
	getent passwd libvirt-qemu >/dev/null || adduser --quiet --system --ingroup kvm \
		--no-create-home --home /var/lib/libvirt --disabled-password libvirt-qemu
	adduser --quiet libvirt-qemu libvirt-qemu
	mkdir -p /etc/libvirt && cat >/etc/libvirt/qemu.conf <<EOF
user = "libvirt-qemu"
group = "libvirt-qemu"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
	systemd-run --quiet --unit=vhu-test-libvirtd -p Type=notify /usr/sbin/libvirtd' \
	>"$WORK/libvirtd.log" 2>&1
sed -e "s#@KERNEL@#$WORK/vmlinuz#; s#@INITRD@#$WORK/initrd#; s#@CONSOLE@#$WORK/console.log#" \
	"$src/tests/package/domain.xml" >"$WORK/domain.xml"
virsh="virsh -q -c qemu:///system"
out=$(C $virsh define "$WORK/domain.xml" 2>&1 && C $virsh start vhu-package-test 2>&1)
if [ $? -ne 0 ]; then
	not_ok "virsh define + start" "$out" "$(C journalctl -q --no-pager -u vhu-test-libvirtd | tail -5 | tr '\n' '|')"
	tap_done
	exit
fi
ok "libvirt defined and started the domain (docs/libvirt.md's XML)"
# The tap appears when vhu-net@port0 is activated by QEMU's connection.
qemu_user=
end=$((SECONDS + 120))
while [ $SECONDS -lt $end ]; do
	[ -z "$qemu_user" ] && qemu_user=$(C ps -o user= -C qemu-system-x86_64 | head -1)
	C ip link show port0 >/dev/null 2>&1 && break
	sleep 0.2
done
C sh -c 'ip addr add 10.203.121.1/24 dev port0 && ip link set port0 up'
# The guest powers off when its script is done (TCG: ~10 s idle, more
# under load); the domain is then shut off.
end=$((SECONDS + ${VHU_E2E_TIMEOUT:-240}))
while [ $SECONDS -lt $end ]; do
	[ -z "$qemu_user" ] && qemu_user=$(C ps -o user= -C qemu-system-x86_64 | head -1)
	grep -aq 'VHU-E2E-RESULT:' "$WORK/console.log" 2>/dev/null &&
		[ "$(C $virsh domstate vhu-package-test 2>/dev/null)" = "shut off" ] && break
	sleep 0.5
done
if grep -aq 'VHU-E2E-RESULT: PASS' "$WORK/console.log"; then
	ok "the guest used both disks, the network and the shared directory (QEMU ran as $qemu_user)"
	grep -a '^guest:' "$WORK/console.log" | diag
else
	not_ok "guest did not pass (domain state $(C $virsh domstate vhu-package-test 2>&1))" \
		"$(grep -av 'No IRQ' "$WORK/console.log" | tail -15 | tr '\n' '|')" \
		"$(C sh -c 'tail -5 /var/log/libvirt/qemu/vhu-package-test.log' | tr '\n' '|')"
fi
[ "$qemu_user" = libvirt-qemu ] && ok "QEMU ran as libvirt-qemu: the sockets' group kvm let it in" ||
	not_ok "QEMU ran as '$qemu_user', not libvirt-qemu"

want_user=([0]="vhu-blk@disk0.service vhu-blk" [1]="vhu-blk@data1.service vhu-blk"
	[2]="vhu-net@port0.service vhu-net" [3]="vhu-rng@rng0.service vhu-rng"
	[4]="vhu-fs@share0.service root")
bad=""
for e in "${want_user[@]}"; do
	set -- $e
	pid=$(C systemctl show -P MainPID "$1")
	user=$(C ps -o user= -p "$pid" 2>/dev/null)
	trig=$(C systemctl show -P TriggeredBy "$1")
	[ "$pid" != 0 ] && [ "$user" = "$2" ] && [ -n "$trig" ] || bad="$bad $1(pid $pid user '$user' want '$2')"
done
if [ -z "$bad" ]; then
	ok "each service was started by its socket and runs as its user (vhu-blk; dynamic vhu-net, vhu-rng; vhu-fs: root, confined)"
else
	not_ok "services after the guest" "$bad"
fi
img=$(C head -c 32 /var/lib/vhu/blk/disk0.img)
if [ "$img" = "VHU-PKG-LIBVIRT block 0000 00000" ]; then
	ok "the guest's writes are in /var/lib/vhu/blk/disk0.img"
else
	not_ok "disk0.img does not hold the guest's pattern: '$img'"
fi
fsw=$(C cat /var/lib/vhu/fs/share0/from-guest 2>&1)
if [ "$fsw" = "written by the guest" ]; then
	ok "the guest's file is in /var/lib/vhu/fs/share0"
else
	not_ok "share0/from-guest: '$fsw'"
fi
out=$(C sh -c 'systemctl stop vhu-blk@disk0.service vhu-blk@data1.service vhu-net@port0.service \
		vhu-rng@rng0.service vhu-fs@share0.service 2>/dev/null
	for u in vhu-blk@disk0 vhu-blk@data1 vhu-net@port0 vhu-rng@rng0 vhu-fs@share0; do
		echo "$u $(systemctl show -P ExecMainStatus $u.service) $(systemctl is-active $u.socket)"
	done')
if [ "$(awk '$2 == 0 && $3 == "active"' <<<"$out" | wc -l)" = 5 ]; then
	ok "systemctl stop: every daemon exited 0 and its socket listens on for the next VM"
else
	not_ok "stopping the services" "$(tr '\n' '|' <<<"$out")"
	C journalctl -q --no-pager -u 'vhu-*' | tail -20 | diag
fi
tap_done
