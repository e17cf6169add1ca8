#!/usr/bin/env python3
"""Fails when a build log holds a compiler warning in the project's own code (Sources/, Tests/, Benchmarks/).

CI builds from nothing, so every file is compiled and every warning is in the log. Warnings inside dependencies
(.build/checkouts) are not the project's to fix and are not counted.

    swift build --build-tests 2>&1 | tee artifacts/build.log
    python3 scripts/warnings_check.py artifacts/build.log
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklib import Checks  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARNING = re.compile(r"^(?P<path>/\S+?\.swift):(?P<line>\d+):(?P<column>\d+): warning: (?P<text>.*)$")


def main():
    checks = Checks()
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "artifacts", "build.log")
    with open(path, encoding="utf-8", errors="replace") as log:
        lines = log.read().splitlines()
    compiled = sum(1 for line in lines if re.search(r"Compiling \S+ ", line))
    checks.check("the build log shows a build (files compiled)", compiled > 0, f"{compiled} compile steps in {path}")
    own = set()
    for line in lines:
        match = WARNING.match(line.strip())
        if not match:
            continue
        relative = os.path.relpath(match["path"], ROOT)
        if relative.split(os.sep)[0] in ("Sources", "Tests", "Benchmarks"):
            own.add(f"{relative}:{match['line']}: {match['text']}")
    checks.check("no compiler warning in the project's own code", not own, "; ".join(sorted(own)[:20]) + (f" (+{len(own) - 20} more)" if len(own) > 20 else ""))
    return checks.report("warnings check")


if __name__ == "__main__":
    sys.exit(main())
