"""What the end-to-end check scripts share: reporting, a free loopback port, waiting for a condition, a receiver."""
import http.server
import socket
import threading
import time


class Checks:
    """Named assertions, printed as they pass or fail; `failures` lists what failed."""

    def __init__(self):
        self.failures = []

    def __call__(self, condition, what):
        print(("ok    " if condition else "FAIL  ") + what, flush=True)
        if not condition:
            self.failures.append(what)
        return condition


def log(message):
    print(message, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
