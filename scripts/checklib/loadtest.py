"""wrk runs (the benchmark suite's and replica_check's figures), and their one judgement: answered with successes."""
import json
import os
import subprocess
import urllib.parse

from .gateway import ROOT
from .net import HOST
from .report import CHECKS

# The share of a path's answers that may be other than a success (timeouts and broken connections included).
MAX_ERROR_SHARE = 0.02


def wrk(url, script, seconds, connections=32, threads=1, env=None, timeout_s=None, redirect_port=None):
    """Runs wrk (a Lua script of scripts/bench/) and returns its report (requests, duration_us, p50_us, p99_us,
    errors, statuses) with `ok` (the 2xx answers), `failed` (every other status, timeout and broken connection), and
    `rps`: successes per second. `redirect_port`: the run goes to that loopback port instead (a mutant)."""
    if redirect_port is not None:
        url = urllib.parse.urlsplit(url)._replace(netloc=f"{HOST}:{redirect_port}").geturl()
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", os.path.join("scripts", "bench", script)]
    if timeout_s:
        command += ["--timeout", f"{timeout_s}s"]
    command.append(url)
    out = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=True).stdout
    line = next(text for text in out.splitlines() if text.startswith("WRK_JSON "))
    report = json.loads(line[len("WRK_JSON "):])
    statuses = report.get("statuses") or {}
    report["ok"] = sum(n for code, n in statuses.items() if code.startswith("2"))
    errors = report.get("errors") or {}
    socket_errors = sum(errors.get(kind, 0) for kind in ("connect", "read", "write", "timeout"))
    report["failed"] = max(0, report["requests"] - report["ok"]) + socket_errors
    report["rps"] = report["ok"] / (report["duration_us"] / 1e6)
    return report


def judge(what, report, checks=None):
    """A failed check unless the run's answers were successes: at least one, and no more than MAX_ERROR_SHARE of
    them anything else. Returns the report."""
    total = report["ok"] + report["failed"]
    share = report["failed"] / total if total else 1.0
    (checks or CHECKS).check(
        f"{what}: answered with successes", report["ok"] > 0 and share <= MAX_ERROR_SHARE,
        f"{report['ok']} of {total} answers 2xx ({share:.1%} not), statuses {report.get('statuses')}, errors {report.get('errors')}",
    )
    return report
