#!/usr/bin/env python3
"""shape.py - the code-shape figures issue 11 tracks, for production C code
(common/, pdp/, dataplane/): files over 1,200 lines, functions over 150
lines, and #include cycles between our own headers and sources. Prints
them; exits 0 (a report, not a gate)."""
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRS = ["common", "pdp", "dataplane"]


def sources():
    for d in DIRS:
        for root, _, files in os.walk(os.path.join(TOP, d)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(root, f), TOP)


def functions(path):
    """(name, first line, length) of each function defined at column 0."""
    lines = open(os.path.join(TOP, path), errors="replace").read().split("\n")
    out, start, name = [], None, None
    for i, line in enumerate(lines):
        if start is None and line == "{" and i > 0:
            # The name is on the line before (or a few before, when the
            # parameters wrap).
            for j in range(i - 1, max(i - 8, -1), -1):
                m = re.match(r"^([a-z_][a-z0-9_]*)\(", lines[j])
                if m:
                    name, start = m.group(1), j
                    break
        elif start is not None and line == "}":
            out.append((name, start + 1, i - start + 1))
            start = None
    return out


def includes(path):
    text = open(os.path.join(TOP, path), errors="replace").read()
    return re.findall(r'^#include "([^"]+)"', text, re.M)


def cycles(files):
    """Module-level cycles: a.c, a.h and a_int.h are one module; a -> b
    when a includes b.h (its own headers aside)."""
    # x_int.h is module x's internal header: part of x.
    mod = lambda p: re.sub(r"_int$", "", os.path.splitext(os.path.basename(p))[0])
    edges = {}
    for p in files:
        a = mod(p)
        for h in includes(p):
            b = mod(h)
            if b != a:
                edges.setdefault(a, set()).add(b)
    found, seen = set(), set()

    def walk(n, stack):
        if n in stack:
            cyc = stack[stack.index(n):]
            k = min(range(len(cyc)), key=lambda i: cyc[i])
            found.add(tuple(cyc[k:] + cyc[:k]))
            return
        if n in seen:
            return
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            walk(m, stack)
        stack.pop()
        seen.add(n)

    for n in sorted(edges):
        walk(n, [])
    return sorted(found)


def main():
    files = list(sources())
    big = [(sum(1 for _ in open(os.path.join(TOP, p), errors="replace")), p)
           for p in files]
    big = sorted((n, p) for n, p in big if n > 1200)
    long_fns = sorted(((n, p, f, l) for p in files if p.endswith(".c")
                       for f, l, n in functions(p) if n > 150), reverse=True)
    cyc = cycles(files)
    print(f"files over 1200 lines: {len(big)}")
    for n, p in reversed(big):
        print(f"  {n:5d} {p}")
    print(f"functions over 150 lines: {len(long_fns)}")
    for n, p, f, l in long_fns:
        print(f"  {n:5d} {f} ({p}:{l})")
    print(f"include cycles: {len(cyc)}")
    for c in cyc:
        print("  " + " -> ".join(c + (c[0],)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
