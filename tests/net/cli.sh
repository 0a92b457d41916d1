#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# vhu-net command line (TAP): usage errors exit 2 with a message naming the
# problem, run-time errors exit 1, --print-capabilities prints JSON of type
# "net", SIGTERM/SIGINT stop the daemon (both sockets in --peer mode).
# Usage: cli.sh PATH/TO/vhu-net
set -u
NET=${1:?usage: cli.sh PATH/TO/vhu-net}
WORK=$(mktemp -d /tmp/vhu-net-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../lib/tap.sh"

if "$NET" --help >"$WORK/out" 2>&1 && grep -q '^Usage: vhu-net' "$WORK/out" &&
	grep -q -- '--socket-path' "$WORK/out" && grep -q -- '--peer' "$WORK/out" &&
	grep -q -- '--tap' "$WORK/out" && grep -q -- '--loopback' "$WORK/out"; then
	ok "--help"
else
	not_ok "--help" "$(head -c 300 "$WORK/out")"
fi
if out=$("$NET" --version) && [[ $out =~ ^vhu-net\ [0-9]+\.[0-9]+ ]]; then
	ok "--version"
else
	not_ok "--version" "got: $out"
fi
if command -v jq >/dev/null; then
	if "$NET" --print-capabilities >"$WORK/caps" 2>"$WORK/err" &&
		jq -e '.type == "net"' "$WORK/caps" >/dev/null && [ ! -s "$WORK/err" ]; then
		ok "--print-capabilities"
	else
		not_ok "--print-capabilities" "$(cat "$WORK/caps" "$WORK/err")"
	fi
else
	grep -q '"type": "net"' <("$NET" --print-capabilities) && ok "--print-capabilities" ||
		not_ok "--print-capabilities"
fi

S="$WORK/s"
# Usage errors: status 2.
expect_error "no arguments" 2 "no back side" -- "$NET"
expect_error "no socket" 2 "give one --socket-path" -- "$NET" --loopback
expect_error "two back sides" 2 "choose one back side" -- "$NET" --loopback --tap t0 -s "$S"
expect_error "--peer with one socket" 2 "--peer needs two sockets" -- "$NET" --peer -s "$S"
expect_error "--peer same path twice" 2 "must differ" -- "$NET" --peer -s "$S" -s "$S"
expect_error "two sockets without --peer" 2 "give one --socket-path" -- \
	"$NET" --loopback -s "$S" -s "$S.2"
expect_error "three sockets" 2 "too many sockets" -- "$NET" --peer -s a -s b -s c
expect_error "unknown option" 2 "unknown option '--bogus'" -- "$NET" --bogus
expect_error "option without value" 2 "needs a value" -- "$NET" --loopback --socket-path
expect_error "empty socket path" 2 "empty path" -- "$NET" --loopback --socket-path=
expect_error "--queues 0" 2 "invalid --queues '0'" -- "$NET" --loopback -s "$S" --queues 0
expect_error "--queues 32" 2 "invalid --queues '32'" -- "$NET" --loopback -s "$S" --queues 32
expect_error "--queues junk" 2 "invalid --queues '2x'" -- "$NET" --loopback -s "$S" --queues 2x
expect_error "--fd junk" 2 "invalid --fd 'abc'" -- "$NET" --loopback --fd abc
expect_error "--mac bad" 2 "invalid --mac" -- "$NET" --loopback -s "$S" --mac 52:54:00:zz:00:01
expect_error "--mac multicast" 2 "invalid --mac" -- "$NET" --loopback -s "$S" --mac 01:00:5e:00:00:01
expect_error "--mtu too small" 2 "invalid --mtu '10'" -- "$NET" --loopback -s "$S" --mtu 10
expect_error "--poll junk" 2 "invalid --poll" -- "$NET" --loopback -s "$S" --poll=abc
expect_error "--tap name too long" 2 "invalid --tap" -- "$NET" --tap abcdefghijklmnopqrstuvwxyz -s "$S"
expect_error "extra argument" 2 "unexpected argument 'extra'" -- "$NET" --loopback -s "$S" extra

# Run-time errors: status 1.
expect_error "--fd not a socket" 1 "--fd 0: not a usable stream socket" -- \
	"$NET" --loopback --fd 0 </dev/null
expect_error "--fd not open" 1 "--fd 97: not a usable stream socket" -- "$NET" --loopback --fd 97
expect_error "--tap on a non-tap interface" 1 "cannot open tap 'lo'" -- \
	"$NET" --tap lo --socket-path "$WORK/s"
expect_error "socket dir missing" 1 "cannot listen on '$WORK/nodir/s'" -- \
	"$NET" --loopback --socket-path "$WORK/nodir/s"

# --fd: an inherited listening socket is served; a raw GET_FEATURES over it
# answers with the virtio-net features (MRG_RXBUF, CTRL_VQ, VERSION_1).
if python3 - "$NET" "$WORK/fd.sock" >"$WORK/fd.out" 2>&1 <<'PY'
import os, signal, socket, struct, subprocess, sys
net, path = sys.argv[1], sys.argv[2]
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ls.bind(path)
ls.listen(1)
os.set_inheritable(ls.fileno(), True)
p = subprocess.Popen([net, "--loopback", "--fd", str(ls.fileno())], pass_fds=[ls.fileno()])
ls.close()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.settimeout(10)
c.connect(path)
c.sendall(struct.pack("<III", 1, 1, 0))  # GET_FEATURES, version 1
reply = b""
while len(reply) < 20:
    d = c.recv(20 - len(reply))
    if not d:
        break
    reply += d
req, flags, size, feat = struct.unpack("<IIIQ", reply)
c.close()
p.send_signal(signal.SIGTERM)
rc = p.wait(timeout=10)
want = (1 << 15) | (1 << 17) | (1 << 32)
print("features %#x rc %d" % (feat, rc))
sys.exit(0 if req == 1 and size == 8 and feat & want == want and rc == 0 else 1)
PY
then
	ok "--fd: serves an inherited listening socket ($(tail -1 "$WORK/fd.out"))"
else
	not_ok "--fd: serves an inherited listening socket" "$(tr '\n' ' ' <"$WORK/fd.out")"
fi

stop_with TERM "SIGTERM stops --loopback" "$NET" --loopback -s "$WORK/lo.sock"
stop_with INT "SIGINT stops --peer (both sockets)" "$NET" --peer -s "$WORK/a.sock" -s "$WORK/b.sock"
stop_with TERM "SIGTERM stops --loopback --queues 4 --poll" "$NET" --loopback -q 4 --poll -s "$WORK/mq.sock"

tap_done
