#!/usr/bin/env python3
"""Reliability check of the built gateway, its worker and the sandbox simulators, over real HTTP on 127.0.0.1.

Phase A, random faults: both simulators fail half of the partner-API calls at random (500 JSON, 502 HTML, malformed
JSON in a 200, 429, connection reset, and a late success that takes effect after the gateway gave up). 30 tenants are
created concurrently and their customers act (Wrapp logins, keys typed in for people who already had a Wrapp account,
MagniFinance approvals). Every tenant must become active, none may ever be failed, the stored credentials must be the
provider's, no company registered at once may get a second AddPartner, and no two provider calls for one customer may
run at once.

Phase B, kill -9: 60 tenants are created by 6 clients that retry with the same Idempotency-Key while the gateway is
killed with SIGKILL 10 times and restarted on the same data. The providers are `gateway simulate`, a process of its
own (as replica_check.py runs it), so the simulators' users, partnerships and call records survive every kill: each
new MagniFinance company must have reached AddPartner exactly once over the whole run (none seen fails, as does a
second one after a crash). Nothing acknowledged may be lost or doubled, everything converges, and SQLite's integrity
check passes.

    python3 scripts/reliability_check.py --binary .build/debug/gateway [--seed 7] [--phase a|b|all]
    python3 scripts/reliability_check.py --phase b --kills 3 --tenants-b 20            # phase B alone, quickly
    python3 scripts/reliability_check.py --phase b --kills 3 --tenants-b 20 --mutant double-addpartner

`--mutant double-addpartner` is the check's own self-test: phase B's gateway reaches MagniFinance through a small
proxy in this script that sends every AddPartner twice (as a gateway that repeats it blindly would). Phase B must then
fail; the script exits non-zero.
"""
import argparse
import atexit
import base64
import concurrent.futures
import http.client as httplib
import http.server
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
TRANSIENT = (OSError, httplib.HTTPException)
PROVIDER_TIMEOUT_SECONDS = 1
LATE_DELAY_MS = 2500
# A late success stops counting as "in flight" for the simulators' concurrency records a little before the gateway's
# provider timeout: by then the gateway has given up on the call, and may legitimately call again.
CALLER_TIMEOUT_MS = PROVIDER_TIMEOUT_SECONDS * 1000 - 100
WRAPP_PARTNER_PATHS = ("/external_login", "/embedded_check_user", "/login")
MAGNI_EMAIL = "ippn-owner@sandbox.invalid"  # what check_credentials asks the simulator with
MUTANTS = ("double-addpartner",)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Fatal(Exception):
    """Something that stops a phase (the gateway does not start, …)."""


from checklib import Checks  # noqa: E402 - the one report of every check script: exits 1 on a failure
from checklib import run_main, serve_in_background  # noqa: E402 - the entry point; the mutant's proxy


CHECKS = Checks()
GATEWAYS = []
FIGURES = []


# MARK: - HTTP


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        return self.json.get("code") if isinstance(self.json, dict) else None

    def __repr__(self):
        text = self.body[:300].decode("utf-8", "replace") if self.body else ""
        return f"{self.status} {text}"


def call(port, method, path, body=None, headers=None, timeout=10.0):
    """One request on a fresh connection to the gateway on 127.0.0.1. Raises OSError/HTTPException on transport
    failures (refused, reset, timed out)."""
    connection = httplib.HTTPConnection(HOST, port, timeout=timeout)
    try:
        sent = {}
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# MARK: - The gateway process


