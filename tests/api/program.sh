#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# libvhu's program helper (include/vhu/program.h) through tests/api/progt
# (TAP): --help built from the option table, --version, the capabilities
# JSON, usage errors (status 2) from the helper and from the device's
# callbacks, a bad option table (status 1), several sockets each served by
# its own daemon, one daemon stopping stops all, socket files removed
# unless replaced, a signal that came before serving, listen failures,
# a default socket, a connected --fd, -v and the log prefix.
# usage: program.sh PATH/TO/progt PATH/TO/examples/client
set -u
PROG=${1:?usage: program.sh PROGT CLIENT} CLIENT=${2:?}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhu-api-prog.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../lib/tap.sh"

out=$("$PROG" --help)
if [[ $out == "Usage: progt [OPTIONS] [ARGS]"* ]] && grep -q -- '-f, --flag' <<<"$out" &&
	grep -q -- '-n, --num N' <<<"$out" && grep -q -- '--opt\[=X\]' <<<"$out" &&
	grep -q '^Test options:$' <<<"$out" && grep -q '^ *second line of help$' <<<"$out" &&
	grep -q 'up to 3 sockets' <<<"$out" && grep -q -- '--print-capabilities' <<<"$out" &&
	[ "$(tail -1 <<<"$out")" = "The footer." ]; then
	ok "--help lists the helper's and the device's options"
else
	not_ok "--help" "$out"
fi
out=$("$PROG" -V)
[ "$out" = "progt 1.2.3 (libvhu 0.1.0)" ] && ok "--version: $out" || not_ok "--version" "$out"
if "$PROG" --bogus --num 99 --print-capabilities >"$WORK/caps" 2>"$WORK/err" &&
	jq -e '.type == "test" and .features == ["a", "b"]' "$WORK/caps" >/dev/null && [ ! -s "$WORK/err" ]; then
	ok "--print-capabilities wins over every other argument"
else
	not_ok "--print-capabilities" "$(cat "$WORK/caps" "$WORK/err")"
fi

S=$WORK/s
expect_error "no socket" 2 "one of --socket-path or --fd is required" -- "$PROG"
expect_error "device value refused, generic message" 2 "invalid --num '11'" -- "$PROG" -s "$S" --num 11
expect_error "device check's own message" 2 "--opt needs --flag" -- "$PROG" -s "$S" --opt
expect_error "missing value" 2 "option '-n' needs a value" -- "$PROG" -s "$S" -n
expect_error "value for a flag" 2 "option '--flag' takes no value" -- "$PROG" -s "$S" --flag=1
expect_error "unknown short option in a bundle" 2 "unknown option '-x'" -- "$PROG" -s "$S" -fx
expect_error "four sockets" 2 "too many sockets \(at most 3\)" -- "$PROG" -s a -s b --fd 0 -s c
expect_error "same path twice" 2 "must differ \('a' twice\)" -- "$PROG" -s a -s a
expect_error "same fd twice" 2 "--fd numbers must differ" -- "$PROG" --fd 0 --fd 0
expect_error "positional refused" 2 "invalid argument 'bad'" -- "$PROG" -s "$S" okay bad
expect_error "help hint" 2 "Try 'progt --help'" -- "$PROG" -s "$S" bad
expect_error "option letter the helper owns" 1 "option table: -v is taken" -- \
	env PROGT_BAD_TABLE=1 "$PROG" -s "$S"
expect_error "second socket cannot listen" 1 "cannot listen on '$WORK/nodir/b'" -- \
	"$PROG" -s "$WORK/a" -s "$WORK/nodir/b"
[ -e "$WORK/a" ] && not_ok "first socket left behind" || ok "no socket file left after a listen failure"

# Parsed values reach the program; options and arguments in any order.
expect_error "unknown long option" 2 "unknown option '--print-capabilities-not'" -- "$PROG" -s "$S" --print-capabilities-not
out=$(PROGT_PRINT=1 PROGT_SIGTERM_EARLY=1 "$PROG" ok1 -f --num=7 --opt=z -vv ok2 -s "$WORK/p" 2>"$WORK/err")
rc=$?
if [ "$out" = "flag=1 num=7 opt=z args=ok1 ok2 sockets=1 verbose=2 [$WORK/p]" ] && [ $rc -eq 0 ] &&
	[ ! -e "$WORK/p" ]; then
	ok "values parsed; a SIGTERM raised before serving stops it cleanly (exit 0)"
