#!/usr/bin/env python3
"""Logs as shipped (LOG_LEVEL=info, LOG_FORMAT=json, an access line per request), from outside the process:

A. kill -9 mid-load: 8 clients read a tenant as fast as they can; the gateway is killed with SIGKILL. Its log must
   end with whole lines only (every JSON line parses), and the last line written must be no older than the bound
   (BOUND_MS) before the kill: the log queue writes lines as they come, so a kill loses only the last moment's.
B. stdout that blocks: the gateway's stdout is a pipe nobody reads (it fills after a few hundred lines). Thousands of
   requests must all be answered, none waiting on the pipe, and the lines that could not be written are counted in
   `log_lines_dropped_total`. (Written synchronously, the first request after the pipe filled would hang for good.)

    python3 scripts/log_check.py --binary .build/debug/gateway
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import datetime

from checklib import CHECKS, call, clean_environment, cleanup_all, free_port, progress, run_main, start_gateway, wait_for

# The most a kill -9 may take: lines logged longer before it than this must be in the file. Generous for shared,
# noisy machines; the measured figure is printed.
BOUND_MS = 500


def hammer(port, path, key, stop, answers):
    headers = {"Authorization": f"Bearer {key}"}
    while not stop.is_set():
        try:
            answer = call(port, "GET", path, None, headers, 5)
            answers.append((answer.status, time.time()))
        except Exception:
            answers.append((None, time.time()))


def phase_a(binary):
    data = tempfile.mkdtemp(prefix="gw-logs-a-")
    gateway = start_gateway(binary, data, name="log check A")
    created = gateway.api("POST", "/v1/tenants", {
        "provider": "wrapp", "external_id": "log-1", "profile": {"email": "maria@example.com", "phone": "+302101234567"}})
    tenant = (created.json or {}).get("id")
    CHECKS.check("A: a tenant to read", created.status in (200, 201, 202) and tenant, repr(created))
    stop, answers = threading.Event(), []
    clients = [threading.Thread(target=hammer, args=(gateway.port, f"/v1/tenants/{tenant}", gateway.key, stop, answers), daemon=True)
               for _ in range(8)]
    for client in clients:
        client.start()
    time.sleep(2.0)
    killed_at = time.time()
    gateway.kill9()
    stop.set()
    for client in clients:
        client.join(10)
    served = sum(1 for status, at in answers if status == 200 and at <= killed_at)
    raw = open(gateway.log_path, "rb").read()
    CHECKS.check("A: the log ends with a whole line after kill -9", raw.endswith(b"\n"), repr(raw[-120:]))
    broken, times, access = [], [], 0
    for line in raw.split(b"\n"):
        if not line.startswith(b"{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            broken.append(line[:120])
            continue
        if entry.get("message") == "request" and entry.get("http.route") == "/v1/tenants/{id}":
            access += 1
        stamp = entry.get("time")
        if stamp:
            times.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    CHECKS.check("A: every JSON line in the log is whole", not broken, f"{len(broken)} broken: {broken[:3]}")
    gap_ms = (killed_at - max(times)) * 1000 if times else float("inf")
    CHECKS.check(f"A: the last line written is no older than {BOUND_MS} ms before the kill",
                 gap_ms <= BOUND_MS, f"{gap_ms:.1f} ms; {served} reads answered before the kill, {access} access lines written")
    progress(f"A: kill -9 after {served} reads answered: the last line was written {gap_ms:.1f} ms before the kill; "
             f"{max(0, served - access)} answered reads had no access line yet")
    shutil.rmtree(data, ignore_errors=True)


def phase_b(binary):
    data = tempfile.mkdtemp(prefix="gw-logs-b-")
    port = free_port()
    env = clean_environment()
    env.update(GATEWAY_DATA_DIR=data, GATEWAY_PORT=str(port))
    # stdout is a pipe this script never reads: it fills after a few hundred lines, and its writer blocks.
    process = subprocess.Popen([binary, "serve", "--sandbox"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        ready = wait_for(CHECKS.check, "B: the gateway ready with its stdout a pipe nobody reads",
                         lambda: call(port, "GET", "/readyz", None, {}, 2).status == 200, 60)
        CHECKS.check("B: the gateway starts with its stdout a pipe nobody reads", ready)
        key = json.load(open(os.path.join(data, "sandbox-secrets.json")))["api_key"]
        stop, answers = threading.Event(), []
        count = 20_000
        lock = threading.Lock()
        sent = [0]

        deadline = time.monotonic() + 60

        def client():
            headers = {"Authorization": f"Bearer {key}"}
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= count:
                        return
                    sent[0] += 1
                started = time.monotonic()
                try:
                    answer = call(port, "GET", "/v1/tenants?limit=1", None, headers, 10)
                    answers.append((answer.status, time.monotonic() - started))
                except Exception as error:
                    answers.append((repr(error), time.monotonic() - started))

        began = time.monotonic()
        threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        spent = time.monotonic() - began
        answered = sum(1 for status, _ in answers if status == 200)
        slowest = max((took for _, took in answers), default=0)
        CHECKS.check(f"B: all {count} requests answered although stdout blocks", answered == count,
                     f"{answered} answered 200 in {spent:.1f} s, slowest {slowest * 1000:.0f} ms; others: "
                     f"{sorted(set(str(s) for s, _ in answers if s != 200))[:5]}")
        metrics = call(port, "GET", "/metrics", None, {}, 10)
        dropped = 0
        for line in metrics.body.decode("utf-8", "replace").splitlines():
            if line.startswith("log_lines_dropped_total"):
                dropped = float(line.split()[-1])
        CHECKS.check("B: the lines stdout could not take are counted in log_lines_dropped_total", dropped > 0, f"{dropped:.0f} dropped")
        progress(f"B: {answered} requests in {spent:.1f} s with stdout blocked, slowest {slowest * 1000:.0f} ms; {dropped:.0f} lines dropped")
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=None, help="the built gateway (default: swift build --show-bin-path)/gateway")
    args = parser.parse_args()
    binary = args.binary or subprocess.check_output(["swift", "build", "--show-bin-path"], text=True).strip() + "/gateway"
    phase_a(os.path.abspath(binary))
    phase_b(os.path.abspath(binary))
    return CHECKS.report("log check")


if __name__ == "__main__":
    run_main(main, cleanup_all)