class Gateway:
    """One gateway process on SQLite. Without `providers` it runs `serve --sandbox` with the simulators inside it;
    with a SimulatedProviders it runs `serve` against that process (whose state then outlives a kill -9 of this one).
    `sim_port` is where the simulators (login pages, /_control) answer."""

    def __init__(self, binary, data_dir, port, name, providers=None):
        self.binary, self.data_dir, self.port, self.name = binary, data_dir, port, name
        self.providers = providers
        self.log_path = os.path.join(data_dir, "gateway.log")
        self.proc = None
        self.starts = 0
        self.secrets = None
        if providers is not None:
            self.secrets = {"api_key": "gw_reliability_" + secrets.token_hex(16), **providers.secrets}
        GATEWAYS.append(self)

    @property
    def sim_port(self):
        return self.providers.port if self.providers is not None else self.port

    def environment(self):
        env = clean_environment()
        if self.providers is not None:
            env.update(self.providers.gateway_environment())
            env.update(GATEWAY_API_KEY=self.secrets["api_key"], GATEWAY_PUBLIC_URL=f"http://{HOST}:{self.port}",
                       GATEWAY_ENCRYPTION_KEY=base64.b64encode(b"b" * 32).decode(), LOG_FORMAT="json")
        env.update(
            GATEWAY_DATA_DIR=self.data_dir, GATEWAY_PORT=str(self.port), GATEWAY_HOST=HOST,
            GATEWAY_PROVIDER_TIMEOUT_SECONDS=str(PROVIDER_TIMEOUT_SECONDS), GATEWAY_POLL_FIRST_SECONDS="1",
            GATEWAY_POLL_MAX_SECONDS="4", GATEWAY_RETRY_FIRST_SECONDS="1", GATEWAY_RETRY_MAX_SECONDS="4",
            # Scaled down like the other timings; still longer than a late success takes to land (2.5 s).
            GATEWAY_SETTLE_SECONDS="4",
            GATEWAY_WORKER_INTERVAL_SECONDS="0.2", LOG_LEVEL="info",
        )
        migrations = os.path.join(ROOT, "migrations")
        if os.path.isdir(migrations):
            env["GATEWAY_MIGRATIONS_DIR"] = migrations
        return env

    def start(self, ready_within=90):
        for attempt in range(3):
            self.starts += 1
            with open(self.log_path, "ab") as out:
                out.write(f"\n===== reliability_check: start {self.starts} of the {self.name} gateway =====\n".encode())
                out.flush()
                command = [self.binary, "serve"] + ([] if self.providers is not None else ["--sandbox"])
                self.proc = subprocess.Popen(
                    command, cwd=ROOT, env=self.environment(), stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )
            try:
                self.wait_ready(ready_within)
                return
            except Fatal as error:
                if self.proc.poll() is None or attempt == 2:
                    raise
                log(f"{self.name} gateway exited at start ({error}); starting again")
                time.sleep(1)

    def wait_ready(self, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fatal(f"the {self.name} gateway exited with status {self.proc.returncode} before it was ready")
            try:
                if call(self.port, "GET", "/readyz", timeout=2).status == 200:
                    break
            except TRANSIENT:
                pass
            time.sleep(0.2)
        else:
            raise Fatal(f"the {self.name} gateway was not ready within {limit} s")
        if self.secrets is None:
            with open(os.path.join(self.data_dir, "sandbox-secrets.json")) as f:
                self.secrets = json.load(f)

    @property
    def key(self):
        return self.secrets["api_key"]

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def terminate(self, limit=20):
        """SIGTERM; True if the process ended by itself within `limit`."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=limit)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return False

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass

    # Requests

    def api(self, method, path, body=None, headers=None, timeout=10.0):
        sent = {"Authorization": f"Bearer {self.key}"}
        sent.update(headers or {})
        return call(self.port, method, path, body, sent, timeout)

    def control(self, method, path, body=None, limit=20.0):
        """A simulator control route (never faulted), retried on transport errors for up to `limit` seconds."""
        deadline = time.monotonic() + limit
        while True:
            try:
                return call(self.sim_port, method, path, body, timeout=10)
            except TRANSIENT:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def set_chaos(self, rate, seed):
        for offset, simulator in enumerate(("wrapp", "magnifinance")):
            answer = self.control("POST", f"/sandbox/{simulator}/_control/chaos", {
                "rate": rate, "seed": seed + offset, "late_delay_ms": LATE_DELAY_MS, "caller_timeout_ms": CALLER_TIMEOUT_MS,
            })
            if answer.status != 200:
                raise Fatal(f"POST /sandbox/{simulator}/_control/chaos answered {answer!r}")

    def simulator_calls(self):
        wrapp = self.control("GET", "/sandbox/wrapp/_control/calls")
        magni = self.control("GET", "/sandbox/magnifinance/_control/calls")
        if wrapp.status != 200 or magni.status != 200 or not isinstance(wrapp.json, dict) or not isinstance(magni.json, dict):
            raise Fatal(f"the simulators' /_control/calls answered {wrapp!r} and {magni!r}")
        return wrapp.json, magni.json


def cleanup_all():
    for gateway in GATEWAYS:
        gateway.cleanup()
    Process.cleanup_all()


def clean_environment():
    """This environment without the gateway's and the providers' settings, so none leaks in from the caller's shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "WRAPP_", "MAGNIFINANCE_", "LOG_", "OTEL_"))}


class Process:
    """A child process with its log file, killed when the script ends (replica_check.py's replicas, nginx and
    simulator, and phase B's simulator)."""
    ALL = []

    def __init__(self, name, command, env, log_path):
        self.name, self.command, self.env, self.log_path = name, command, env, log_path
        self.proc = None
        self.starts = 0
        Process.ALL.append(self)

    def start(self, ready_port, ready_path="/readyz", limit=90):
        self.starts += 1
        with open(self.log_path, "ab") as out:
            out.write(f"\n===== start {self.starts} of {self.name} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fatal(f"{self.name} exited with status {self.proc.returncode} at start:\n{log_tail(self.log_path, 20)}")
            try:
                if call(ready_port, "GET", ready_path, timeout=2).status == 200:
                    return
            except TRANSIENT:
                pass
            time.sleep(0.2)
        raise Fatal(f"{self.name} was not ready within {limit} s")

    # The same process handling as the single gateway's.
    kill9 = Gateway.kill9
    terminate = Gateway.terminate

    @classmethod
    def cleanup_all(cls):
        for process in cls.ALL:
            if process.proc is not None and process.proc.poll() is None:
                try:
                    process.proc.kill()
                    process.proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass


class SimulatedProviders:
    """`gateway simulate`: both provider simulators as a process of their own, with the credentials it and the
    gateways share. Its users, partnerships and call records outlive any gateway process. `gateway_environment()`
    points a gateway at it; `magni_url` may be moved to a proxy in front of it (a mutant)."""

    def __init__(self, binary, work, name, answer_delay_ms=0, log_level="info"):
        self.port = free_port()
        self.credentials = {
            "WRAPP_PARTNER_API_KEY": "wrapp-partner-" + secrets.token_hex(12), "MAGNIFINANCE_EMAIL": MAGNI_EMAIL,
            "MAGNIFINANCE_TOKEN": "ippn-token-" + secrets.token_hex(12), "MAGNIFINANCE_PASSWORD": "ippn-pw-" + secrets.token_hex(12),
        }
        # What check_credentials asks the simulator's token lookup with.
        self.secrets = {"magnifinance_token": self.credentials["MAGNIFINANCE_TOKEN"],
                        "magnifinance_password": self.credentials["MAGNIFINANCE_PASSWORD"]}
        self.wrapp_url = f"http://{HOST}:{self.port}/sandbox/wrapp"
        self.magni_url = f"http://{HOST}:{self.port}/sandbox/magnifinance"
        env = clean_environment()
        env.update(self.credentials, LOG_LEVEL=log_level, LOG_FORMAT="json")
        delay = ["--answer-delay-ms", str(answer_delay_ms)] if answer_delay_ms else []
        self.process = Process(f"{name}: simulator", [binary, "simulate", "--port", str(self.port)] + delay, env,
                               os.path.join(work, "simulator.log"))

    def start(self):
        self.process.start(self.port, "/healthz")

    def terminate(self):
        return self.process.terminate()

    def gateway_environment(self):
        return dict(self.credentials, WRAPP_BASE_URL=self.wrapp_url, MAGNIFINANCE_BASE_URL=self.magni_url)


class AddPartnerTwice(http.server.BaseHTTPRequestHandler):
    """The mutant `double-addpartner`: relays every request to the simulator, and sends every AddPartner (POST
    …/partner) to it twice, answering with the first answer. A transport failure towards the simulator drops the
    connection, as the simulator would have."""
    target_port = None
    doubled = 0

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        times = 2 if self.command == "POST" and path.endswith("/sandbox/magnifinance/partner") else 1
        answers = []
        for _ in range(times):
            try:
                answers.append(call(AddPartnerTwice.target_port, self.command, self.path, body, headers, timeout=30))
            except TRANSIENT:
                answers.append(None)
        if times == 2:
            AddPartnerTwice.doubled += 1
        first = answers[0]
        if first is None:
            self.close_connection = True
            return
        self.send_response(first.status)
        for name, value in first.headers.items():
            if name not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(first.body)))
        self.end_headers()
        self.wfile.write(first.body)

    do_GET = do_POST = do_PUT = do_DELETE = relay

    def log_message(self, *args):
        pass