else
	not_ok "parsed values / early SIGTERM" "out: $out" "exit $rc" "$(cat "$WORK/err")"
fi
if grep -q "^progt: listening on $WORK/p$" "$WORK/err" && ! grep -q "libvhu:" "$WORK/err"; then
	ok "-vv: info lines, prefixed with the program's name"
else
	not_ok "-vv log lines" "$(cat "$WORK/err")"
fi
out=$(PROGT_PRINT=1 PROGT_SIGTERM_EARLY=1 PROGT_DEFAULT="$WORK/def" "$PROG" 2>&1)
[[ $out == *"sockets=1 verbose=0 [$WORK/def]" ]] && ok "check adds a default socket" ||
	not_ok "default socket" "$out"

# Three sockets, three daemons: each serves its own front end.
"$PROG" -s "$WORK/a" -s "$WORK/b" -s "$WORK/c" >"$WORK/out" 2>"$WORK/err" &
pid=$!
good=0
for s in a b c; do
	wait_listening "$WORK/$s" && [[ $("$CLIENT" "$WORK/$s" 1 r:0) == "0 64 78787878"* ]] &&
		good=$((good + 1))
done
[ $good -eq 3 ] && ok "three sockets served by three daemons" || not_ok "three sockets" "$good of 3"
# A socket file someone replaced is theirs: not removed at exit.
rm -f "$WORK/b" && echo theirs >"$WORK/b"
kill -TERM $pid
wait $pid
rc=$?
if [ $rc -eq 0 ] && [ ! -e "$WORK/a" ] && [ ! -e "$WORK/c" ] && [ "$(cat "$WORK/b")" = theirs ]; then
	ok "SIGTERM: exit 0, own socket files removed, a replaced one kept"
else
	not_ok "SIGTERM with three sockets" "exit $rc" "$(ls "$WORK")" "$(cat "$WORK/err")"
fi
rm -f "$WORK/b"

# One daemon stops by itself (max_connections): the others stop with it.
PROGT_MAXCONN=1 "$PROG" -s "$WORK/a" -s "$WORK/b" >"$WORK/out" 2>"$WORK/err" &
pid=$!
wait_listening "$WORK/a" && wait_listening "$WORK/b" && "$CLIENT" "$WORK/b" 1 r:0 >/dev/null &&
	"$CLIENT" "$WORK/a" 1 r:0 >/dev/null
for _ in $(seq 100); do
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
if kill -0 $pid 2>/dev/null; then
	kill -KILL $pid
	not_ok "one daemon done: the program exits" "still running 10 s later"
else
	wait $pid
	rc=$?
	[ $rc -eq 0 ] && [ ! -e "$WORK/a" ] && [ ! -e "$WORK/b" ] &&
		ok "one daemon done (max_connections): all stop, exit 0, sockets removed" ||
		not_ok "max_connections stop" "exit $rc" "$(ls "$WORK")"
fi

# A connected --fd (one end of a socketpair) is served once; then it exits.
if python3 - "$PROG" >"$WORK/fd.out" 2>&1 <<'PY'
import os, socket, struct, subprocess, sys
a, b = socket.socketpair()
os.set_inheritable(b.fileno(), True)
p = subprocess.Popen([sys.argv[1], "--fd", str(b.fileno())], pass_fds=[b.fileno()],
                     stdout=subprocess.DEVNULL)
b.close()
a.settimeout(10)
a.sendall(struct.pack("<III", 1, 1, 0))  # GET_FEATURES
reply = b""
while len(reply) < 20:
    d = a.recv(20 - len(reply))
    if not d:
        break
    reply += d
a.close()
rc = p.wait(timeout=10)
req, flags, size, feat = struct.unpack("<IIIQ", reply)
print("features %#x exit %d" % (feat, rc))
sys.exit(0 if req == 1 and feat & (1 << 32) and rc == 0 else 1)
PY
then
	ok "connected --fd served once, then exit 0 ($(tail -1 "$WORK/fd.out"))"
else
	not_ok "connected --fd" "$(tr '\n' ' ' <"$WORK/fd.out")"
fi

stop_with INT "SIGINT stops it" "$PROG" -s "$WORK/int.sock"
tap_done
