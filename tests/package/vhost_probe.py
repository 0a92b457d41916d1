#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Connect to a vhost-user back end's socket as a front end would, ask for
its virtio features (GET_FEATURES) and protocol features
(GET_PROTOCOL_FEATURES), print them, and exit 0 if the replies are
well-formed and VIRTIO_F_VERSION_1 is offered.  usage: vhost_probe.py SOCKET
"""
import socket
import struct
import sys

GET_FEATURES, GET_PROTOCOL_FEATURES = 1, 15
VERSION_1 = 1 << 32
REPLY = 0x4


def ask(s, req):
    s.sendall(struct.pack("<III", req, 0x1, 0))
    hdr = b""
    while len(hdr) < 12:
        d = s.recv(12 - len(hdr))
        if not d:
            raise SystemExit("probe: connection closed by the back end")
        hdr += d
    r, flags, size = struct.unpack("<III", hdr)
    body = s.recv(size, socket.MSG_WAITALL)
    if r != req or not flags & REPLY or size != 8 or len(body) != 8:
        raise SystemExit("probe: bad reply to %d: req %d flags %#x size %d" % (req, r, flags, size))
    return struct.unpack("<Q", body)[0]


s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
f = ask(s, GET_FEATURES)
pf = ask(s, GET_PROTOCOL_FEATURES)
print("features %#x protocol features %#x" % (f, pf))
sys.exit(0 if f & VERSION_1 else 1)
