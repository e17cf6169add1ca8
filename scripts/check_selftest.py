#!/usr/bin/env python3
"""Mutation testing of the checks themselves: each check script runs once against a deliberately broken target (a
mutant) and must fail, that is exit non-zero through its report, not by crashing. A check that survives its mutant
cannot fail on the thing it claims to prove. Prints a table (check, mutant, exit code, verdict, what it caught) and
exits non-zero if any check survived, crashed, exited non-zero without a failed check (a usage error), or ran out of
time, or if a mutant did not actually change its target.

    python3 scripts/check_selftest.py --binary .build/debug/gateway [--release-binary .build/release/gateway]
                                      [--only deploy_check,image_check,…] [--list]

The mutants (each the fastest one that reaches the part of its check that matters):

- deploy_check: the Dockerfile without its `COPY migrations …` line; and with the `COPY docs/openapi.yaml …` line
  turned into a comment, so the words are still in the file (`--dockerfile`); .env.example without one of the
  contract's settings (`--env-example`).
- image_check: the Dockerfile without `COPY migrations …`: the runtime tree its COPY lines make lacks the migrations,
  so the binary must fail to start in it (`--dockerfile`, `--start-only`: with the release binary when given).
- trace_check: the gateway's tracing pointed at nothing (OTEL_EXPORTER_OTLP_ENDPOINT at a closed port; `--quick
  --gateway-env`).
- monitoring_check: deploy/prometheus/alerts.yml with one alert reading a metric the gateway does not export
  (`--alerts`).
- reliability_check phase B: MagniFinance reached through a proxy that sends every AddPartner twice (`--phase b
  --kills 3 --tenants-b 20 --mutant double-addpartner`).
- proxy_check: nginx run with the shipped config less `proxy_set_header X-Forwarded-For` (an `nginx` first on PATH
  that edits the config it is given, then runs the real one).
- events_check: the gateway signing its events with another secret than the check's (a wrapper of the binary).
- walkthrough_check: README.md whose pre-existing Wrapp customer supplies credentials straight after the create, as the
  README once said, without logging in and a refresh first (the block that does both is gone): the `PUT` answers
  `409 provider_user_unknown` (`--readme`).
- and scripts/dockerfile_tree.py's own unit test (which must pass).

Logs are kept in artifacts/selftest/.
"""
import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

from checklib import ROOT, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable or "python3"


def mutate(source, target, edit):
    """Writes `edit(text of source)` to `target`; the mutant must differ from the original."""
    original = open(source).read()
    mutated = edit(original)
    if mutated == original:
        raise AssertionError(f"the mutant of {os.path.relpath(source, ROOT)} is the original")
    with open(target, "w") as f:
        f.write(mutated)
    return target


def drop_instruction(prefix):
    """Removes the Dockerfile instruction starting with `prefix` (with its continuation lines)."""
    def edit(text):
        lines, out, dropping = text.splitlines(keepends=True), [], False
        for line in lines:
            if not dropping and line.startswith(prefix):
                dropping = line.rstrip().endswith("\\")
                continue
            if dropping:
                dropping = line.rstrip().endswith("\\")
                continue
            out.append(line)
        return "".join(out)
    return edit


def comment_instruction(prefix):
    return lambda text: re.sub(rf"^{re.escape(prefix)}", "# " + prefix, text, count=1, flags=re.M)


