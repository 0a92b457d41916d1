# SPDX-License-Identifier: Apache-2.0
# tests/lib/tap.sh: TAP helpers for the bash tests (the shell side of vt.h).
# Source it from a bash test script:  . "$(dirname "$0")/../lib/tap.sh"
# expect_error and stop_with write scratch files to $WORK (the caller's
# temporary directory).  End the script with tap_done.

n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

# not_ok NAME [DIAGNOSTIC...]: each DIAGNOSTIC is printed as a "# " line.
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for line in "$@"; do
		echo "# $line"
	done
}

# tap_done: print the plan; the status says whether every test passed.
tap_done() {
	echo "1..$n"
	[ "$failed" -eq 0 ]
}

# tap_scratch NAME: WORK = a new scratch directory; at exit the background
# processes whose pids the caller appends to the array `pids` are killed
# and WORK is removed.
tap_scratch() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	pids=()
	trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
}

# meson_opt BUILD_DIR NAME: the value of a meson option of that build
# (prefix, libdir...).
meson_opt() {
	meson introspect --buildoptions "$1" |
		python3 -c "import json,sys; print(next(o['value'] for o in json.load(sys.stdin) if o['name']=='$2'))"
}

# install_destdir BUILD: `meson install` BUILD into $WORK/root (sets root);
# if that fails, a not-ok line and the script ends.
install_destdir() {
	root=$WORK/root
	meson install -C "$1" --destdir "$root" --no-rebuild --quiet >"$WORK/install.log" 2>&1 && return 0
	not_ok "meson install into a DESTDIR" "$(tail -5 "$WORK/install.log" | tr '\n' '|')"
	tap_done
	exit
}

# listening PATH: a unix socket listens at PATH.
listening() {
	awk -v p="$1" '$4 == "00010000" && $8 == p { f = 1 } END { exit !f }' /proc/net/unix
}

# wait_listening PATH: a listening unix socket at PATH within 10 s.
wait_listening() {
	for _ in $(seq 100); do
		listening "$1" && return 0
		sleep 0.1
	done
	return 1
}

# expect_error NAME STATUS PATTERN -- CMD...: CMD exits with STATUS (within
# 10 s) and its stderr matches the extended regex PATTERN.
expect_error() {
	local name=$1 want=$2 pat=$3 rc
	shift 4
	timeout 10 "$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -Eq -- "$pat" "$WORK/err"; then
		ok "$name"
	else
		not_ok "$name" "exit $rc (want $want), stderr: $(head -c 300 "$WORK/err")"
	fi
}

# stop_with SIG NAME CMD ARGS...: start the daemon CMD with ARGS, wait for
# every socket given after -s/--socket-path, send SIG, expect exit 0 within
# 10 s and every socket file removed.
stop_with() {
	local sig=$1 name=$2 pid rc s a socks=() prev=
	shift 2
	for a in "$@"; do
		case "$prev" in -s | --socket-path) socks+=("$a") ;; esac
		prev=$a
	done
	"$@" 2>"$WORK/err-$sig" &
	pid=$!
	for s in "${socks[@]}"; do
		if ! wait_listening "$s"; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			not_ok "$name" "never listened on $s: $(cat "$WORK/err-$sig")"
			return
		fi
	done
	kill "-$sig" "$pid"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		not_ok "$name" "still running 10 s after SIG$sig"
		return
	fi
	wait "$pid"
	rc=$?
	for s in "${socks[@]}"; do
		if listening "$s" || [ -e "$s" ]; then
			not_ok "$name" "$s left behind (listening or not)"
			return
		fi
	done
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name" "exit $rc, stderr: $(cat "$WORK/err-$sig")"
	fi
}
