#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the section 3 manual page of one public header from its comments.

The header comments are the API's reference (every public call is
documented where it is declared), so the page is generated from them and
cannot drift: NAME and the header's own description come from its leading
comment, SYNOPSIS lists the functions, DESCRIPTION gives every commented
declaration (types, constants, functions) in header order with its comment.

usage: gen-man3.py HEADER OUT_PAGE VERSION
       gen-man3.py --links DIR HEADER...
The page is named after the header: include/vhu/daemon.h -> vhu_daemon.h.3.
--links writes DIR/FUNCTION.3 (".so man3/vhu_HEADER.3") for every function
the headers declare, so that `man FUNCTION` opens the header's page (run at
install time: the list of functions is only known once the headers are;
a relative DIR is taken under $MESON_INSTALL_DESTDIR_PREFIX).
"""
import os
import re
import sys

FUNC_RE = re.compile(r"\b((?:vhu|vhuf)_[a-z0-9_]+)\s*\(")


def split_blocks(text):
    """Yield ('comment', text) and ('code', text) blocks of the header,
    with preprocessor lines, include guards and extern "C" dropped.  A code
    block ends at a blank line, at a top-level comment, or where the braces
    it opened close."""
    lines = text.splitlines()
    i, n = 0, len(lines)
    code = []
    depth = 0

    def flush():
        nonlocal code
        if any(s.strip() for s in code):
            yield_list.append(("code", "\n".join(code).rstrip()))
        code = []

    yield_list = []
    while i < n:
        line = lines[i]
        s = line.strip()
        if depth == 0 and s.startswith("/*"):
            flush()
            buf = [line]
            while "*/" not in lines[i]:
                i += 1
                buf.append(lines[i])
            i += 1
            rest = buf[-1].split("*/", 1)[1].strip()
            comment = "\n".join(buf)
            if rest:  # "/* x */ int f(void);" on one line
                yield_list.append(("comment", comment.rsplit("*/", 1)[0] + "*/"))
                code.append(rest)
                continue
            yield_list.append(("comment", comment))
            continue
        i += 1
        if depth == 0 and (s.startswith("#") or s in ('extern "C" {', "}") or not s):
            flush()
            continue
        code.append(line)
        depth += line.count("{") - line.count("}")
        if depth == 0 and s.endswith(";"):
            # a declaration ends; the next one may follow without a blank
            # line and shares the comment above (e.g. start/start_fd).
            pass
    flush()
    return yield_list


def comment_text(c):
    """The prose of a /* */ comment, leading stars removed."""
    body = c.strip()
    body = re.sub(r"^/\*+", "", body)
    body = re.sub(r"\*+/$", "", body)
    out = []
    for line in body.splitlines():
        line = re.sub(r"^\s*\* ?", "", line)
        out.append(line.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def esc(s):
    """Escape text for troff."""
    s = s.replace("\\", "\\e")
    s = s.replace("-", "\\-")
    return s


def esc_line(s):
    s = esc(s)
    if s.startswith(".") or s.startswith("'"):
        s = "\\&" + s
    return s


def prose(lines):
    """Comment lines to troff paragraphs; '-' list items and indented
    lines kept as they are."""
    out = []
    for line in lines:
        if not line.strip():
            out.append(".PP")
            continue
        if re.match(r"^\s+\S", line) or re.match(r"^\s*[-*] ", line):
            out.append(".br")
        out.append(esc_line(line.strip() if not line.startswith("  ") else line))
    return out


def page_name(header):
    return "vhu_%s.3" % os.path.basename(header)


def parse(header):
    """(intro lines, [(comment lines, code)], [function names])"""
    text = open(header).read()

    blocks = split_blocks(text)
    # Drop the SPDX line; the first remaining comment describes the header.
    blocks = [b for b in blocks if not (b[0] == "comment" and "SPDX-License-Identifier" in b[1])]
    intro = []
    if blocks and blocks[0][0] == "comment":
        intro = comment_text(blocks.pop(0)[1])

    funcs = []
    entries = []  # (comment lines, code)
    pending = None
    for kind, body in blocks:
        if kind == "comment":
            if pending is not None:
                entries.append((pending, None))
            pending = comment_text(body)
            continue
        for f in FUNC_RE.findall(re.sub(r"/\*.*?\*/", "", body, flags=re.S)):
            if f not in funcs and not re.search(r"\(\s*\*\s*" + f, body):
                funcs.append(f)
        entries.append((pending, body))
        pending = None
    if pending:
        entries.append((pending, None))
    # Function names: only those declared at top level (not struct members).
    funcs = [f for f in funcs if re.search(r"^[^\s/].*\b" + f + r"\s*\(", text, flags=re.M)]
    return intro, entries, funcs


def write_links(out_dir, headers):
    os.makedirs(out_dir, exist_ok=True)
    for h in headers:
        for fn in parse(h)[2]:
            with open(os.path.join(out_dir, fn + ".3"), "w") as f:
                f.write(".so man3/%s\n" % page_name(h))


def main():
    args = sys.argv[1:]
    if args and args[0] == "--links":
        out = args[1]
        # As a meson install script: DIR is relative to the (DESTDIR) prefix.
        root = os.environ.get("MESON_INSTALL_DESTDIR_PREFIX")
        if root and not os.path.isabs(out):
            out = os.path.join(root, out)
        write_links(out, args[2:])
        return
    header, out_path, version = args
    base = os.path.basename(header)
    stem = os.path.splitext(base)[0]
    name = page_name(header)[: -len(".3")]
    include = "vhu/" + base
    intro, entries, funcs = parse(header)
    summary = " ".join(intro).split(". ")[0].rstrip(".") if intro else stem

    o = []
    o.append('.\\" Generated by tools/gen-man3.py from include/vhu/%s; do not edit.' % base)
    o.append('.TH "%s" 3 "" "libvhu %s" "libvhu Programmer\'s Manual"' % (esc(name).upper(), version))
    o.append(".SH NAME")
    o.append("%s \\- %s" % (esc(name), esc(summary)))
    o.append(".SH SYNOPSIS")
    o.append(".nf")
    o.append(".B #include <%s>" % include)
    o.append(".PP")
    if funcs:
        for f in funcs:
            o.append(".BR %s ()" % esc(f))
    o.append(".fi")
    if "frontend" in stem:
        o.append(".PP")
        o.append("Link with \\fI\\-lvhu\\-frontend \\-lvhu\\fP (pkg\\-config: \\fIlibvhu\\-frontend\\fP).")
    else:
        o.append(".PP")
        o.append("Link with \\fI\\-lvhu\\fP (pkg\\-config: \\fIlibvhu\\fP).")
    o.append(".SH DESCRIPTION")
    o += prose(intro)
    for comment, code in entries:
        o.append(".PP")
        if code:
            o.append(".EX")
            for line in code.splitlines():
                o.append(esc_line(line.replace("\t", "        ")))
            o.append(".EE")
        if comment:
            o.append(".RS 4")
            o += prose(comment)
            o.append(".RE")
    o.append(".SH SEE ALSO")
    o.append(".BR libvhu (3)")
    o.append(".PP")
    o.append("docs/writing\\-a\\-device.md and docs/architecture.md in the libvhu sources.")
    with open(out_path, "w") as f:
        f.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
