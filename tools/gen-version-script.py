#!/usr/bin/env python3
"""Write the linker version script of a shared library: exactly the
functions the public headers declare, so that the library's internal
functions (which the modules share, hence not static) stay private.

usage: gen-version-script.py [--prefix vhu_] [--node VHU_0.1] OUT HEADER...
  (libvhu: the defaults; libvhu-frontend: --prefix vhuf_ --node VHUF_0.1)
"""
import re
import sys

args = sys.argv[1:]
prefix, node = "vhu_", "VHU_0.1"
while args and args[0].startswith("--"):
    opt, val = args[0], args[1]
    args = args[2:]
    if opt == "--prefix":
        prefix = val
    elif opt == "--node":
        node = val
    else:
        sys.exit(f"unknown option {opt}")
decl = re.compile(r"\b(" + re.escape(prefix) + r"[a-z0-9_]+)\s*\(")
names = set()
for path in args[1:]:
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # A declaration: an identifier with the prefix followed by "(" outside
    # a macro.
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        names.update(decl.findall(line))
with open(args[0], "w") as out:
    out.write(node + " {\n  global:\n")
    for n in sorted(names):
        out.write(f"    {n};\n")
    out.write("  local:\n    *;\n};\n")
