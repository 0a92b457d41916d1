#!/usr/bin/env python3
"""Write the linker version script of libvhu.so: exactly the functions the
public headers declare, so that the library's internal functions (which the
modules share, hence not static) stay private.

usage: gen-version-script.py OUT HEADER...
"""
import re
import sys

names = set()
for path in sys.argv[2:]:
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # A declaration: a vhu_ identifier followed by "(" outside a macro.
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        names.update(re.findall(r"\b(vhu_[a-z0-9_]+)\s*\(", line))
with open(sys.argv[1], "w") as out:
    out.write("VHU_0.1 {\n  global:\n")
    for n in sorted(names):
        out.write(f"    {n};\n")
    out.write("  local:\n    *;\n};\n")