def apply_mutant(mutant, providers):
    """Puts the mutant between the gateway and the simulators; returns a line for the log."""
    if mutant == "double-addpartner":
        AddPartnerTwice.target_port = providers.port
        proxy = serve_in_background(AddPartnerTwice)
        providers.magni_url = f"http://{HOST}:{proxy.server_address[1]}/sandbox/magnifinance"
        return f"MUTANT double-addpartner: MagniFinance reached through a proxy on {proxy.server_address[1]} that sends every AddPartner twice"
    raise ValueError(f"unknown mutant {mutant}")


atexit.register(cleanup_all)


def report(name, began, logs, dirs, tail_lines=60):
    """The figures, the wall time and, on failure, the last lines of every log (data kept); on success the data
    directories are removed. Then checklib's report: what failed and the counts, and exit 1 on any failure."""
    print()
    for figure in FIGURES:
        print(figure)
    print(f"wall time {time.monotonic() - began:.0f} s")
    if CHECKS.failed:
        for path in logs:
            print(f"\n----- last lines of {path} -----")
            print(log_tail(path, tail_lines))
        print(f"\n(data kept in {', '.join(dirs)})")
    else:
        for directory in dirs:
            shutil.rmtree(directory, ignore_errors=True)
    return CHECKS.report(name)


def log_tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            text = f.read().decode("utf-8", "replace").splitlines()
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(line[:600] for line in text[-lines:])


# MARK: - Tenants


def nif(rng, used):
    """A valid Portuguese company NIF: 5, seven digits, and the mod-11 check digit."""
    while True:
        digits = [5] + [rng.randrange(10) for _ in range(7)]
        total = sum(d * (9 - i) for i, d in enumerate(digits))
        check = 11 - total % 11
        if check >= 10:
            check = 0
        text = "".join(map(str, digits + [check]))
        if text not in used:
            used.add(text)
            return text


def spec(kind, external_id, run, rng, used_tax_ids):
    tenant = {"kind": kind, "external_id": external_id, "key": f"rel-{run}-{external_id}", "tax_id": None}
    if kind in ("wrapp_new", "wrapp_existing"):
        email = f"{external_id}@example.com" if kind == "wrapp_new" else f"existing.{external_id}@example.com"
        tenant["provider"] = "wrapp"
        body = {"provider": "wrapp", "external_id": external_id, "profile": {"email": email, "phone": "+302101234567"}}
    else:
        tax_id = nif(rng, used_tax_ids)
        tenant["provider"], tenant["tax_id"] = "magnifinance", tax_id
        body = {"provider": "magnifinance", "external_id": external_id, "profile": {
            "email": f"{external_id}@example.pt", "contact_name": "Ana Sousa",
            "company": {"tax_id": tax_id, "legal_name": f"Fiabilidade {external_id} Lda", "country": "PT", "post_code": "1000-001"},
        }}
    tenant["body"] = json.dumps(body, sort_keys=True).encode()  # the same bytes on every retry
    return tenant


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}

    def add(self, name, n=1):
        with self.lock:
            self.values[name] = self.values.get(name, 0) + n

    def __getitem__(self, name):
        with self.lock:
            return self.values.get(name, 0)


