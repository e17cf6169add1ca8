#!/usr/bin/env python3
"""The async frame of every async function in a binary, largest first: what a task allocates for it on each call
and keeps while it runs (and, as slabs, until the task ends: a connection's task keeps its largest chain for the
connection's life). Read from each "async function pointer" symbol (`...Tu`): a relative offset, then the frame size.

    python3 scripts/frame_sizes.py .build/release/gateway [FILTER] [--top N]

FILTER keeps symbols whose mangled name contains it (`Gateway`, `Onboarding`, `Hummingbird`). Needs `nm`, `readelf`
and `swift demangle`. See docs/performance.md, "memory".
"""
import argparse
import struct
import subprocess


def frames(binary):
    symbols = []
    for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].endswith("Tu"):
            symbols.append((int(parts[0], 16), parts[2]))
    loads = []
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            offset, vaddr, _, filesize = (int(x, 16) for x in parts[1:5])
            loads.append((vaddr, offset, filesize))
    with open(binary, "rb") as file:
        data = file.read()
    found = []
    for address, name in symbols:
        for vaddr, offset, filesize in loads:
            if vaddr <= address < vaddr + filesize:
                _, size = struct.unpack_from("<iI", data, offset + address - vaddr)
                found.append((size, name))
                break
    demangled = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(n for _, n in found),
                               capture_output=True, text=True, check=True).stdout.splitlines()
    return sorted(((size, name, text) for (size, name), text in zip(found, demangled)), reverse=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("filter", nargs="?", default="")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    shown = [row for row in frames(args.binary) if args.filter in row[1]][: args.top]
    for size, _, text in shown:
        print(f"{size:7,d}  {text.removeprefix('async function pointer to ')}")


if __name__ == "__main__":
    main()
