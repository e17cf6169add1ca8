#!/usr/bin/env python3
"""The gateway's benchmark suite: every hot path measured from outside with wrk, beside a same-run baseline.

    scripts/bench.sh            # release build, full run (several minutes), the table at the end
    scripts/bench.sh --smoke    # seconds per path, small counts: proves the suite runs (CI); figures are noise

Runs, each on a free loopback port: nginx `return 200` (a reference, when nginx is installed), Hummingbird's hello
world (`bench-hello`, the baseline every ratio divides by), and the gateway in sandbox mode. Measures GET of one
tenant and of a list page, durable Wrapp webhook intake, creates against a provider that answers at once, access
tokens handed out from the token kept, the provider proxy's added latency over a simulator that answers at once, 1,000
concurrent onboardings against a provider that answers in 1 s, and reads at 1,000,000 tenants loaded through the
gateway's own store (`bench-load`). Prints one table (and writes it as JSON with --json). These machines are shared
and noisy, so figures are printed, never judged; what is judged is that they are figures of answers: every rate counts
only successful (2xx) answers, and a path whose answers were not successes (more than 2 % errors: other statuses,
timeouts, broken connections; or no success at all) fails the run, smoke included. Likewise the access-token row
fails the run when its requests made a provider login beyond the first request's one: it would have measured
logins, not the token kept.

    python3 scripts/bench.py --bin .build/debug --smoke --mutant errors   # self-test: every answer a 503; must fail
    python3 scripts/bench.py --gateway /tmp/gw/gateway --only tokens      # one section, a given gateway binary
"""
import argparse
import http.server
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checklib  # noqa: E402
from checklib import CHECKS, ROOT, Process, free_port, judge, log, serve_in_background, start_gateway  # noqa: E402

KEY = "gw_bench_partner_key_not_a_secret_0123456789"
# What --only may name, in the order they run: nginx and the hello world (the baseline every ratio divides by; without
# it, ratios are blank); the reads, webhooks and creates (and the same read at LOG_LEVEL=warning); access tokens and the
# provider proxy; the slow provider; the large database.
SECTIONS = ("references", "reads", "tokens", "slow", "large")
rows = []
# The self-test's mutant: when set, every wrk run goes to this loopback port, a server that answers 503 to everything.
ERRORS_PORT = None


class AlwaysUnavailable(http.server.BaseHTTPRequestHandler):
    """The mutant `errors`: a target whose every answer is a 503."""
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"status":503}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def handle(self):
        try:
            super().handle()
        except ConnectionError:  # wrk closes its connections mid-request when its time is up
            pass

    def log_message(self, *args):
        pass


def add(path, figure, unit, baseline=None, note=""):
    ratio = f"{figure / baseline:.2f}" if baseline else ""
    rows.append({"path": path, "figure": figure, "unit": unit, "baseline": baseline, "ratio": ratio, "note": note})
    log(f"  {path}: {figure:,.1f} {unit}" + (f" (ratio {ratio})" if ratio else "") + (f"  {note}" if note else ""))


