#!/usr/bin/env python3
"""Receives real event deliveries from a running sandbox gateway and verifies every one with the reference
Standard Webhooks library. Prints delivery throughput to this local receiver, and how the queue behaves while the
receiver is down for a few seconds. Then the receiver answers `410 Gone` once: deliveries must pause (docs/integrate.md:
"Answering 410 Gone switches deliveries off until an operator enables them again") — the endpoint reports itself
disabled, and nothing is delivered while the backlog builds — until POST /admin/events-endpoint/enable, after which
the backlog drains. Exits non-zero on any failed check: an unverifiable delivery, a lost event, a delivery while paused.

    python3 scripts/events_check.py [tenants] [--binary .build/debug/gateway]
    python3 scripts/events_check.py 20 --mutant ignore-410   # self-test: the 410 never reaches the gateway; must fail

`--mutant ignore-410` puts a relay between the gateway and the receiver that hands the gateway a 503 where the
receiver answered 410: what the receiver sees is a gateway that keeps delivering after a 410.
"""
import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklib import Checks, Gateway, free_port, nif as company_nif, serve_in_background  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("tenants", nargs="?", type=int, default=100, help="tenants of the healthy run (default 100)")
parser.add_argument("--binary", help="the built gateway (default: swift build --show-bin-path)/gateway")
parser.add_argument("--mutant", choices=("ignore-410",), help="self-test: the gateway never learns of the 410; the check must fail")
args = parser.parse_args()
N = args.tenants
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
verifier = Webhook(secret)
check = Checks()


class Stop(Exception):
    """A failed check that leaves nothing after it to check."""


class Receiver(BaseHTTPRequestHandler):
    lock = threading.Lock()
    verified, bad, answered_down = {}, [], 0
    down = False
    gone_once = False
    answered_gone = 0
    # Every POST that reached the receiver (any answer), for "nothing is delivered while paused".
    posts = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Receiver.lock:
            Receiver.posts += 1
            if Receiver.gone_once:
                Receiver.gone_once = False
                Receiver.answered_gone += 1
                self.send_response(410)
                self.end_headers()
                return
            if Receiver.down:
                Receiver.answered_down += 1
                self.send_response(503)
                self.end_headers()
                return
            try:
                event = verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
                Receiver.verified.setdefault(self.headers["webhook-id"], []).append((time.monotonic(), event["type"]))
            except Exception as error:  # noqa: BLE001 - any failure to verify is a failure of the check
                Receiver.bad.append(str(error))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def nif(n):
    return company_nif("%07d" % n)


class Server(ThreadingHTTPServer):
    # The default listen backlog of 5 drops connections when the gateway delivers for many tenants at once.
    request_queue_size = 256


