"""What the end-to-end check scripts share: reporting, a free loopback port, waiting for a condition, a receiver."""
import http.server
import socket
import sys
import threading
import time


class Checks:
    """Named assertions, printed as they pass or fail, and the one report every check script ends with.

    `checks.check(what, ok, detail)` and `checks(ok, what, detail)` record one assertion (and return `ok`); `passed`
    lists what passed, `failed` what failed with its detail (`failures`: only the names). `checks.report(name)`
    prints "name: N passed, N failed" and exits the process with status 1 when any check failed or none ran at all;
    otherwise it returns 0. A script therefore cannot end green with a failed check, or with nothing checked."""

    def __init__(self):
        self.passed, self.failed = [], []

    def check(self, what, ok, detail=""):
        ok = bool(ok)
        if ok:
            self.passed.append(what)
            log(f"[{time.strftime('%H:%M:%S')}] PASS {what}" + (f" ({detail})" if detail else ""))
        else:
            self.failed.append((what, detail))
            log(f"[{time.strftime('%H:%M:%S')}] FAIL {what}" + (f": {detail}" if detail else ""))
        return ok

    def __call__(self, condition, what, detail=""):
        return self.check(what, condition, detail)

    @property
    def failures(self):
        return [what for what, _ in self.failed]

    def report(self, name):
        """The closing line; exits 1 when a check failed or nothing was checked, else returns 0."""
        if not self.passed and not self.failed:
            self.failed.append(("anything was checked", "no check ran"))
            log("FAIL anything was checked: no check ran")
        if self.failed:
            log("\nFailed:\n" + "\n".join(f"  - {what}" + (f": {detail}" if detail else "") for what, detail in self.failed))
        log(f"{name}: {len(self.passed)} passed, {len(self.failed)} failed")
        if self.failed:
            sys.exit(1)
        return 0


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


def run_main(main, cleanup):
    """A check script's entry point: runs `main`, always ends the processes it started (`cleanup`), even on ^C,
    and exits with main's code (130 when interrupted)."""
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    finally:
        cleanup()
    sys.exit(code)
