# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# tests/e2e/lib.sh: shell library for QEMU end-to-end tests of libvhu devices.
# Source it from a bash test script:  . "$(dirname "$0")/lib.sh"
#
# A test starts a vhu-* daemon on the host, boots a Debian kernel with a tiny
# busybox initramfs in QEMU (TCG by default) with a vhost-user device wired
# to the daemon, runs a guest shell script, and reads the verdict the guest
# prints on its serial console.  See docs/e2e.md.
#
# Functions (all return non-zero or exit through e2e_fail on error):
#
#   e2e_init NAME
#       Make a scratch dir $E2E_WORK, install an EXIT trap that stops every
#       process started with e2e_spawn and removes the dir (kept when
#       VHU_E2E_KEEP=1 or the test failed).
#   e2e_need_tools
#       Install what is missing (qemu-system-x86, busybox-static, cpio,
#       binutils) with apt-get, non-interactively.
#   e2e_fetch_kernel
#       Download and unpack the Debian kernel package linux-image-amd64
#       depends on (or $VHU_E2E_KERNEL_PKG) into the cache dir
#       ($VHU_E2E_CACHE, default /var/cache/vhu-e2e), once, under a lock.
#       Sets E2E_KERNEL (vmlinuz), E2E_KVER, E2E_MODDIR (lib/modules/KVER).
#   e2e_build_initramfs OUT GUEST_SCRIPT [MODULE...]
#       Write a cpio initramfs: static busybox, MODULE .ko files and their
#       dependencies (resolved from each module's modinfo "depends=", loaded
#       in order; built-in ones skipped), GUEST_SCRIPT as /guest.sh, and an
#       /init that mounts proc/sys/dev/tmp, loads the modules, runs
#       /guest.sh, prints "VHU-E2E-RESULT: PASS" (exit 0) or
#       "VHU-E2E-RESULT: FAIL rc=N", and powers off.  Needs e2e_fetch_kernel.
#       Extra files: E2E_INITRAMFS_FILES="HOST[:GUEST] ..." (GUEST default
#       /HOST's basename; static binaries only, the guest has no libc).
#   e2e_dynamic_files PROGRAM...
#       Print HOST:GUEST pairs for E2E_INITRAMFS_FILES that bring each
#       dynamically linked PROGRAM (a path or a command name) into the
#       initramfs as /bin/NAME, with the shared libraries and the program
#       interpreter ldd lists, at the paths ldd names.
#   e2e_run_qemu LOG TIMEOUT [QEMU ARG...]
#       Boot $E2E_KERNEL with $E2E_INITRD (set it, or pass -initrd yourself)
#       on q35 with shared memfd guest memory ($VHU_E2E_MEM, default 256M, as
#       vhost-user needs), serial console to LOG, hard-killed after TIMEOUT
#       seconds.  Extra arguments (chardevs, devices) are appended.  Returns
#       0 if the guest printed the PASS marker, 1 otherwise (LOG tail printed).
#       Acceleration: $VHU_E2E_ACCEL (default tcg; e.g. kvm:tcg).
#   e2e_wait_socket PATH [TIMEOUT]
#       Wait (default 10 s) until a unix socket is listening at PATH
#       (read from /proc/net/unix: no probe connection is made).
#   e2e_spawn VAR LOG CMD [ARG...]
#       Start CMD in the background, stdout+stderr to LOG, store its pid in
#       VAR; e2e's EXIT trap kills it if still running.
#   e2e_stop PID [TIMEOUT]
#       SIGTERM PID, wait up to TIMEOUT (default 10) s; returns its exit
#       status, or 124 after SIGKILL when it did not stop.
#   e2e_fail MSG... / e2e_log MSG...
#       Print "e2e: FAIL: MSG" and exit 1 / print a progress line (stderr).
#
# Guest side: /guest.sh runs under busybox sh with /proc, /sys, /dev
# (devtmpfs) and /tmp (tmpfs) mounted and the modules loaded.  It reports by
# its exit status; anything it prints lands in LOG.