def http(method, url, body=None, headers=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wrk(url, script, seconds, **options):
    """checklib's wrk run (see there), sent to the mutant's server when it runs."""
    return checklib.wrk(url, script, seconds, redirect_port=ERRORS_PORT, **options)


def status_mb(pid, field):
    """A memory figure of /proc/PID/status (VmRSS now, VmHWM the peak), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid):
    return status_mb(pid, "VmRSS")


def peak_rss_mb(pid):
    return status_mb(pid, "VmHWM")


def wrapp_calls(base):
    """The sandbox Wrapp simulator's calls so far, by path (`/login`, `/tenant_details`, …)."""
    status, answer = http("GET", f"{base}/sandbox/wrapp/_control/calls")
    assert status == 200, (status, answer)
    return answer["calls"]


def settled_wrapp_calls(base, quiet_for=0.5, within=5):
    """The Wrapp simulator's calls once they have stopped changing for `quiet_for` seconds (the worker done with the
    tenant it just made active), or after `within` seconds."""
    calls, since, deadline = wrapp_calls(base), time.monotonic(), time.monotonic() + within
    while time.monotonic() - since < quiet_for and time.monotonic() < deadline:
        time.sleep(0.1)
        now = wrapp_calls(base)
        if now != calls:
            calls, since = now, time.monotonic()
    return calls


def active_wrapp_tenant(base, auth, external_id, within=30):
    """A Wrapp tenant made active as a customer makes it: created, its sandbox customer logged in (the simulator sends
    the webhook with the API key), then the worker's turn (about a second). Returns its id."""
    status, tenant = http("POST", f"{base}/v1/tenants", {
        "provider": "wrapp", "external_id": external_id, "profile": {"email": "maria@example.com", "phone": "+302101234567"},
    }, auth)
    assert status in (201, 202), (status, tenant)
    status, answer = http("POST", f"{base}/sandbox/test-helpers/wrapp/customers/{external_id}/complete-login")
    assert status == 200, (status, answer)
    deadline = time.monotonic() + within
    while True:
        status, tenant = http("GET", f"{base}/v1/tenants/{tenant['id']}", headers=auth)
        if status == 200 and tenant["state"] == "active":
            return tenant["id"]
        if time.monotonic() > deadline:
            raise checklib.Fatal(f"the bench's Wrapp tenant is not active {within} s after its login: {status} {tenant}")
        time.sleep(0.05)


def timed_start(binary, data_dir, port, extra_env=None, log_path=None):
    """The sandbox gateway with the bench's key, started; (it, the seconds from start to /readyz). It runs as shipped:
    the default log level and format (`info`, JSON), so every request writes its access line, as users run it."""
    started = time.monotonic()
    gateway = start_gateway(binary, data_dir, port, name="bench gateway", log_path=log_path, ready_within=60, every=0.02,
                            settings={"GATEWAY_API_KEY": KEY, **(extra_env or {})})
    return gateway, time.monotonic() - started


def reference(name, command, port, work):
    """nginx or the hello world, started and answering GET / with 200."""
    process = Process(name, command, dict(os.environ), os.path.join(work, f"{name}.log"))
    process.start(port, "/", limit=60, every=0.02)
    return process


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", help="folder with gateway, bench-hello and bench-load (not needed when --gateway is given "
                                      "and --only leaves out references and large)")
    parser.add_argument("--gateway", default=os.environ.get("GATEWAY_BENCH_BINARY") or None,
                        help="the gateway binary to measure (default $GATEWAY_BENCH_BINARY, else BIN/gateway)")
    parser.add_argument("--only", help=f"comma-separated sections to run, of {','.join(SECTIONS)} (default all)")
    parser.add_argument("--smoke", action="store_true", help="seconds per path and small counts (CI)")
    parser.add_argument("--seconds", type=int, help="wrk duration per path (default 10, smoke 2)")
    parser.add_argument("--tenants", type=int, help="tenants for the large-database reads (default 1,000,000, smoke 5,000)")
    parser.add_argument("--concurrent", type=int, help="concurrent onboardings against the slow provider (default 1,000, smoke 100)")
    parser.add_argument("--json", help="also write the table here as JSON")
    parser.add_argument("--mutant", choices=("errors",),
                        help="self-test: every measured request goes to a server that answers 503; the run must fail")
    args = parser.parse_args()
    sections = set(args.only.split(",")) if args.only else set(SECTIONS)
    if sections - set(SECTIONS):
        parser.error(f"--only: no section {', '.join(sorted(sections - set(SECTIONS)))}; the sections are {','.join(SECTIONS)}")
    if not args.bin and (not args.gateway or sections & {"references", "large"}):
        parser.error("--bin is needed: for bench-hello (references), bench-load (large), and the gateway unless --gateway is given")
    if args.mutant == "errors":
        global ERRORS_PORT
        ERRORS_PORT = serve_in_background(AlwaysUnavailable).server_address[1]
        log(f"MUTANT errors: every wrk run goes to 127.0.0.1:{ERRORS_PORT}, which answers 503 to everything")
    seconds = args.seconds or (2 if args.smoke else 10)
    tenants = args.tenants or (5_000 if args.smoke else 1_000_000)
    concurrent = args.concurrent or (100 if args.smoke else 1_000)
    binary = os.path.abspath(args.gateway or os.path.join(args.bin, "gateway"))
    work = tempfile.mkdtemp(prefix="gw-bench-")
    run = str(int(time.time()))
    started_at = time.strftime("%Y-%m-%d %H:%M")
    processes = []
    auth = {"Authorization": f"Bearer {KEY}"}
    # The protective defaults (4 calls at once, 50 a second per provider) are raised: the figure is the gateway's.
    fast_env = {"GATEWAY_PROVIDER_CONCURRENCY": "64", "GATEWAY_PROVIDER_RATE_LIMIT": "0"}
    # Without the references there is no baseline, and the ratios are blank.
    baseline = hello_rss = None
    try:
        log(f"== bench ({'smoke' if args.smoke else 'full'}): wrk {seconds} s per path, -c32 -t1, work in {work}")
        log(f"   gateway {binary}; sections {','.join(name for name in SECTIONS if name in sections)}")

        if "references" in sections:
            # The references: nginx (when installed) and the framework's own hello world.
            if shutil.which("nginx"):
                nginx_port = free_port()
                conf = os.path.join(work, "nginx.conf")
                with open(conf, "w") as f:
                    f.write(
                        f"worker_processes 1; daemon off; pid {work}/nginx.pid; error_log {work}/nginx-error.log;\n"
                        f"events {{ worker_connections 4096; }}\n"
                        f"http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};"
                        f" uwsgi_temp_path {work}; scgi_temp_path {work};\n"
                        f"  server {{ listen 127.0.0.1:{nginx_port}; location / {{ return 200 'ok'; }} }} }}\n"
                    )
                nginx = reference("nginx", ["nginx", "-c", conf, "-p", work], nginx_port, work)
                processes.append(nginx)
                add("nginx `return 200` (reference)", judge("nginx", wrk(f"http://127.0.0.1:{nginx_port}/", "get.lua", seconds))["rps"], "req/s")
                nginx.stop()
            hello_port = free_port()
            hello = reference("hello", [os.path.join(args.bin, "bench-hello"), str(hello_port)], hello_port, work)
            processes.append(hello)
            baseline = judge("hello world", wrk(f"http://127.0.0.1:{hello_port}/", "get.lua", seconds))["rps"]
            add("Hummingbird hello world (baseline)", baseline, "req/s", baseline)
            hello_rss = rss_mb(hello.proc.pid)
            hello.stop()

        if "reads" in sections:
            # The gateway, fresh, sandbox providers answering at once.
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            gateway, start_s = timed_start(binary, os.path.join(work, "data"), port, fast_env, log_path=os.path.join(work, "gateway.log"))
            processes.append(gateway)
            time.sleep(1)
            add("start to /readyz", start_s, "s")
            add("idle RSS (sandbox)", rss_mb(gateway.proc.pid), "MB", note=f"hello world {hello_rss:.1f} MB" if hello_rss else "")
            add("GET /healthz", judge("GET /healthz", wrk(f"{base}/healthz", "get.lua", seconds))["rps"], "req/s", baseline)
            ids = []
            for i in range(25):
                status, tenant = http("POST", f"{base}/v1/tenants", {
                    "provider": "wrapp", "external_id": f"seed-{run}-{i}", "profile": {"email": f"seed{i}@example.com", "phone": "+302101234567"},
                }, auth)
                assert status in (201, 202), (status, tenant)
                ids.append(tenant["id"])
            report = judge("GET /v1/tenants/{id}", wrk(f"{base}/v1/tenants/{ids[0]}", "get.lua", seconds, env={"BENCH_KEY": KEY}))
            add("GET /v1/tenants/{id}", report["rps"], "req/s", baseline, note=f"p99 {report['p99_us'] / 1000:.1f} ms")
            report = judge("GET /v1/tenants?limit=20", wrk(f"{base}/v1/tenants?limit=20", "get.lua", seconds, env={"BENCH_KEY": KEY}))
            add("GET /v1/tenants?limit=20", report["rps"], "req/s", baseline, note=f"p99 {report['p99_us'] / 1000:.1f} ms")

            # Webhook intake: unique payloads for one Wrapp customer, each stored durably before its answer.
            status, customer = http("GET", f"{base}/sandbox/test-helpers/wrapp/customers/seed-{run}-0")
            webhook = customer["webhook_endpoint"].replace(customer["webhook_endpoint"].split("/webhooks/")[0], base)
            report = judge("Wrapp webhook intake", wrk(webhook, "webhook.lua", seconds, env={"BENCH_EXTERNAL_ID": f"seed-{run}-0", "BENCH_RUN": run}))
            stored = report["ok"]
            add("Wrapp webhook intake (unique, durable)", stored / (report["duration_us"] / 1e6), "req/s",
                note=f"p99 {report['p99_us'] / 1000:.1f} ms, {stored} stored, statuses {report['statuses']}")

            # The mixed load a partner's real traffic is: reads (one tenant and pages, 16 connections) and webhook
            # intake (4 connections) at once, each with its own rate and latency; beside it, the same intake alone at
            # 4 connections. A fair share: each of the three loads keeps about the same fraction of its rate alone.
            alone = judge("webhook intake alone, 4 connections", wrk(webhook, "webhook.lua", seconds, connections=4,
                                                                    env={"BENCH_EXTERNAL_ID": f"seed-{run}-0", "BENCH_RUN": run + "a"}))
            add("Wrapp webhook intake alone, 4 connections", alone["ok"] / (alone["duration_us"] / 1e6), "req/s",
                note=f"p50 {alone['p50_us'] / 1000:.1f} ms, p99 {alone['p99_us'] / 1000:.1f} ms")
            with ThreadPoolExecutor(3) as pool:
                mixed_get = pool.submit(wrk, f"{base}/v1/tenants/{ids[0]}", "get.lua", seconds, connections=8, env={"BENCH_KEY": KEY})
                mixed_list = pool.submit(wrk, f"{base}/v1/tenants?limit=20", "get.lua", seconds, connections=8, env={"BENCH_KEY": KEY})
                mixed_hooks = pool.submit(wrk, webhook, "webhook.lua", seconds, connections=4,
                                          env={"BENCH_EXTERNAL_ID": f"seed-{run}-0", "BENCH_RUN": run + "m"})
                for name, future in (("GET /v1/tenants/{id}", mixed_get), ("GET /v1/tenants?limit=20", mixed_list),
                                     ("Wrapp webhook intake", mixed_hooks)):
                    report = judge(f"mixed: {name}", future.result())
                    add(f"mixed load: {name}", report["ok"] / (report["duration_us"] / 1e6), "req/s",
                        note=f"p50 {report['p50_us'] / 1000:.1f} ms, p99 {report['p99_us'] / 1000:.1f} ms")

            # Creates against a provider that answers at once.
            report = judge("POST /v1/tenants", wrk(f"{base}/v1/tenants", "create.lua", seconds, env={"BENCH_KEY": KEY, "BENCH_RUN": run + "c"}))
            made = report["statuses"].get("201", 0)
            add("POST /v1/tenants (provider answers at once)", made / (report["duration_us"] / 1e6), "req/s",
                note=f"p50 {report['p50_us'] / 1000:.1f} ms, p99 {report['p99_us'] / 1000:.1f} ms, statuses {report['statuses']}")
            gateway.stop()
            processes.remove(gateway)

            # The access line's cost: the same read with LOG_LEVEL=warning, which writes no line per request.
            port = free_port()
            quiet, _ = timed_start(binary, os.path.join(work, "data"), port, {**fast_env, "LOG_LEVEL": "warning"},
                                   log_path=os.path.join(work, "quiet.log"))
            processes.append(quiet)
            report = judge("GET /v1/tenants/{id} at warning", wrk(f"http://127.0.0.1:{port}/v1/tenants/{ids[0]}", "get.lua", seconds, env={"BENCH_KEY": KEY}))
            add("GET /v1/tenants/{id} with LOG_LEVEL=warning (no access line)", report["rps"], "req/s", baseline,
                note=f"p99 {report['p99_us'] / 1000:.1f} ms; the row above at the shipped info level")
            quiet.stop()
            processes.remove(quiet)

        if "tokens" in sections:
            # Credentials ready to use, on a gateway of their own (no other tenants' work in its worker): one Wrapp
            # tenant made active; its first access-token request logs in, every later one is answered from the token
            # kept, and the simulator's call counter shows it.
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            gateway, _ = timed_start(binary, os.path.join(work, "tokens"), port, fast_env, log_path=os.path.join(work, "tokens.log"))
            processes.append(gateway)
            tenant_id = active_wrapp_tenant(base, auth, f"bench-{run}")
            logins_before = settled_wrapp_calls(base).get("/login", 0)
            for _ in range(3):  # 409 tenant_busy: the worker still held the tenant for longer than the lease wait
                status, grant = http("POST", f"{base}/v1/tenants/{tenant_id}/access-token", headers=auth)
                if status != 409:
                    break
            assert status == 200, (status, grant)
            first_logins = wrapp_calls(base).get("/login", 0) - logins_before
            report = judge("POST /v1/tenants/{id}/access-token", wrk(f"{base}/v1/tenants/{tenant_id}/access-token", "post.lua", seconds,
                                                                     env={"BENCH_KEY": KEY}))
            logins = wrapp_calls(base).get("/login", 0) - logins_before
            add("POST /v1/tenants/{id}/access-token (access tokens, cached)", report["rps"], "req/s", baseline,
                note=f"p50 {report['p50_us'] / 1000:.1f} ms, p99 {report['p99_us'] / 1000:.1f} ms; Wrapp /login calls: {logins} "
                     f"for {report['ok'] + 1:,} tokens")

            # The proxy's added latency: the same Wrapp call through the proxy and straight to the simulator (served by
            # the same process, answering at once, with the token just handed out), at 4 connections: the call's own
            # time, not a queue's.
            details = f"{base}/v1/tenants/{tenant_id}/provider/tenant_details"
            proxied = judge("GET …/provider/tenant_details", wrk(details, "get.lua", seconds, connections=4, env={"BENCH_KEY": KEY}))
            direct = judge("GET /sandbox/wrapp/tenant_details", wrk(f"{base}/sandbox/wrapp/tenant_details", "get.lua", seconds, connections=4,
                                                                    env={"BENCH_KEY": grant["token"]}))
            add("Wrapp tenant_details, the simulator directly (4 connections): p99", direct["p99_us"] / 1000, "ms",
                note=f"p50 {direct['p50_us'] / 1000:.2f} ms, {direct['rps']:,.0f} req/s")
            add("Wrapp tenant_details through the provider proxy (4 connections): p99", proxied["p99_us"] / 1000, "ms",
                note=f"p50 {proxied['p50_us'] / 1000:.2f} ms, {proxied['rps']:,.0f} req/s")
            add("provider proxy added latency (proxy minus direct): p99", (proxied["p99_us"] - direct["p99_us"]) / 1000, "ms",
                note=f"p50 {(proxied['p50_us'] - direct['p50_us']) / 1000:+.2f} ms; the two rows above")
            logins = wrapp_calls(base).get("/login", 0) - logins_before
            CHECKS.check("access tokens and proxied calls made one Wrapp /login at most, the first token request's",
                         logins == first_logins <= 1,
                         f"{logins} /login calls for {report['ok'] + 1} tokens and {proxied['ok']} proxied calls, "
                         f"{first_logins} of them by the first token request")
            gateway.stop()
            processes.remove(gateway)

        if "slow" in sections:
            # Many concurrent onboardings against a provider that answers every call in 1 s.
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            slow_env = {
                "GATEWAY_SANDBOX_PROVIDER_DELAY_MS": "1000", "GATEWAY_PROVIDER_CONCURRENCY": str(concurrent * 2),
                "GATEWAY_PROVIDER_RATE_LIMIT": str(concurrent * 4),
            }
            gateway, _ = timed_start(binary, os.path.join(work, "slow"), port, slow_env, log_path=os.path.join(work, "slow.log"))
            processes.append(gateway)
            report = judge(f"{concurrent} concurrent onboardings", wrk(
                f"{base}/v1/tenants", "create.lua", max(seconds, 5), connections=concurrent, threads=2,
                env={"BENCH_KEY": KEY, "BENCH_RUN": run + "s"}, timeout_s=30))
            accepted = report["statuses"].get("201", 0) + report["statuses"].get("202", 0)
            add(f"{concurrent} concurrent onboardings, provider takes 1 s: accepted", accepted / (report["duration_us"] / 1e6), "req/s",
                note=f"statuses {report['statuses']}, errors {report['errors']}")
            add(f"{concurrent} concurrent onboardings: p50 / p99 overhead over the provider's 1 s",
                (report["p99_us"] - 1_000_000) / 1000, "ms", note=f"p50 {(report['p50_us'] - 1_000_000) / 1000:.1f} ms")
            add(f"{concurrent} concurrent onboardings: peak RSS", peak_rss_mb(gateway.proc.pid), "MB")
            gateway.stop()
            processes.remove(gateway)

            # The same number of creates held in flight at once (the provider takes 6 s; wrk stops after 4, each
            # connection having sent one): the memory a create in flight costs, without the churn of connections
            # that makes the row above move between runs. Not judged: no answer comes within the run.
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            held_env = dict(slow_env, GATEWAY_SANDBOX_PROVIDER_DELAY_MS="6000")
            gateway, _ = timed_start(binary, os.path.join(work, "held"), port, held_env, log_path=os.path.join(work, "held.log"))
            processes.append(gateway)
            idle_mb = rss_mb(gateway.proc.pid)
            wrk(f"{base}/v1/tenants", "create.lua", 4, connections=concurrent, threads=2,
                env={"BENCH_KEY": KEY, "BENCH_RUN": run + "h"}, timeout_s=30)
            held_mb = peak_rss_mb(gateway.proc.pid)
            add(f"{concurrent} creates held in flight: peak RSS", held_mb, "MB",
                note=f"{(held_mb - idle_mb) * 1024 / concurrent:.0f} KB per create in flight over {idle_mb:.1f} MB at start")
            gateway.stop()
            processes.remove(gateway)

        if "large" in sections:
            # A large database, loaded through the gateway's own store, read through HTTP.
            big = os.path.join(work, "big")
            load_started = time.monotonic()
            out = subprocess.run([os.path.join(args.bin, "bench-load"), big, str(tenants)], cwd=ROOT, capture_output=True, text=True, check=True).stdout
            loaded = json.loads(out.strip().splitlines()[-1])
            add(f"load {tenants:,} tenants through the store", tenants / (time.monotonic() - load_started), "tenants/s",
                note=f"{loaded['events']:,} events")
            add(f"disk per tenant at {tenants:,}", loaded["bytes"] / tenants, "bytes")
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            gateway, start_s = timed_start(binary, big, port, log_path=os.path.join(work, "big.log"))
            processes.append(gateway)
            add(f"start to /readyz at {tenants:,} tenants", start_s, "s")
            ids_file = os.path.join(work, "ids.txt")
            with open(ids_file, "w") as f:
                f.write("\n".join(random.sample(loaded["sample_ids"], len(loaded["sample_ids"]))))
            # Latency, not throughput: 4 connections, so the figure is the read's own time rather than a queue's.
            report = judge(f"GET /v1/tenants/{{id}} at {tenants:,}", wrk(f"{base}/v1/tenants/", "get_random.lua", seconds, connections=4,
                                                                         env={"BENCH_KEY": KEY, "BENCH_IDS": ids_file}))
            add(f"GET /v1/tenants/{{id}} at {tenants:,} (random ids, 4 connections): p99", report["p99_us"] / 1000, "ms",
                note=f"{report['rps']:,.0f} req/s, statuses {report['statuses']}")
            report = judge(f"GET /v1/tenants?limit=20&state=active at {tenants:,}",
                           wrk(f"{base}/v1/tenants?limit=20&state=active", "get.lua", seconds, connections=4, env={"BENCH_KEY": KEY}))
            add(f"GET /v1/tenants?limit=20&state=active at {tenants:,} (4 connections): p99", report["p99_us"] / 1000, "ms", note=f"{report['rps']:,.0f} req/s")
            gateway.stop()
            processes.remove(gateway)
    finally:
        for process in processes:
            process.stop()

    width = max(len(r["path"]) for r in rows)
    print()
    print(f"Benchmark ({'smoke: figures are noise' if args.smoke else 'full'}), {started_at}, {os.cpu_count()} cores, gateway {binary}")
    print(f"{'path'.ljust(width)}  {'figure':>12}  unit       ratio  note")
    for r in rows:
        print(f"{r['path'].ljust(width)}  {r['figure']:>12,.1f}  {r['unit']:<9}  {r['ratio']:>5}  {r['note']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": started_at, "smoke": args.smoke, "gateway": binary, "rows": rows}, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    print()
    return CHECKS.report("bench")


if __name__ == "__main__":
    sys.exit(main())