class GoneHidden(BaseHTTPRequestHandler):
    """The mutant `ignore-410`: relays each delivery to the receiver, and answers the gateway 503 where the receiver
    answered 410."""
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        connection = http.client.HTTPConnection("127.0.0.1", receiver_port, timeout=15)
        try:
            connection.request("POST", self.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        finally:
            connection.close()
        self.send_response(503 if status == 410 else status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


receiver_port = free_port()
server = Server(("127.0.0.1", receiver_port), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
events_port = receiver_port
if args.mutant == "ignore-410":
    events_port = serve_in_background(GoneHidden).server_address[1]
    print(f"MUTANT ignore-410: deliveries go through a relay on {events_port} that turns the receiver's 410 into a 503")

data = tempfile.mkdtemp(prefix="gw-events-")
binary = os.path.abspath(args.binary) if args.binary else (
    subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=root, text=True).strip() + "/gateway")
gateway = Gateway(binary, data, settings=dict(
    LOG_LEVEL="warning", GATEWAY_EVENTS_URL=f"http://127.0.0.1:{events_port}/events", GATEWAY_EVENTS_SECRET=secret,
    GATEWAY_WORKER_INTERVAL_SECONDS="0.05"))
base = f"http://127.0.0.1:{gateway.port}"
try:
    if not gateway.start_or_fail(check, "the gateway is ready"):
        raise Stop()
    key = gateway.key

    def create(i):
        body = json.dumps({"provider": "magnifinance", "external_id": f"co-{i}",
                           "profile": {"company": {"tax_id": nif(i), "country": "PT"}}}).encode()
        request = urllib.request.Request(base + "/v1/tenants", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201, response.status

    def wait_for(count, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with Receiver.lock:
                if len(Receiver.verified) >= count:
                    return True
                if Receiver.bad and len(Receiver.verified) + len(Receiver.bad) >= count:
                    return False  # everything arrived, not everything verified: no use waiting
            time.sleep(0.05)
        return False

    # 1. A healthy receiver: every new MagniFinance company makes 3 events.
    started = time.monotonic()
    for i in range(N):
        create(i)
    created = time.monotonic()
    ok = wait_for(3 * N, 120)
    if not ok:
        # Nothing below means anything without deliveries that arrive and verify: report, and stop here.
        check(False, f"healthy: all {3 * N} events delivered and verified",
              f"{len(Receiver.verified)} verified, {len(Receiver.bad)} failed verification: {Receiver.bad[:3]}")
        raise Stop()
    times = sorted(t for hits in Receiver.verified.values() for t, _ in hits)
    span = max(times[-1] - times[0], 1e-6)
    print(f"healthy: {3 * N} events from {N} tenants created in {created - started:.2f} s; "
          f"all delivered and verified {times[-1] - started:.2f} s after the first request; "
          f"delivery rate while events flowed {len(times) / span:.0f} events/s")
    check(ok, f"healthy: all {3 * N} events delivered and verified", f"{len(Receiver.verified)} arrived")

    # 2. The receiver is down for 3 s while 20 more tenants are onboarded.
    Receiver.down = True
    down_at = time.monotonic()
    for i in range(N, N + 20):
        create(i)
    time.sleep(max(0, 3 - (time.monotonic() - down_at)))
    Receiver.down = False
    up_at = time.monotonic()
    ok = wait_for(3 * (N + 20), 60)
    last = max(t for hits in Receiver.verified.values() for t, _ in hits)
    print(f"receiver down {up_at - down_at:.1f} s: {Receiver.answered_down} attempts answered 503; "
          f"all 60 queued events delivered {last - up_at:.1f} s after it came back (first retry is ~5 s after a failure)")
    check(ok, f"receiver down: all {3 * (N + 20)} events delivered once it is back", f"{len(Receiver.verified)} arrived")

    # 3. The endpoint answers 410 once: deliveries pause (the endpoint is disabled, nothing goes out while a backlog
    #    builds) until an operator enables it again; then the backlog drains (pure delivery throughput).
    admin = gateway.secrets["admin_token"]

    def admin_call(method, path):
        request = urllib.request.Request(base + path, data=b"" if method == "POST" else None, method=method,
                                         headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    before = admin_call("GET", "/admin/events-endpoint")
    check(before.get("enabled") is True, "the events endpoint is enabled before the 410", json.dumps(before))
    Receiver.gone_once = True
    create(N + 20)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Receiver.gone_once:
        time.sleep(0.05)
    check(Receiver.answered_gone == 1, "the receiver answered 410 Gone to a delivery")
    state = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = admin_call("GET", "/admin/events-endpoint")
        if state.get("enabled") is False:
            break
        time.sleep(0.1)
    check(state.get("enabled") is False and state.get("disabled_at") is not None,
          "after the 410 the events endpoint reports itself disabled", json.dumps(state))
    with Receiver.lock:
        posts_at_pause = Receiver.posts
    backlog_tenants = 3 * N
    for i in range(N + 21, N + 21 + backlog_tenants):
        create(i)
    # The worker runs every 50 ms: two seconds are forty rounds in which nothing may go out.
    time.sleep(2)
    paused = admin_call("GET", "/admin/events-endpoint")
    with Receiver.lock:
        posts_while_paused = Receiver.posts - posts_at_pause
    backlog = 3 * backlog_tenants  # the backlog's events (and, uncounted here, the two that followed the one answered 410)
    check(posts_while_paused == 0, "nothing is delivered while the endpoint is paused",
          f"{posts_while_paused} deliveries reached the receiver in the 2 s after {backlog_tenants} tenants were created")
    check(paused.get("enabled") is False and (paused.get("pending") or 0) >= backlog,
          f"the backlog waits: the endpoint still disabled with at least {backlog} events pending", json.dumps(paused))
    expected = 3 * (N + 21 + backlog_tenants)
    enabled_at = time.monotonic()
    enabled = admin_call("POST", "/admin/events-endpoint/enable")
    check(enabled.get("enabled") is True, "POST /admin/events-endpoint/enable enables it again", json.dumps(enabled))
    ok = wait_for(expected, 120)
    drained = time.monotonic() - enabled_at
    print(f"backlog of {expected - 3 * (N + 20)} events drained in {drained:.2f} s after the endpoint was enabled: "
          f"{(expected - 3 * (N + 20)) / drained:.0f} events/s")
    check(ok, f"after it is enabled the backlog drains: all {expected} events delivered", f"{len(Receiver.verified)} arrived")

    duplicates = sum(len(hits) - 1 for hits in Receiver.verified.values())
    print(f"verified {len(Receiver.verified)} distinct webhook-ids with the standardwebhooks library; "
          f"{duplicates} repeats; {len(Receiver.bad)} failed verification")
    check(not Receiver.bad, "every delivery verified with the standardwebhooks library", "; ".join(Receiver.bad[:3]))
except Stop:
    pass
finally:
    gateway.stop(limit=30)
    server.shutdown()
check.report("events check")