def create(gateway, tenant, deadline, counter):
    """POST /v1/tenants with the tenant's Idempotency-Key and body, retried (same key, same body) on transport
    errors, 5xx, 429 and 409 idempotency_key_in_use, until acknowledged or `deadline`."""
    tenant.setdefault("started", time.monotonic())
    attempt = 0
    while True:
        attempt += 1
        try:
            answer = gateway.api("POST", "/v1/tenants", tenant["body"], {"Idempotency-Key": tenant["key"]}, timeout=30)
            tenant["last_answer"] = repr(answer)
            if answer.status in (200, 201, 202) and isinstance(answer.json, dict) and answer.json.get("id"):
                tenant["id"] = answer.json["id"]
                tenant["ack_status"] = answer.status
                tenant["state"] = answer.json.get("state")
                tenant["acknowledged"] = time.monotonic()
                tenant["resource"] = answer.json
                if tenant["state"] == "active":
                    # Active at once (a new MagniFinance company): the driver never steps it, so it is timed here.
                    tenant["active_at"] = tenant["acknowledged"]
                counter.add(f"create_{answer.status}")
                return True
            transient = answer.status >= 500 or answer.status == 429 or (
                answer.status == 409 and answer.code == "idempotency_key_in_use")
            if not transient:
                tenant["create_error"] = repr(answer)
                return False
            counter.add("create_in_use" if answer.status == 409 else "create_5xx" if answer.status >= 500 else "create_429")
        except TRANSIENT as error:
            tenant["last_answer"] = f"{type(error).__name__}: {error}"
            counter.add("create_transport_error")
        if time.monotonic() > deadline:
            return False
        counter.add("create_retries")
        time.sleep(min(2.0, 0.15 * attempt) + random.random() * 0.2)


class Driver:
    """Plays the customers: polls each tenant and does what its next_action asks."""

    def __init__(self, gateway, counter, recomplete_after=None, supply_for_new=False):
        self.gateway = gateway
        self.counter = counter
        # Phase A completes each login page once (a customer logs in once); phase B again after this many seconds,
        # since a kill may lose the webhook, or the simulator the login.
        self.recomplete_after = recomplete_after
        self.supply_for_new = supply_for_new

    def step(self, tenant):
        try:
            self._step(tenant)
        except TRANSIENT:
            self.counter.add("drive_transport_errors")
        except Exception as error:  # noqa: BLE001 - a bug here must not stop the other tenants
            note(tenant, f"driver error: {type(error).__name__}: {error}")

    def _step(self, tenant):
        now = time.monotonic()
        answer = self.gateway.api("GET", f"/v1/tenants/{tenant['id']}")
        if answer.status != 200 or not isinstance(answer.json, dict):
            tenant["last_get"] = repr(answer)
            return
        resource = answer.json
        state = resource.get("state")
        action = resource.get("next_action") or {}
        signature = (state, action.get("type"))
        if signature != tenant.get("signature"):
            tenant["signature"] = signature
            tenant["changed"] = now
            tenant.setdefault("path", []).append("/".join(x for x in signature if x))
        tenant["state"] = state
        tenant["resource"] = resource
        if state == "active":
            tenant.setdefault("active_at", now)
            return
        if state == "failed":
            tenant["seen_failed"] = True
            return
        if state == "action_required":
            kind = action.get("type")
            if kind == "redirect_to_url":
                self.complete_login(tenant, action.get("url"))
            elif kind == "provide_credentials":
                if tenant["kind"] == "wrapp_existing" or self.supply_for_new:
                    self.supply_credentials(tenant)
                else:
                    tenant["asked_for_credentials"] = True
            elif kind == "await_approval":
                self.approve(tenant)
        # Sparingly: a tenant that has not moved for a long while gets one refresh now and then.
        if now - tenant.get("changed", now) > 45 and now - tenant.get("refreshed", 0) > 45:
            tenant["refreshed"] = now
            self.counter.add("refreshes")
            self.gateway.api("POST", f"/v1/tenants/{tenant['id']}/refresh", headers={"Idempotency-Key": str(uuid.uuid4())},
                             timeout=20)

    def complete_login(self, tenant, url):
        now = time.monotonic()
        if tenant.get("completed"):
            if self.recomplete_after is None or now - tenant["completed"] < self.recomplete_after:
                return
        if not url:
            return
        parts = urllib.parse.urlsplit(url)
        if parts.hostname != HOST or parts.port != self.gateway.sim_port:
            note(tenant, f"login URL not on this gateway: {url}")
            return
        answer = self.press_button(parts.path)
        if answer.status == 404:
            # The login link is not (or no longer) valid: ask the gateway for a fresh one.
            fresh = self.gateway.api("POST", f"/v1/tenants/{tenant['id']}/onboarding-link",
                                     headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=20)
            self.counter.add("fresh_links")
            if fresh.status != 200 or not isinstance(fresh.json, dict) or not fresh.json.get("url"):
                return
            parts = urllib.parse.urlsplit(fresh.json["url"])
            if parts.hostname != HOST or parts.port != self.gateway.sim_port:
                return
            answer = self.press_button(parts.path)
        if answer.status == 200:
            tenant["completed"] = now
            self.counter.add("logins_completed")

    def press_button(self, login_path):
        """The sandbox login page's button: a form POST to `<login url>/complete`."""
        return call(self.gateway.sim_port, "POST", login_path.rstrip("/") + "/complete", b"",
                    {"Content-Type": "application/x-www-form-urlencoded"}, timeout=20)

    def supply_credentials(self, tenant):
        now = time.monotonic()
        if now - tenant.get("supplied", 0) < 2:
            return
        tenant["supplied"] = now
        user = self.gateway.control("GET", "/sandbox/wrapp/_control/users/" + urllib.parse.quote(tenant["external_id"], safe=""))
        if user.status != 200 or not isinstance(user.json, dict):
            return
        self.counter.add("credentials_supplied")
        answer = self.gateway.api(
            "PUT", f"/v1/tenants/{tenant['id']}/credentials",
            {"wrapp_user_id": user.json["wrapp_user_id"], "api_key": user.json["api_key"]},
            {"Idempotency-Key": str(uuid.uuid4())}, timeout=20,
        )
        if answer.status == 200:
            return
        expected = answer.status in (202, 409, 503) or answer.status >= 500 or (
            answer.status == 422 and answer.code == "provider_unavailable")
        if not expected:
            note(tenant, f"PUT credentials answered {answer!r}")

    def approve(self, tenant):
        if tenant.get("approved"):
            return
        answer = self.gateway.control("POST", "/sandbox/magnifinance/_control/approve", {"tax_id": tenant["tax_id"]})
        if answer.status == 200:
            tenant["approved"] = time.monotonic()


