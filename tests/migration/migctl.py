#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Drive QEMU live migrations over QMP (tests/migration, docs/migration.md).

  migctl.py migrate SRC_QMP DST_QMP URI [--postcopy] [--cancel] [--timeout S]
  migctl.py status QMP          print the VM's run state
  migctl.py quit QMP
  migctl.py rarp-watch IFACE OUT   append the source MAC of every RARP frame
                                   seen on IFACE to OUT (runs until killed)

migrate: precopy by default.  --postcopy turns postcopy-ram on at both ends,
starts the migration and switches to postcopy once RAM is moving (the guest
then runs on the destination while pages are still pulled from the source).
--cancel throttles the migration so it cannot finish, cancels it once RAM
is moving, and checks the source runs on.  Exit status 0 on success; the
migration's statistics are printed as one line.
"""
import json
import socket
import sys
import time


class QMP:
    def __init__(self, path, timeout=30):
        end = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > end:
                    raise
                time.sleep(0.1)
        self.file = self.sock.makefile("rwb")
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.file.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError("%s: %s" % (name, reply["error"].get("desc", reply["error"])))
        return reply["return"]


def fail(msg):
    print("migctl: FAIL: " + msg, flush=True)
    sys.exit(1)


def wait_status(q, want, timeout, what):
    """Poll query-migrate until its status is in `want`; fail on 'failed'."""
    end = time.time() + timeout
    info = {}
    while time.time() < end:
        info = q.cmd("query-migrate")
        st = info.get("status")
        if st in want:
            return info
        if st == "failed":
            fail("%s: migration failed: %s" % (what, info.get("error-desc", info)))
        time.sleep(0.1)
    fail("%s: still %s after %ss" % (what, info.get("status"), timeout))


def ram_moving(q, timeout):
    """Wait until the migration is active and some RAM went over."""
    end = time.time() + timeout
    while time.time() < end:
        info = q.cmd("query-migrate")
        if info.get("status") == "failed":
            fail("migration failed: %s" % info.get("error-desc", info))
        if info.get("status") == "active" and info.get("ram", {}).get("transferred", 0) > (8 << 20):
            return
        time.sleep(0.05)
    fail("migration did not get going")


def migrate(src_path, dst_path, uri, postcopy, cancel, timeout):
    src, dst = QMP(src_path), QMP(dst_path)
    caps = [{"capability": "postcopy-ram", "state": True}] if postcopy else []
    if caps:
        src.cmd("migrate-set-capabilities", capabilities=caps)
        dst.cmd("migrate-set-capabilities", capabilities=caps)
    if cancel:  # slow enough never to finish before we cancel
        src.cmd("migrate-set-parameters", **{"max-bandwidth": 4 << 20})
    start = time.time()
    src.cmd("migrate", uri=uri)
    if cancel:
        ram_moving(src, timeout)
        src.cmd("migrate_cancel")
        wait_status(src, ("cancelled",), timeout, "cancel")
        src.cmd("migrate-set-parameters", **{"max-bandwidth": 0})
        run = src.cmd("query-status")
        if run.get("status") != "running":
            fail("source not running after the cancel: %s" % run)
        print("migctl: cancelled after %.1fs, source %s" % (time.time() - start, run["status"]),
              flush=True)
        return
    if postcopy:
        ram_moving(src, timeout)
        src.cmd("migrate-start-postcopy")
        wait_status(src, ("postcopy-active", "completed"), timeout, "switch to postcopy")
    info = wait_status(src, ("completed",), timeout, "migration")
    # The source is done before the destination finished loading.
    end = time.time() + timeout
    run = dst.cmd("query-status")
    while run.get("status") != "running" and time.time() < end:
        time.sleep(0.05)
        run = dst.cmd("query-status")
    if run.get("status") != "running":
        fail("destination not running: %s" % run)
    ram = info.get("ram", {})
    print("migctl: %s migration completed in %.1fs: total %s ms, downtime %s ms, "
          "%d MiB sent, %s dirty syncs, %s postcopy requests" %
          ("postcopy" if postcopy else "precopy", time.time() - start, info.get("total-time"),
           info.get("downtime"), ram.get("transferred", 0) >> 20, ram.get("dirty-sync-count"),
           ram.get("postcopy-requests", 0)), flush=True)


def rarp_watch(iface, out):
    eth_p_rarp = 0x8035
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(eth_p_rarp))
    s.bind((iface, eth_p_rarp))
    with open(out, "a") as f:
        print("watching", file=f, flush=True)
        while True:
            frame = s.recv(2048)
            f.write(":".join("%02x" % b for b in frame[6:12]) + "\n")
            f.flush()


def main(argv):
    if len(argv) >= 2 and argv[1] == "status":
        print(QMP(argv[2]).cmd("query-status")["status"])
        return 0
    if len(argv) >= 2 and argv[1] == "quit":
        try:
            QMP(argv[2]).cmd("quit")
        except EOFError:
            pass
        return 0
    if len(argv) >= 4 and argv[1] == "rarp-watch":
        rarp_watch(argv[2], argv[3])
        return 0
    if len(argv) >= 5 and argv[1] == "migrate":
        timeout = 180
        if "--timeout" in argv:
            timeout = float(argv[argv.index("--timeout") + 1])
        try:
            migrate(argv[2], argv[3], argv[4], "--postcopy" in argv, "--cancel" in argv, timeout)
        except (OSError, EOFError) as e:
            fail("QMP: %s (a QEMU exited?)" % e)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
