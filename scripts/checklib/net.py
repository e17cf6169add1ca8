"""Loopback HTTP for the checks: a free port, one request, retrying, waiting for a condition, a receiver."""
import http.client as httplib
import http.server
import json
import socket
import threading
import time

HOST = "127.0.0.1"
# A transport failure: refused, reset, timed out, a broken answer.
TRANSIENT = (OSError, httplib.HTTPException)


def free_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Answer:
    """An HTTP answer: `status`, `headers` (lower-case names), `body` (bytes), `json` (None unless JSON), `code` (a
    problem's code)."""

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
    """One request on a fresh connection to 127.0.0.1:`port`; `body` is bytes as they are, anything else as JSON.
    Raises OSError/HTTPException on transport failures (refused, reset, timed out)."""
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


def retrying(request, limit=20.0):
    """`request()`'s answer, asked again on transport failures and 5xx for up to `limit` seconds."""
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


def wait_for(expect, what, probe, limit=30.0, every=0.3):
    """Polls `probe` until it answers something true; a failed check (with the last answer) after `limit` seconds."""
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        last = quietly(probe)
        if last:
            return last
        time.sleep(every)
    expect(False, f"{what} within {limit:.0f} s (last seen: {last!r})")
    return None


def quietly(call):
    """The call's answer, or False when it raised (a gateway not up yet, a page between loads)."""
    try:
        return call()
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


def serve_in_background(handler):
    """A threaded HTTP server of `handler` on a free loopback port, serving until the process ends; returns it
    (`server.server_address[1]` is its port, `server.shutdown()` stops it)."""
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
