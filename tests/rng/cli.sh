#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# vhu-rng command line (TAP): usage errors exit non-zero with a message,
# --print-capabilities prints valid JSON (checked with jq), SIGINT/SIGTERM
# stop the daemon cleanly.
# Usage: cli.sh PATH/TO/vhu-rng
set -u
RNG=${1:?usage: cli.sh PATH/TO/vhu-rng}
WORK=$(mktemp -d /tmp/vhu-rng-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../lib/tap.sh"

# --help / --version
if "$RNG" --help >"$WORK/out" 2>&1 && grep -q '^Usage: vhu-rng' "$WORK/out" &&
	grep -q -- '--socket-path' "$WORK/out" && grep -q -- '--fd' "$WORK/out"; then
	ok "--help"
else
	not_ok "--help" "$(head -c 300 "$WORK/out")"
fi
if out=$("$RNG" --version) && [[ $out =~ ^vhu-rng\ [0-9]+\.[0-9]+ ]]; then
	ok "--version"
else
	not_ok "--version" "got: $out"
fi

# --print-capabilities: valid JSON, type "rng"; other options are ignored.
if ! command -v jq >/dev/null; then
	not_ok "--print-capabilities" "jq not installed"
else
	for args in "--print-capabilities" "--bogus --fd x --print-capabilities"; do
		# shellcheck disable=SC2086
		if "$RNG" $args >"$WORK/caps" 2>"$WORK/err" && jq -e '.type == "rng"' "$WORK/caps" >/dev/null &&
			[ ! -s "$WORK/err" ]; then
			ok "--print-capabilities ($args)"
		else
			not_ok "--print-capabilities ($args)" "$(cat "$WORK/caps" "$WORK/err")"
		fi
	done
fi

# Usage errors: status 2 and a message naming the problem.
expect_error "no arguments" 2 "one of --socket-path or --fd is required" -- "$RNG"
expect_error "unknown long option" 2 "unknown option '--bogus'" -- "$RNG" --bogus
expect_error "unknown short option" 2 "unknown option '-x'" -- "$RNG" -x
expect_error "--socket-path without value" 2 "option '--socket-path' needs a value" -- \
	"$RNG" --socket-path
expect_error "--fd without value" 2 "needs a value" -- "$RNG" --fd
expect_error "empty --socket-path" 2 "empty path" -- "$RNG" --socket-path=
expect_error "--fd not a number" 2 "invalid --fd 'abc'" -- "$RNG" --fd abc
expect_error "--fd negative" 2 "invalid --fd '-1'" -- "$RNG" --fd -1
expect_error "--socket-path and --fd" 2 "exclude each other" -- "$RNG" --socket-path "$WORK/s" --fd 0
expect_error "--max-bytes-per-sec 0" 2 "invalid value '0' for --max-bytes-per-sec" -- \
	"$RNG" --socket-path "$WORK/s" --max-bytes-per-sec 0
expect_error "--max-bytes-per-sec junk" 2 "invalid value '12x'" -- \
	"$RNG" --socket-path "$WORK/s" --max-bytes-per-sec 12x
expect_error "--max-connections overflow" 2 "invalid value" -- \
	"$RNG" --socket-path "$WORK/s" --max-connections 99999999999999999999
expect_error "extra argument" 2 "unexpected argument 'extra'" -- "$RNG" --socket-path "$WORK/s" extra

# Run-time errors: status 1 (an --fd is checked when serving starts).
expect_error "--fd not a socket" 1 "--fd 0: not a usable stream socket: not a socket" -- "$RNG" --fd 0 </dev/null
expect_error "--fd not open" 1 "--fd 97: not a usable stream socket: Bad file descriptor" -- "$RNG" --fd 97
expect_error "--fd a datagram socket" 1 "not a stream socket" -- \
	python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
os.set_inheritable(s.fileno(), True)
os.execv(sys.argv[1], [sys.argv[1], "--fd", str(s.fileno())])' "$RNG"
expect_error "--source missing" 1 "/nonexistent/rng: No such file or directory" -- \
	"$RNG" --socket-path "$WORK/s" --source /nonexistent/rng
expect_error "--source a directory" 1 "Is a directory" -- "$RNG" --socket-path "$WORK/s" --source /
expect_error "socket dir missing" 1 "cannot listen on '$WORK/nodir/s'" -- "$RNG" --socket-path "$WORK/nodir/s"

stop_with TERM "SIGTERM stops cleanly" "$RNG" --socket-path "$WORK/sock-TERM"
stop_with INT "SIGINT stops cleanly" "$RNG" --socket-path "$WORK/sock-INT"

tap_done
