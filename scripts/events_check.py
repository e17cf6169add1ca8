#!/usr/bin/env python3
"""Receives real event deliveries from a running sandbox gateway and verifies every one with the reference
Standard Webhooks library. Prints delivery throughput to this local receiver, and how the queue behaves while the
receiver is down for a few seconds. Exits non-zero on any unverifiable delivery or lost event.

    python3 scripts/events_check.py [tenants]        (needs a built gateway: swift build --product gateway)
"""
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
verifier = Webhook(secret)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver(BaseHTTPRequestHandler):
    lock = threading.Lock()
    verified, bad, answered_down = {}, [], 0
    down = False
    gone_once = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Receiver.lock:
            if Receiver.gone_once:
                Receiver.gone_once = False
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
    digits = [5] + [int(c) for c in "%07d" % n]
    total = sum(d * (9 - i) for i, d in enumerate(digits))
    check = 0 if total % 11 < 2 else 11 - total % 11
    return "".join(map(str, digits)) + str(check)


class Server(ThreadingHTTPServer):
    # The default listen backlog of 5 drops connections when the gateway delivers for many tenants at once.
    request_queue_size = 256


receiver_port, gateway_port = free_port(), free_port()
server = Server(("127.0.0.1", receiver_port), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()

data = tempfile.mkdtemp(prefix="gw-events-")
binary = subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=root, text=True).strip() + "/gateway"
env = dict(os.environ, GATEWAY_DATA_DIR=data, GATEWAY_PORT=str(gateway_port), LOG_LEVEL="warning",
           GATEWAY_EVENTS_URL=f"http://127.0.0.1:{receiver_port}/events", GATEWAY_EVENTS_SECRET=secret,
           GATEWAY_WORKER_INTERVAL_SECONDS="0.05")
gateway = subprocess.Popen([binary, "serve", "--sandbox"], env=env, stdout=open(os.path.join(data, "gateway.log"), "w"),
                           stderr=subprocess.STDOUT)
base = f"http://127.0.0.1:{gateway_port}"
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/readyz", timeout=1)
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    key = json.load(open(os.path.join(data, "sandbox-secrets.json")))["api_key"]

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
            time.sleep(0.05)
        return False

    # 1. A healthy receiver: every new MagniFinance company makes 3 events.
    started = time.monotonic()
    for i in range(N):
        create(i)
    created = time.monotonic()
    ok = wait_for(3 * N, 120)
    times = sorted(t for hits in Receiver.verified.values() for t, _ in hits)
    span = max(times[-1] - times[0], 1e-6)
    print(f"healthy: {3 * N} events from {N} tenants created in {created - started:.2f} s; "
          f"all delivered and verified {times[-1] - started:.2f} s after the first request; "
          f"delivery rate while events flowed {len(times) / span:.0f} events/s")
    assert ok, f"only {len(Receiver.verified)} of {3 * N} events arrived"

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
    assert ok, f"only {len(Receiver.verified)} of {3 * (N + 20)} events arrived"

    # 3. Pure delivery throughput: the endpoint answers 410 once (deliveries pause), a backlog builds, an operator
    #    enables the endpoint again, and the backlog drains.
    admin = json.load(open(os.path.join(data, "sandbox-secrets.json")))["admin_token"]
    Receiver.gone_once = True
    create(N + 20)
    time.sleep(0.5)
    backlog_tenants = 3 * N
    for i in range(N + 21, N + 21 + backlog_tenants):
        create(i)
    expected = 3 * (N + 21 + backlog_tenants)
    request = urllib.request.Request(base + "/admin/events-endpoint/enable", data=b"", method="POST",
                                     headers={"Authorization": f"Bearer {admin}"})
    enabled_at = time.monotonic()
    urllib.request.urlopen(request, timeout=10)
    ok = wait_for(expected, 120)
    drained = time.monotonic() - enabled_at
    print(f"backlog of {expected - 3 * (N + 20)} events drained in {drained:.2f} s after the endpoint was enabled: "
          f"{(expected - 3 * (N + 20)) / drained:.0f} events/s")
    assert ok, f"only {len(Receiver.verified)} of {expected} events arrived"

    duplicates = sum(len(hits) - 1 for hits in Receiver.verified.values())
    print(f"verified {len(Receiver.verified)} distinct webhook-ids with the standardwebhooks library; "
          f"{duplicates} repeats; {len(Receiver.bad)} failed verification")
    assert not Receiver.bad, Receiver.bad[:3]
finally:
    gateway.terminate()
    gateway.wait(timeout=30)
    server.shutdown()
