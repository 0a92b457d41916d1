#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Print, one argument per line, the command a systemd template service
would run for INSTANCE: its ExecStart= with %i and the unit's Environment=
expanded as systemd does ($VAR split at blanks, ${VAR} one word), after
the VAR=VALUE overrides given (what /etc/vhu/*/INSTANCE.conf would set).
A stand-in for PID 1 where none runs (tests/package/units.sh).
usage: unit_cmd.py UNIT_FILE INSTANCE [VAR=VALUE...]
"""
import re
import shlex
import sys

unit, inst = sys.argv[1], sys.argv[2]
env, execstart = {}, None
for line in open(unit):
    line = line.strip()
    if line.startswith("Environment="):
        for a in shlex.split(line[len("Environment="):]):
            k, _, v = a.partition("=")
            env[k] = v.replace("%i", inst)
    elif line.startswith("ExecStart="):
        execstart = line[len("ExecStart="):].replace("%i", inst)
for a in sys.argv[3:]:
    k, _, v = a.partition("=")
    env[k] = v
argv = []
for word in shlex.split(execstart):
    m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
    if m:
        argv += env.get(m.group(1), "").split()
        continue
    argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
print("\n".join(argv))