def executable(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def tool_shims(work, binary, gateway_wrapper=None, nginx_edit=None):
    """A folder to put first on PATH: `swift build --show-bin-path` names a folder whose `gateway` is the binary (or
    a wrapper of it), so scripts that find the binary that way get it without running SwiftPM; other `swift`
    commands, and `nginx` (less what `nginx_edit` removes from the config it is given), run the real tools."""
    shims = os.path.join(work, "shims")
    bin_dir = os.path.join(work, "bin")
    os.makedirs(shims)
    os.makedirs(bin_dir)
    target = os.path.join(bin_dir, "gateway")
    if gateway_wrapper:
        executable(target, gateway_wrapper)
    else:
        os.symlink(os.path.abspath(binary), target)
    real_swift = shutil.which("swift") or "swift"
    executable(os.path.join(shims, "swift"), f"""#!/bin/sh
if [ "$1" = build ] && [ "$2" = --show-bin-path ] && [ $# -eq 2 ]; then echo {bin_dir}; exit 0; fi
exec {real_swift} "$@"
""")
    if nginx_edit:
        real_nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        executable(os.path.join(shims, "nginx"), f"""#!{PYTHON}
import os, re, sys
args = sys.argv[1:]
if "-c" in args:
    path = args[args.index("-c") + 1]
    text = open(path).read()
    mutated = re.sub({nginx_edit!r}, "", text)
    marker = path + ".mutated"
    if mutated != text:
        open(path, "w").write(mutated)
        open(marker, "w").close()
    elif not os.path.exists(marker):
        sys.exit("selftest nginx shim: the mutant's pattern is not in " + path)
os.execv({real_nginx!r}, [{real_nginx!r}] + args)
""")
    return shims


def mutants(args, work):
    """(check, mutant, command, environment) of every mutant; built lazily so --only skips the others' setup."""
    dockerfile = os.path.join(ROOT, "Dockerfile")
    image_binary = args.release_binary or args.binary
    found = []

    def add(check, mutant, build):
        found.append((check, mutant, build))

    add("deploy_check", "Dockerfile without `COPY migrations …`", lambda: (
        [PYTHON, os.path.join(HERE, "deploy_check.py"), "--dockerfile",
         mutate(dockerfile, os.path.join(work, "Dockerfile.no-migrations"), drop_instruction("COPY migrations"))], None))
    add("deploy_check", "Dockerfile with `COPY docs/openapi.yaml …` commented out", lambda: (
        [PYTHON, os.path.join(HERE, "deploy_check.py"), "--dockerfile",
         mutate(dockerfile, os.path.join(work, "Dockerfile.openapi-comment"), comment_instruction("COPY docs/openapi.yaml"))],
        None))
    add("deploy_check", ".env.example without `GATEWAY_ENCRYPTION_KEY=`", lambda: (
        [PYTHON, os.path.join(HERE, "deploy_check.py"), "--env-example",
         mutate(os.path.join(ROOT, ".env.example"), os.path.join(work, "env.example"),
                lambda text: re.sub(r"(?m)^GATEWAY_ENCRYPTION_KEY=.*\n", "", text))], None))
    add("image_check", "Dockerfile without `COPY migrations …`: the binary started in the tree its COPY lines make", lambda: (
        [PYTHON, os.path.join(HERE, "image_check.py"), "--binary", image_binary, "--start-only", "--dockerfile",
         mutate(dockerfile, os.path.join(work, "Dockerfile.image-no-migrations"), drop_instruction("COPY migrations"))],
        None))
    add("trace_check", "tracing pointed at nothing (OTEL_EXPORTER_OTLP_ENDPOINT at a closed port)", lambda: (
        [PYTHON, os.path.join(HERE, "trace_check.py"), "--binary", args.binary, "--quick",
         "--gateway-env", f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{free_port()}"], None))
    add("monitoring_check", "alerts.yml: one alert reads a metric the gateway does not export", lambda: (
        [PYTHON, os.path.join(HERE, "monitoring_check.py"), "--binary", args.binary,
         "--picture", os.path.join(work, "dashboard.png"), "--alerts",
         mutate(os.path.join(ROOT, "deploy/prometheus/alerts.yml"), os.path.join(work, "alerts.yml"),
                lambda text: text.replace("provider_circuit_state", "provider_circuit_status", 1))], None))
    add("reliability_check B", "a simulator that receives every AddPartner twice", lambda: (
        [PYTHON, os.path.join(HERE, "reliability_check.py"), "--binary", args.binary, "--phase", "b", "--kills", "3",
         "--tenants-b", "20", "--mutant", "double-addpartner"], None))

    def proxy():
        shims = tool_shims(os.path.join(work, "proxy"), args.binary,
                           nginx_edit=r"(?m)^\s*proxy_set_header\s+X-Forwarded-For\s+[^;]*;\n?")
        command = [PYTHON, os.path.join(HERE, "proxy_check.py")]
        if '"--binary"' in open(os.path.join(HERE, "proxy_check.py")).read():
            command += ["--binary", args.binary]
        return command, dict(os.environ, PATH=shims + os.pathsep + os.environ.get("PATH", ""))
    add("proxy_check", "nginx without `proxy_set_header X-Forwarded-For`", proxy)

    def events():
        other = "whsec_" + "bm90LXRoZS1jaGVjaydzLXNlY3JldC1hdC1hbGwtMDA="
        wrapper = f"""#!/bin/sh
# The mutant: the gateway signs with another secret than the one the check verifies with.
[ -n "$GATEWAY_EVENTS_SECRET" ] && export GATEWAY_EVENTS_SECRET={other}
exec {os.path.abspath(args.binary)} "$@"
"""
        shims = tool_shims(os.path.join(work, "events"), args.binary, gateway_wrapper=wrapper)
        command = [PYTHON, os.path.join(HERE, "events_check.py")]
        if '"--binary"' in open(os.path.join(HERE, "events_check.py")).read():
            command += ["--binary", os.path.join(work, "events", "bin", "gateway")]
        return command + ["5"], dict(os.environ, PATH=shims + os.pathsep + os.environ.get("PATH", ""))
    add("events_check", "the gateway signs its events with another secret", events)
    add("walkthrough_check", "README: a pre-existing Wrapp customer's credentials supplied before the login", lambda: (
        [PYTHON, os.path.join(HERE, "walkthrough_check.py"), "--binary", args.binary, "--readme",
         mutate(os.path.join(ROOT, "README.md"), os.path.join(work, "README.supply-before-login.md"),
                lambda text: re.sub(r"<!-- walkthrough:[^\n]*-->\n```sh\n[^`]*cust-2/complete-login[^`]*```\n", "", text))],
        None))
    return found


def verdict(code, output, timed_out):
    """caught: a non-zero exit with a failed check to show for it. A usage error, a crash or a silent non-zero exit
    stops CI too, but proves nothing about the check: they count as not caught."""
    failed_check = re.search(r"(?m)^(?:\[[\d:]+\]\s*)?FAIL\b", output) or any(
        int(n) > 0 for n in re.findall(r"(\d+) failed\b", output))
    if timed_out:
        return "TIMED OUT"
    if code == 0:
        return "SURVIVED"
    if "Traceback (most recent call last)" in output:
        return "CRASHED"
    return "caught" if failed_check else "NO FAILED CHECK"


def caught_by(output):
    """The first failed check's line, for the table."""
    for line in output.splitlines():
        match = re.match(r"(?:\[[\d:]+\]\s*)?FAIL\s+(.*)", line.strip())
        if match:
            return match.group(1)[:160]
    tail = [line for line in output.splitlines() if line.strip()]
    return (tail[-1] if tail else "")[:160]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the built gateway (debug is fine)")
    parser.add_argument("--release-binary", help="the release build, for image_check's mutant (else --binary)")
    parser.add_argument("--only", default="", help="comma-separated check names (e.g. deploy_check,trace_check)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds one mutant run may take")
    parser.add_argument("--logs", default=os.path.join(ROOT, "artifacts/selftest"))
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args()
    args.binary = os.path.abspath(args.binary)
    if args.release_binary:
        args.release_binary = os.path.abspath(args.release_binary)
    os.makedirs(args.logs, exist_ok=True)
    work = tempfile.mkdtemp(prefix="gw-selftest-")
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    rows, began = [], time.monotonic()

    unit = subprocess.run([PYTHON, os.path.join(HERE, "dockerfile_tree.py"), "--self-test"], capture_output=True, text=True)
    print(unit.stdout + unit.stderr if unit.returncode else unit.stdout.strip().splitlines()[-1], flush=True)
    unit_ok = unit.returncode == 0

    for check, mutant, build in mutants(args, work):
        if args.list:
            print(f"{check}: {mutant}")
            continue
        if only and check.split()[0] not in only and check not in only:
            continue
        log_path = os.path.join(args.logs, re.sub(r"[^a-z0-9]+", "-", f"{check} {mutant}".lower())[:80] + ".log")
        started = time.monotonic()
        try:
            command, environment = build()
        except AssertionError as error:
            rows.append((check, mutant, "-", "MUTANT IS THE ORIGINAL", 0, str(error)))
            continue
        print(f"== {check}: {mutant}\n   {' '.join(command)}", flush=True)
        timed_out = False
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=ROOT,
                                    start_new_session=True)
            try:
                code = proc.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, 15)
                try:
                    code = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    code = proc.wait()
        output = open(log_path, errors="replace").read()
        result = verdict(code, output, timed_out)
        rows.append((check, mutant, str(code), result, time.monotonic() - started, caught_by(output)))
        print(f"   exit {code}: {result} in {time.monotonic() - started:.0f} s ({log_path})", flush=True)
    if args.list:
        return 0

    print("\nThe checks against their mutants:\n")
    widths = [max(len(str(row[i])) for row in rows + [("check", "mutant", "exit", "verdict")]) for i in range(4)]
    widths[1] = min(widths[1], 70)
    header = ("check", "mutant", "exit", "verdict", "time", "what failed")
    print(f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]:>4}  {header[3]:<{widths[3]}}  {header[4]:>5}  {header[5]}")
    for check, mutant, code, result, seconds, what in rows:
        print(f"{check:<{widths[0]}}  {mutant[:widths[1]]:<{widths[1]}}  {code:>4}  {result:<{widths[3]}}  {seconds:>4.0f}s  {what}")
    bad = [row for row in rows if row[3] != "caught"]
    print(f"\ndockerfile_tree.py unit test: {'passed' if unit_ok else 'FAILED'}")
    print(f"check self-test: {len(rows) - len(bad)} of {len(rows)} mutants caught, {time.monotonic() - began:.0f} s "
          f"(logs in {os.path.relpath(args.logs, ROOT)})")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if bad or not unit_ok or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