def converge(driver, tenants, deadline, label):
    """Drives every tenant until all are active, every one left is failed, or `deadline`."""
    last_report = 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while time.monotonic() < deadline:
            todo = [t for t in tenants if t.get("state") != "active"]
            if not todo:
                return True
            if all(t.get("state") == "failed" for t in todo):
                return False
            list(pool.map(driver.step, todo))
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                states = {}
                for t in tenants:
                    name = "/".join(x for x in (t.get("signature") or (t.get("state"), None)) if x) or "?"
                    states[name] = states.get(name, 0) + 1
                log(f"{label}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
            time.sleep(0.5)
    return all(t.get("state") == "active" for t in tenants)


def note(tenant, text):
    notes = tenant.setdefault("notes", [])
    if not notes or notes[-1] != text:
        notes.append(text)


def describe(tenant):
    resource = tenant.get("resource") or {}
    parts = [f"{tenant['external_id']} ({tenant.get('id')}, {tenant['kind']}): {tenant.get('state')}"]
    if resource.get("next_action"):
        parts.append(f"next_action {resource['next_action'].get('type')}")
    if resource.get("last_error"):
        parts.append(f"last_error {json.dumps(resource['last_error'])[:300]}")
    if tenant.get("path"):
        parts.append("path " + " > ".join(tenant["path"]))
    if tenant.get("asked_for_credentials"):
        parts.append("a new Wrapp customer was asked for credentials (the webhook's key was lost)")
    for note in tenant.get("notes", [])[-3:]:
        parts.append(note)
    if tenant.get("create_error") or not tenant.get("id"):
        parts.append(f"last create answer {tenant.get('create_error') or tenant.get('last_answer')}")
    return "; ".join(parts)


def listed(gateway, path):
    """Every item of a paged list (`{"data", "next_cursor"}`), following next_cursor."""
    items, cursor = [], None
    for _ in range(50):
        separator = "&" if "?" in path else "?"
        page_path = path + (f"{separator}cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
        answer = retrying(lambda: gateway.api("GET", page_path))
        if answer.status != 200 or not isinstance(answer.json, dict):
            raise Fatal(f"GET {page_path} answered {answer!r}")
        items.extend(answer.json.get("data") or [])
        cursor = answer.json.get("next_cursor")
        if not cursor:
            return items
    raise Fatal(f"GET {path}: more than 50 pages")


def retrying(request, limit=20.0):
    deadline = time.monotonic() + limit
    while True:
        try:
            answer = request()
            if answer.status < 500 or time.monotonic() > deadline:
                return answer
        except TRANSIENT:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


def check_history(gateway, tenants, label):
    failed = []
    for tenant in tenants:
        if not tenant.get("id"):
            continue
        events = listed(gateway, f"/v1/tenants/{tenant['id']}/events?limit=100")
        states = [((e.get("data") or {}).get("tenant") or {}).get("state") for e in events]
        if "failed" in states or tenant.get("seen_failed"):
            failed.append(f"{tenant['external_id']} ({tenant['id']}): states {states}")
    CHECKS.check(f"{label}: no tenant was ever failed", not failed, "; ".join(failed) or f"{len(tenants)} histories read")


def check_all_active(gateway, tenants, label):
    stragglers = []
    for tenant in tenants:
        if not tenant.get("id"):
            stragglers.append(describe(tenant))
            continue
        answer = retrying(lambda: gateway.api("GET", f"/v1/tenants/{tenant['id']}"))
        if answer.status == 200 and isinstance(answer.json, dict):
            tenant["resource"] = answer.json
            tenant["state"] = answer.json.get("state")
        if tenant.get("state") != "active":
            stragglers.append(describe(tenant))
    CHECKS.check(f"{label}: all {len(tenants)} tenants active", not stragglers,
                 "; ".join(stragglers) if stragglers else "")
    return not stragglers


# MARK: - Phase A


def phase_a(binary, seed, budget):
    rng = random.Random(seed)
    data_dir = tempfile.mkdtemp(prefix="gw-reliability-a-")
    gateway = Gateway(binary, data_dir, free_port(), "phase A")
    log(f"phase A: random faults on half of all provider calls (seed {seed}); data in {data_dir}")
    gateway.start()
    try:
        gateway.set_chaos(0.5, seed)
        used = set()
        tenants = [spec("wrapp_new", f"rel-w-{i}", seed, rng, used) for i in range(12)]
        tenants += [spec("wrapp_existing", f"rel-x-{i}", seed, rng, used) for i in range(4)]
        tenants += [spec("mf_new", f"rel-m-{i}", seed, rng, used) for i in range(10)]
        tenants += [spec("mf_existing", f"rel-c-{i}", seed, rng, used) for i in range(4)]
        for tenant in tenants:
            if tenant["kind"] == "mf_existing":
                answer = gateway.control("POST", "/sandbox/magnifinance/_control/clients", {"tax_id": tenant["tax_id"]})
                if answer.status != 200:
                    raise Fatal(f"marking an existing MagniFinance client answered {answer!r}")
        rng.shuffle(tenants)
        counter = Counter()
        started = time.monotonic()
        deadline = started + budget
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            acknowledged = list(pool.map(lambda t: create(gateway, t, min(deadline, time.monotonic() + 90), counter), tenants))
        log(f"phase A: {sum(acknowledged)} of {len(tenants)} creates acknowledged in {time.monotonic() - started:.1f} s "
            f"({counter['create_retries']} retries)")
        CHECKS.check("A: every create acknowledged (201/202, retried with its key)", all(acknowledged),
                     "; ".join(describe(t) for t, ok in zip(tenants, acknowledged) if not ok))
        live = [t for t in tenants if t.get("id")]
        driver = Driver(gateway, counter)
        converged = converge(driver, live, deadline, "phase A")
        converged_at = time.monotonic()
        wrapp_calls, magni_calls = gateway.simulator_calls()
        gateway.set_chaos(0, seed)

        check_all_active(gateway, tenants, "A")
        check_history(gateway, live, "A")
        check_credentials(gateway, live)

        check_provider_calls(live, wrapp_calls, magni_calls, "A")

        def took(t):
            return (t.get("active_at") or converged_at) - t["started"]

        slowest = max(live, key=took) if live else None
        faults = wrapp_calls.get("faults_injected", 0) + magni_calls.get("faults_injected", 0)
        provider_calls = sum(n for path, n in (wrapp_calls.get("calls") or {}).items() if path in WRAPP_PARTNER_PATHS)
        provider_calls += sum((magni_calls.get("calls") or {}).values())
        kinds = {}
        for summary in (wrapp_calls.get("chaos") or {}, magni_calls.get("chaos") or {}):
            for kind, n in (summary.get("faults_by_kind") or {}).items():
                kinds[kind] = kinds.get(kind, 0) + n
        FIGURES.append(
            f"phase A: {len(tenants)} tenants, {'converged' if converged else 'NOT converged'} in "
            f"{converged_at - started:.1f} s"
            + (f"; slowest tenant {took(slowest):.1f} s ({slowest['external_id']}, {slowest['kind']}"
               f"{'' if slowest.get('active_at') else ', not active'})" if slowest else "")
            + f"; {faults} faults injected in {provider_calls} provider calls ({kinds}); "
            f"{counter['create_retries']} create retries, {counter['logins_completed']} logins, "
            f"{counter['credentials_supplied']} credential submissions, {counter['refreshes']} refreshes"
        )
        log(FIGURES[-1])
    finally:
        stopped = gateway.terminate()
    CHECKS.check("A: the gateway stops on SIGTERM", stopped)
    check_integrity(data_dir, "A")
    return data_dir, gateway.log_path


def check_one_per_external_id(gateway, tenants, label=""):
    """Every tenant the run created is listed exactly once, and nothing else is."""
    everything = listed(gateway, "/v1/tenants?limit=100")
    per_pair = {}
    for item in everything:
        pair = (item.get("provider"), item.get("external_id"))
        per_pair[pair] = per_pair.get(pair, 0) + 1
    doubled = {f"{p}/{e}": n for (p, e), n in per_pair.items() if n != 1}
    absent = [t["external_id"] for t in tenants if per_pair.get((t["provider"], t["external_id"]), 0) == 0]
    strangers = [f"{p}/{e}" for (p, e) in per_pair if e not in {t["external_id"] for t in tenants}]
    CHECKS.check(f"{label}exactly one tenant per external_id", not doubled and not absent and not strangers,
                 f"doubled {doubled}, absent {absent}, unknown {strangers}" if (doubled or absent or strangers)
                 else f"{len(everything)} tenants listed")


def check_provider_calls(tenants, wrapp_calls, magni_calls, label, concurrency=True):
    """From the simulators' records: one AddPartner per company registered at once (none seen fails too), and, with
    `concurrency`, never two calls for one customer in flight together (whichever gateway process made them)."""
    new_companies = [t for t in tenants if t["kind"] == "mf_new"]
    add_partner = magni_calls.get("add_partner") or {}
    wrong = {t["tax_id"]: add_partner.get(t["tax_id"], 0) for t in new_companies if add_partner.get(t["tax_id"], 0) != 1}
    seen = sum(add_partner.get(t["tax_id"], 0) for t in new_companies)
    CHECKS.check(f"{label}: each new MagniFinance company got exactly one AddPartner", new_companies and not wrong,
                 f"AddPartner calls per tax id that are not 1 (0: never seen, 2+: repeated): {wrong}" if wrong else
                 f"{len(new_companies)} companies, {seen} AddPartner calls seen" if new_companies else "no new company to check")
    if not concurrency:
        return
    magni_max = magni_calls.get("max_concurrent_per_tax_id")
    CHECKS.check(f"{label}: never two MagniFinance calls for one company at once", isinstance(magni_max, int) and magni_max <= 1,
                 f"max_concurrent_per_tax_id {magni_max}, overlaps {magni_calls.get('overlapping_calls')}")
    wrapp_max = wrapp_calls.get("max_concurrent_per_user")
    CHECKS.check(f"{label}: never two Wrapp calls for one customer at once", isinstance(wrapp_max, int) and wrapp_max <= 1,
                 f"max_concurrent_per_user {wrapp_max}, overlaps {wrapp_calls.get('overlapping_calls')}")


def check_credentials(gateway, tenants, label="A"):
    """Every credential set the gateway holds is compared with the simulator's own record of that customer: a
    lookup that is not a clear answer (a 200 with the record) is a failure, never a skip, and so is a run in which
    nothing was compared at all."""
    problems, read, compared = [], 0, 0
    ippn = gateway.secrets or {}
    for tenant in tenants:
        resource = tenant.get("resource") or {}
        if not resource.get("credentials_available"):
            if tenant.get("state") == "active":
                problems.append(f"{tenant['external_id']}: active without credentials_available")
            continue
        answer = retrying(lambda: gateway.api("GET", f"/v1/tenants/{tenant['id']}/credentials"))
        if answer.status != 200 or not isinstance(answer.json, dict):
            problems.append(f"{tenant['external_id']}: GET credentials answered {answer!r}")
            continue
        read += 1
        credentials = answer.json
        if tenant["provider"] == "wrapp":
            user = gateway.control("GET", "/sandbox/wrapp/_control/users/" + urllib.parse.quote(tenant["external_id"], safe=""))
            if user.status != 200 or not isinstance(user.json, dict):
                problems.append(f"{tenant['external_id']}: the simulator has no such user ({user!r})")
                continue
            compared += 1
            if credentials.get("api_key") != user.json.get("api_key") or str(credentials.get("wrapp_user_id")) != user.json.get("wrapp_user_id"):
                problems.append(f"{tenant['external_id']}: stored wrapp_user_id/api_key are not the simulator's for this customer")
        else:
            tokens = sorted(t.get("token") for t in credentials.get("access_tokens") or [])
            if not tokens:
                problems.append(f"{tenant['external_id']}: no access tokens")
                continue
            provider = call(gateway.sim_port, "GET", "/sandbox/magnifinance/partner/accessTokens?partnerTaxId=" + tenant["tax_id"],
                            headers={"Email": MAGNI_EMAIL, "Token": ippn.get("magnifinance_token", ""),
                                     "Password": ippn.get("magnifinance_password", "")})
            if provider.status != 200 or not isinstance(provider.json, dict) or not isinstance(provider.json.get("Object"), list):
                problems.append(f"{tenant['external_id']}: the simulator's token lookup answered {provider!r}, nothing to compare with")
                continue
            compared += 1
            expected = sorted(t.get("AccessToken") for t in provider.json["Object"])
            if tokens != expected:
                problems.append(f"{tenant['external_id']}: stored access tokens are not the simulator's")
    if not compared and not problems:
        problems.append(f"no credential set was compared ({len(tenants)} tenants, {read} credential sets read)")
    CHECKS.check(f"{label}: stored credentials are the provider's", not problems,
                 "; ".join(problems) if problems else f"{compared} of {read} credential sets read, each compared with the simulator's")


def check_integrity(data_dir, label):
    path = os.path.join(data_dir, "gateway.sqlite")
    try:
        connection = sqlite3.connect(path, timeout=10)
        try:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        finally:
            connection.close()
        ok = rows == [("ok",)]
        detail = "ok" if ok else repr(rows[:10])
    except sqlite3.Error as error:
        ok, detail = False, f"{type(error).__name__}: {error}"
    CHECKS.check(f"{label}: PRAGMA integrity_check", ok, detail)


# MARK: - Phase B


def phase_b(binary, seed, budget, chaos_rate, kills=10, count=60, mutant=None):
    rng = random.Random(seed * 7919 + 1)
    data_dir = tempfile.mkdtemp(prefix="gw-reliability-b-")
    # The providers run as a process of their own, so their records survive the gateway's kills.
    providers = SimulatedProviders(binary, data_dir, "phase B")
    if mutant:
        log(apply_mutant(mutant, providers))
    gateway = Gateway(binary, data_dir, free_port(), "phase B", providers=providers)
    log(f"phase B: kill -9 x{kills} under concurrent creates of {count} tenants (chaos rate {chaos_rate}); simulator "
        f"process on {providers.port}; data in {data_dir}")
    providers.start()
    gateway.start()
    try:
        if chaos_rate > 0:
            gateway.set_chaos(chaos_rate, seed)
        used = set()
        tenants = []
        for i in range(count):
            kind = "wrapp_new" if i % 2 == 0 else "mf_new"
            tenants.append(spec(kind, f"kb-{'w' if kind == 'wrapp_new' else 'm'}-{i}", f"b{seed}", rng, used))
        counter = Counter()
        started = time.monotonic()
        create_deadline = started + budget

        def paced_create(tenant, pause):
            time.sleep(pause)
            return create(gateway, tenant, create_deadline, counter)

        pool = concurrent.futures.ThreadPoolExecutor(6)
        futures = [pool.submit(paced_create, t, rng.uniform(0.3, 2.5)) for t in tenants]
        kill_times = []
        try:
            for n in range(kills):
                time.sleep(rng.uniform(0.4, 2.2))
                gateway.kill9()
                kill_times.append(time.monotonic() - started)
                gateway.start(ready_within=60)
            last_restart = time.monotonic()
            log(f"phase B: {kills} kills at {', '.join(f'{t:.1f}' for t in kill_times)} s; "
                f"{sum(1 for f in futures if f.done())} of {len(futures)} creates finished so far")
        finally:
            pool.shutdown(wait=True)
        acknowledged = [t for t in tenants if t.get("id")]
        CHECKS.check(f"B: every create acknowledged ({len(acknowledged)} of {len(tenants)})", len(acknowledged) == len(tenants),
                     "; ".join(describe(t) for t in tenants if not t.get("id")))

        driver = Driver(gateway, counter, recomplete_after=8, supply_for_new=True)
        converged = converge(driver, acknowledged, time.monotonic() + max(60, budget - (time.monotonic() - started)), "phase B")
        converged_at = time.monotonic()
        # The simulator's records of the whole run, every gateway process included (it was never restarted).
        wrapp_calls, magni_calls = gateway.simulator_calls()
        if chaos_rate > 0:
            gateway.set_chaos(0, seed)

        missing = []
        for tenant in acknowledged:
            answer = retrying(lambda: gateway.api("GET", f"/v1/tenants/{tenant['id']}"))
            if answer.status != 200 or not isinstance(answer.json, dict) or answer.json.get("external_id") != tenant["external_id"]:
                missing.append(f"{tenant['external_id']} -> {tenant['id']}: {answer!r}")
        CHECKS.check("B: every acknowledged tenant exists", not missing, "; ".join(missing))

        replay_problems = []
        for tenant in acknowledged:
            answer = retrying(lambda: gateway.api("POST", "/v1/tenants", tenant["body"], {"Idempotency-Key": tenant["key"]},
                                                  timeout=30), limit=30)
            same = isinstance(answer.json, dict) and answer.json.get("id") == tenant["id"]
            replayed = answer.headers.get("idempotent-replayed") == "true"
            if answer.status not in (200, 201, 202) or not same:
                replay_problems.append(f"{tenant['external_id']}: acknowledged {tenant['id']}, replay answered {answer!r}")
            elif not replayed:
                counter.add("replays_without_header")
        CHECKS.check("B: replaying every key answers the same tenant", not replay_problems,
                     "; ".join(replay_problems) or f"{len(acknowledged)} replays, "
                     f"{counter['replays_without_header']} without Idempotent-Replayed")

        check_one_per_external_id(gateway, tenants, "B: ")

        # Exactly one AddPartner per new company over the whole run, across every kill: none seen fails, and so
        # does a second one (the gateway repeating a call whose outcome a crash hid from it).
        # Not "never two calls at once" here: a call of a gateway killed with kill -9 may still be under way at the
        # provider when its successor starts, which cannot know of it (the replica check asserts it across replicas).
        check_provider_calls(acknowledged, wrapp_calls, magni_calls, "B (simulator process, across all kills)", concurrency=False)
        if mutant:
            log(f"MUTANT {mutant}: {AddPartnerTwice.doubled} AddPartner calls were sent twice")

        check_all_active(gateway, tenants, "B")
        check_credentials(gateway, acknowledged, "B")
        FIGURES.append(
            f"phase B: {len(kill_times)} kills; {len(acknowledged)} of {len(tenants)} creates acknowledged with "
            f"{counter['create_retries']} retries ({counter['create_transport_error']} transport errors, "
            f"{counter['create_in_use']} idempotency_key_in_use, {counter['create_5xx']} 5xx, {counter['create_429']} 429); "
            f"{'converged' if converged else 'NOT converged'} {converged_at - last_restart:.1f} s after the last restart "
            f"({converged_at - started:.1f} s after the first create); {counter['fresh_links']} fresh login links, "
            f"{counter['credentials_supplied']} credential submissions; "
            f"{sum((magni_calls.get('add_partner') or {}).values())} AddPartner calls seen by the simulator process"
        )
        log(FIGURES[-1])
    finally:
        stopped = gateway.terminate()
        providers.terminate()
    CHECKS.check("B: the gateway stops on SIGTERM", stopped)
    check_integrity(data_dir, "B")
    return data_dir, gateway.log_path


# MARK: - Main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=".build/debug/gateway", help="the built gateway (default .build/debug/gateway)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random faults and of the script's choices")
    parser.add_argument("--phase", choices=("a", "b", "all"), default="all")
    parser.add_argument("--budget-a", type=float, default=180, help="seconds phase A may take to converge")
    parser.add_argument("--budget-b", type=float, default=120, help="seconds phase B may take, creates and convergence")
    parser.add_argument("--chaos-b", type=float, default=0.1, help="random fault rate during phase B (0 for none)")
    parser.add_argument("--kills", type=int, default=10, help="kill -9s of the gateway in phase B (default 10)")
    parser.add_argument("--tenants-b", type=int, default=60, help="tenants phase B creates (default 60)")
    parser.add_argument("--mutant", choices=MUTANTS,
                        help="self-test: run phase B against a broken target, which it must fail (double-addpartner: "
                             "every AddPartner reaches the simulator twice)")
    args = parser.parse_args()
    if args.mutant and args.phase == "a":
        parser.error("--mutant applies to phase B: use --phase b or all")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"reliability: no gateway binary at {binary} (build it first: swift build)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    random.seed(args.seed)

    logs, dirs = [], []
    began = time.monotonic()
    for name, run in (("a", lambda: phase_a(binary, args.seed, args.budget_a)),
                      ("b", lambda: phase_b(binary, args.seed, args.budget_b, args.chaos_b, args.kills, args.tenants_b, args.mutant))):
        if args.phase not in (name, "all"):
            continue
        before = len(GATEWAYS)
        try:
            data_dir, log_path = run()
            dirs.append(data_dir)
            logs.append(log_path)
        except Fatal as error:
            CHECKS.check(f"{name.upper()}: the phase ran to its end", False, str(error))
        except Exception as error:  # noqa: BLE001 - report, then go on to the next phase
            CHECKS.check(f"{name.upper()}: the phase ran to its end", False, f"{type(error).__name__}: {error}")
        for gateway in GATEWAYS[before:]:
            gateway.cleanup()
            if gateway.log_path not in logs:
                logs.append(gateway.log_path)
                dirs.append(gateway.data_dir)
        for process in Process.ALL:
            if process.proc is not None and process.proc.poll() is None:
                process.terminate()
            if process.log_path not in logs:
                logs.append(process.log_path)

    report("reliability", began, logs, dirs)
    return 1 if CHECKS.failed else 0


if __name__ == "__main__":
    run_main(main, cleanup_all)