E2E_MARKER="VHU-E2E-RESULT:"
E2E_PIDS=()
E2E_FAILED=0
E2E_CACHE="${VHU_E2E_CACHE:-/var/cache/vhu-e2e}"

e2e_log() {
	echo "e2e: $*" >&2
}

e2e_fail() {
	E2E_FAILED=1
	echo "e2e: FAIL: $*" >&2
	exit 1
}

e2e_cleanup() {
	local rc=$? pid
	for pid in "${E2E_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ -n "${E2E_WORK:-}" ] && [ -d "$E2E_WORK" ]; then
		if [ "${VHU_E2E_KEEP:-0}" = 1 ] || [ "$rc" != 0 ] || [ "$E2E_FAILED" = 1 ]; then
			e2e_log "work dir kept: $E2E_WORK"
		else
			rm -rf "$E2E_WORK"
		fi
	fi
	return "$rc"
}

e2e_init() {
	local name="${1:-e2e}"
	E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhu-e2e-$name.XXXXXX") || e2e_fail "mktemp failed"
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# Install Debian packages whose command is missing: pairs "command package".
e2e_apt_install_missing() {
	local missing=() cmd pkg
	while [ $# -ge 2 ]; do
		cmd=$1 pkg=$2
		shift 2
		[ -e "$cmd" ] || command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	e2e_log "installing ${missing[*]}"
	command -v apt-get >/dev/null || e2e_fail "missing ${missing[*]} and no apt-get to install it"
	export DEBIAN_FRONTEND=noninteractive
	# A lock: several e2e tests may start in parallel; dpkg allows one.
	mkdir -p "$E2E_CACHE" || e2e_fail "cannot create $E2E_CACHE"
	(
		flock -w 600 9 || exit 1
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
			{ apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
	) 9>"$E2E_CACHE/.apt.lock" || e2e_fail "apt-get install ${missing[*]} failed"
}

e2e_need_tools() {
	mkdir -p "$E2E_CACHE" || e2e_fail "cannot create cache dir $E2E_CACHE (set VHU_E2E_CACHE)"
	e2e_apt_install_missing qemu-system-x86_64 qemu-system-x86 /bin/busybox busybox-static \
		cpio cpio strings binutils readelf binutils timeout coreutils flock util-linux
	# The initramfs has no libc: busybox must be the static build (the
	# "busybox" package is dynamic; busybox-static replaces it).
	if ! file_is_static /bin/busybox; then
		e2e_log "/bin/busybox is dynamic, installing busybox-static"
		(
			flock -w 600 9 || exit 1
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2
		) 9>"$E2E_CACHE/.apt.lock" || e2e_fail "apt-get install busybox-static failed"
	fi
}

# True if $1 is an ELF without a program interpreter (statically linked).
file_is_static() {
	[ -x "$1" ] || return 1
	! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

e2e_kernel_pkg() {
	if [ -n "${VHU_E2E_KERNEL_PKG:-}" ]; then
		echo "$VHU_E2E_KERNEL_PKG"
		return
	fi
	LC_ALL=C apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

e2e_fetch_kernel() {
	local pkg dir
	pkg=$(e2e_kernel_pkg)
	if [ -z "$pkg" ]; then
		# Maybe the package lists were never fetched.
		apt-get update -q >&2 || true
		pkg=$(e2e_kernel_pkg)
	fi
	[ -n "$pkg" ] || e2e_fail "cannot find the Debian kernel package (apt-cache depends linux-image-amd64); set VHU_E2E_KERNEL_PKG"
	dir="$E2E_CACHE/$pkg"
	mkdir -p "$E2E_CACHE" || e2e_fail "cannot create cache dir $E2E_CACHE (set VHU_E2E_CACHE)"
	if [ ! -e "$dir/.done" ]; then
		(
			flock -w 600 9 || exit 1
			[ -e "$dir/.done" ] && exit 0
			e2e_log "fetching kernel $pkg into $dir"
			rm -rf "$dir" "$dir.tmp" "$E2E_CACHE/dl" && mkdir -p "$E2E_CACHE/dl" || exit 1
			# apt drops to the _apt user to download; let it write here.
			chmod 777 "$E2E_CACHE/dl"
			(cd "$E2E_CACHE/dl" && apt-get download -q "$pkg" >&2) ||
				(apt-get update -q >&2 && cd "$E2E_CACHE/dl" && apt-get download -q "$pkg" >&2) ||
				exit 1
			dpkg-deb -x "$E2E_CACHE"/dl/*.deb "$dir.tmp" || exit 1
			rm -rf "$E2E_CACHE/dl"
			mv "$dir.tmp" "$dir" && touch "$dir/.done"
		) 9>"$E2E_CACHE/.kernel.lock" || e2e_fail "could not download/unpack kernel package $pkg"
	fi
	E2E_KERNEL=$(find "$dir/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)
	[ -f "$E2E_KERNEL" ] || e2e_fail "no vmlinuz in $dir/boot"
	E2E_KVER=${E2E_KERNEL##*/vmlinuz-}
	E2E_MODDIR="$dir/lib/modules/$E2E_KVER"
	[ -d "$E2E_MODDIR" ] || e2e_fail "no module dir $E2E_MODDIR"
}

# Module name -> .ko path (names normalised: '-' == '_').
e2e_module_path() {
	local name=${1//-/_} idx="$E2E_MODDIR/.vhu-index"
	if [ ! -s "$idx" ]; then
		find "$E2E_MODDIR/kernel" -name '*.ko*' |
			awk '{ n = $0; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n); print n, $0 }' \
				>"$idx.$$" && mv "$idx.$$" "$idx"
	fi
	awk -v n="$name" '$1 == n { print $2; exit }' "$idx"
}

e2e_module_builtin() {
	local name=${1//-/_}
	sed 's,.*/,,; s,\.ko$,,; s,-,_,g' "$E2E_MODDIR/modules.builtin" 2>/dev/null | grep -qx "$name"
}

# Dependencies of a .ko file from its .modinfo "depends=" string.
e2e_module_deps() {
	strings -a "$1" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '
}

# Print the .ko files needed for modules "$@", dependencies first, once each.
e2e_resolve_modules() {
	local -A seen=()
	local kos=()
	_e2e_visit() {
		local name=${1//-/_} path dep
		[ -n "${seen[$name]:-}" ] && return 0
		seen[$name]=1
		path=$(e2e_module_path "$name")
		if [ -z "$path" ]; then
			e2e_module_builtin "$name" && return 0
			echo "e2e: kernel module $name not found in $E2E_MODDIR" >&2
			return 1
		fi
		case "$path" in
		*.ko) ;;
		*) echo "e2e: compressed module $path not supported" >&2; return 1 ;;
		esac
		for dep in $(e2e_module_deps "$path"); do
			_e2e_visit "$dep" || return 1
		done
		kos+=("$path")
	}
	local m
	for m in "$@"; do
		_e2e_visit "$m" || return 1
	done
	printf '%s\n' "${kos[@]}"
}

e2e_build_initramfs() {
	local out=$1 script=$2 root ko list
	shift 2
	[ -n "${E2E_MODDIR:-}" ] || e2e_fail "e2e_build_initramfs: call e2e_fetch_kernel first"
	[ -f "$script" ] || e2e_fail "guest script $script not found"
	file_is_static /bin/busybox || e2e_fail "/bin/busybox is not static (install busybox-static)"
	root=$(mktemp -d "${E2E_WORK:-/tmp}/initramfs.XXXXXX") || return 1
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules} || return 1
	cp /bin/busybox "$root/bin/busybox" || return 1
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
	done
	list=$(e2e_resolve_modules "$@") || e2e_fail "cannot resolve kernel modules: $*"
	: >"$root/modules.list"
	for ko in $list; do
		cp "$ko" "$root/lib/modules/" || return 1
		basename "$ko" >>"$root/modules.list"
	done
	cp "$script" "$root/guest.sh" || return 1
	local spec src dst
	for spec in ${E2E_INITRAMFS_FILES:-}; do
		src=${spec%%:*}
		dst=${spec#*:}
		[ "$dst" = "$spec" ] && dst=/$(basename "$src")
		if ! mkdir -p "$root/$(dirname "$dst")" || ! cp -a "$src" "$root/$dst"; then
			e2e_fail "cannot copy $src into the initramfs"
		fi
	done
	cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
for m in $(cat /modules.list); do
	insmod /lib/modules/$m || echo "VHU-E2E: insmod $m failed"
done
echo "VHU-E2E: guest script start"
sh /guest.sh
rc=$?
if [ $rc -eq 0 ]; then
	echo "VHU-E2E-RESULT: PASS"
else
	echo "VHU-E2E-RESULT: FAIL rc=$rc"
fi
sync
poweroff -f
EOF
	chmod 755 "$root/init" "$root/guest.sh"
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out" ||
		e2e_fail "cpio failed"
	rm -rf "$root"
}

e2e_dynamic_files() {
	local prog bin lib
	for prog in "$@"; do
		bin=$(command -v "$prog") || e2e_fail "no program $prog"
		echo "$(readlink -f "$bin"):/bin/$(basename "$bin")"
		# "libfoo.so.1 => /lib/.../libfoo.so.1 (0x...)" and the interpreter
		# "/lib64/ld-linux-x86-64.so.2 (0x...)"; copied resolved (no symlinks).
		LC_ALL=C ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
			while read -r lib; do
				echo "$(readlink -f "$lib"):$lib"
			done
	done | sort -u
}

e2e_run_qemu() {
	local log=$1 tmo=$2 mem=${VHU_E2E_MEM:-256M} rc start
	shift 2
	[ -n "${E2E_KERNEL:-}" ] || e2e_fail "e2e_run_qemu: call e2e_fetch_kernel first"
	local initrd=()
	[ -n "${E2E_INITRD:-}" ] && initrd=(-initrd "$E2E_INITRD")
	: >"$log"
	start=$(date +%s.%N)
	timeout -k 5 "$tmo" qemu-system-x86_64 \
		-machine "q35,accel=${VHU_E2E_ACCEL:-tcg},memory-backend=mem" \
		-object "memory-backend-memfd,id=mem,size=$mem,share=on" -m "$mem" \
		-smp 1 -nodefaults -no-user-config -display none -no-reboot \
		-serial "file:$log" \
		-kernel "$E2E_KERNEL" "${initrd[@]}" \
		-append "console=ttyS0 quiet panic=-1 ${VHU_E2E_APPEND:-}" \
		"$@" </dev/null >"$log.qemu" 2>&1
	rc=$?
	E2E_QEMU_SECONDS=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		e2e_log "QEMU timed out after ${tmo}s"
	elif [ $rc -ne 0 ]; then
		e2e_log "QEMU exited with status $rc"
	fi
	if grep -aq "$E2E_MARKER PASS" "$log"; then
		e2e_log "guest passed (QEMU ran ${E2E_QEMU_SECONDS}s)"
		return 0
	fi
	e2e_log "guest did not pass; QEMU stderr:"
	sed 's/^/  qemu: /' "$log.qemu" >&2
	e2e_log "console (last 60 lines of $log):"
	tail -n 60 "$log" | sed 's/^/  guest: /' >&2
	return 1
}

e2e_wait_socket() {
	local path=$1 tmo=${2:-10} i
	for ((i = 0; i < tmo * 10; i++)); do
		# /proc/net/unix: Flags 00010000 = __SO_ACCEPTCON (listening).
		if [ -S "$path" ] && awk -v p="$path" '$4 == "00010000" && $8 == p { f = 1 } END { exit !f }' /proc/net/unix; then
			return 0
		fi
		sleep 0.1
	done
	e2e_log "no listening socket at $path after ${tmo}s"
	return 1
}

e2e_spawn() {
	local var=$1 log=$2
	shift 2
	"$@" >"$log" 2>&1 </dev/null &
	local pid=$!
	E2E_PIDS+=("$pid")
	printf -v "$var" '%s' "$pid"
}

e2e_stop() {
	local pid=$1 tmo=${2:-10} i rc
	kill -TERM "$pid" 2>/dev/null || { wait "$pid"; return $?; }
	for ((i = 0; i < tmo * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid"
	rc=$?
	return $rc
}
