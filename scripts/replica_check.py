#!/usr/bin/env python3
"""Three gateway replicas on one PostgreSQL, behind a real nginx, with one provider simulator process they share.

The replicas run as in production (`gateway serve`, not the sandbox): GATEWAY_DATABASE_URL names a fresh schema of
the server GATEWAY_TEST_POSTGRES_URL names, the providers are `gateway simulate` on its own port, GATEWAY_PUBLIC_URL
is nginx (so Wrapp's webhooks come in through it, to any replica), and events go to a receiver in this script that
verifies every signature with the reference Standard Webhooks library and fails 10 % of deliveries.

Load: 60 tenants, of every provider by turns (new and existing Wrapp customers, new and existing MagniFinance and
InvoiceXpress companies), are created through nginx by 8 clients that retry with the same Idempotency-Key; 10 % of
provider calls fail at random (InvoiceXpress's simulator has no random faults: it gets its scripted ones); customers
log in (Wrapp webhooks), type in their keys (Wrapp, InvoiceXpress), approve (MagniFinance polls). One replica is
killed with SIGKILL while the creates run, another while the tenants converge; each is restarted a few seconds later.

Afterwards: every acknowledged create exists once and replays to the same tenant, one tenant per external_id, no
company registered at once got a second AddPartner, the provider never saw two calls for one customer at once
(across replicas; from the simulators' call records, which InvoiceXpress's does not keep), every tenant is active and never was failed, the stored credentials are the provider's, every
event of the feed was delivered at least once and always under one webhook-id, and all three replicas served.

Then the figure: creates per second and Wrapp webhook intake per second with 1 and with 3 replicas behind the same
nginx, on the same PostgreSQL, in one run (wrk; 2 cores are shared by everything, so read it as a ratio).

    GATEWAY_TEST_POSTGRES_URL=$(scripts/postgres.sh start) python3 scripts/replica_check.py --binary .build/debug/gateway
"""
import argparse
import base64
import concurrent.futures
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklib import (  # noqa: E402 - processes, tenants, clients, the customers' driver, the checks, wrk
    CHECKS, FIGURES, HOST, PROVIDERS, QUICK_TIMINGS, ROOT, TRANSIENT, WRAPP, Counter, Driver, Fatal, Gateway, Process,
    SimulatedProviders, SimulatorControls, call, check_acknowledged_exist, check_all_active, check_credentials,
    check_history, check_one_per_external_id, check_provider_calls, cleanup_all, converge, create, describe, free_port,
    judge, make_existing, progress, provider_figures, retrying, run_main, serve_in_background, spec, wrk,
)

from standardwebhooks import Webhook  # noqa: E402


# MARK: - The event receiver


class Receiver(BaseHTTPRequestHandler):
    """Records every delivery by event id: the webhook-ids it came under. Fails a share of deliveries with 500."""
    lock = threading.Lock()
    verifier = None
    rng = random.Random(11)
    failure_rate = 0.1
    by_event = {}        # evt_… -> set of webhook-ids
    deliveries = 0
    failed_on_purpose = 0
    unverified = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with Receiver.lock:
            Receiver.deliveries += 1
            fail = Receiver.rng.random() < Receiver.failure_rate
            try:
                event = Receiver.verifier.verify(body, headers)
                Receiver.by_event.setdefault(event["id"], set()).add(headers.get("webhook-id"))
            except Exception as error:  # noqa: BLE001 - any failure to verify fails the check
                Receiver.unverified.append(f"{type(error).__name__}: {error}")
            if fail:
                Receiver.failed_on_purpose += 1
        self.send_response(500 if fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


# MARK: - nginx


def nginx_config(work, proxy_port, single_port, replica_ports):
    """deploy/nginx.conf, with what a test must change: loopback ports, files under `work`, an upstream of all the
    replicas, a second server (`single_port`) whose upstream is the first replica only (the 1-replica figure), and a
    test-only log of which upstream answered each request."""
    def swap(text, old, new):
        if text.count(old) != 1:
            raise Fatal(f"deploy/nginx.conf changed: expected exactly one {old!r}")
        return text.replace(old, new)

    text = open(os.path.join(ROOT, "deploy", "nginx.conf")).read()
    text = swap(text, "events {}", f"daemon off;\npid {work}/nginx.pid;\nerror_log {work}/nginx-error.log;\nworker_processes 1;\nevents {{ worker_connections 4096; }}")
    text = swap(text, "http {", f"""http {{
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    log_format upstreams '$server_port $upstream_addr $status';
    access_log {work}/upstreams.log upstreams;""")
    text = swap(text, "access_log /var/log/nginx/access.log masked;", f"access_log {work}/nginx-access.log masked;")
    servers = "\n        ".join(f"server 127.0.0.1:{port};" for port in replica_ports)
    text = swap(text, "server gateway:8080;", servers)
    text = swap(text, "listen 80;", f"listen 127.0.0.1:{proxy_port};")
    single = f"""
    upstream single {{
        server 127.0.0.1:{replica_ports[0]};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{single_port};
        location / {{
            proxy_pass http://single;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
"""
    text = text.rstrip()
    if not text.endswith("}"):
        raise Fatal("deploy/nginx.conf does not end with the http block's brace")
    text = text[:-1] + single + "}\n"
    path = os.path.join(work, "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    test = subprocess.run(["nginx", "-t", "-c", path, "-p", work], capture_output=True, text=True)
    if test.returncode != 0:
        raise Fatal("nginx refuses the config derived from deploy/nginx.conf:\n" + test.stderr)
    return path


# MARK: - The cluster


class Cluster(SimulatorControls):
    """The simulator, three replicas and nginx. Quacks like a Gateway for the clients and checks of checklib: `api`
    goes through nginx, `control` and `sim_port` are the provider simulator (login pages, test helpers)."""

    def __init__(self, binary, work, database_url, events_port=None, replicas=3, fast=True, name="run"):
        self.work = work
        self.api_key = "gw_replica_" + secrets.token_hex(16)
        self.admin_token = "gw_admin_" + secrets.token_hex(16)
        # The provider simulators, a process of their own that every replica shares (as reliability_check's phase B
        # runs it). Under load every provider call takes a while, so the kills land on calls in flight.
        self.providers = SimulatedProviders(binary, work, name, answer_delay_ms=150 if fast else 0,
                                            log_level="info" if fast else "warning")
        self.simulator = self.providers.process
        self.sim_port = self.providers.port
        self.proxy_port, self.single_port = free_port(), free_port()
        self.replica_ports = [free_port() for _ in range(replicas)]
        self.secrets = {"api_key": self.api_key, **self.providers.secrets}
        settings = dict(
            GATEWAY_HOST=HOST, LOG_LEVEL="info" if fast else "warning", LOG_FORMAT="json",
            GATEWAY_DATABASE_URL=database_url, GATEWAY_PUBLIC_URL=f"http://{HOST}:{self.proxy_port}",
            GATEWAY_ADMIN_TOKEN=self.admin_token, GATEWAY_ENCRYPTION_KEY=base64.b64encode(b"r" * 32).decode(),
            GATEWAY_MIGRATIONS_DIR=os.path.join(ROOT, "migrations"),
        )
        if fast:
            settings.update(QUICK_TIMINGS, GATEWAY_CIRCUIT_COOLDOWN_SECONDS="8")
        else:
            # The figure measures the gateway and its database, not the per-replica provider limits (50 calls/s
            # and 4 at once by default, which would cap creates at the limit).
            settings.update(GATEWAY_PROVIDER_RATE_LIMIT="0", GATEWAY_PROVIDER_CONCURRENCY="64")
        if events_port:
            settings.update(GATEWAY_EVENTS_URL=f"http://{HOST}:{events_port}/events", GATEWAY_EVENTS_SECRET=Receiver.secret,
                            GATEWAY_EVENTS_RETRY_SCHEDULE="1,1,2,2,3,3,4,4,5,5,5,5,5,5,5,5,5,5,5,5")
        # As in production: `serve` on the shared simulator and database; a replica that exits at start fails the run.
        self.replicas = [
            Gateway(binary, os.path.join(work, f"replica-{index + 1}"), port, f"{name}: replica {index + 1}",
                    providers=self.providers, settings=settings, log_path=os.path.join(work, f"replica-{index + 1}.log"),
                    api_key=self.api_key, attempts=1)
            for index, port in enumerate(self.replica_ports)]
        self.nginx_conf = nginx_config(work, self.proxy_port, self.single_port, self.replica_ports)
        self.nginx = Process(f"{name}: nginx", ["nginx", "-c", self.nginx_conf, "-p", work], dict(os.environ),
                             os.path.join(work, "nginx.out"))

    def start(self):
        self.providers.start()
        # Together, as a deploy would: their migrators meet on the advisory lock.
        with concurrent.futures.ThreadPoolExecutor(len(self.replicas)) as pool:
            list(pool.map(lambda replica: replica.start(), self.replicas))
        self.nginx.start(self.proxy_port, "/readyz", limit=20)

    def restart(self, index):
        self.replicas[index].start(ready_within=60)

    def stop(self):
        stopped = [replica.stop() for replica in self.replicas]
        self.nginx.stop()
        self.simulator.stop()
        return all(stopped)

    def api(self, method, path, body=None, headers=None, timeout=10.0):
        """The partner API, through nginx."""
        sent = {"Authorization": f"Bearer {self.api_key}"}
        sent.update(headers or {})
        return call(self.proxy_port, method, path, body, sent, timeout)

    def circuits(self, provider):
        """The provider's circuit as each replica reports it (GET /admin/providers, straight to the replica)."""
        states = []
        for port in self.replica_ports:
            try:
                answer = call(port, "GET", "/admin/providers", headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=5)
                states.append(next((p["circuit"] for p in answer.json["data"] if p["provider"] == provider), None))
            except (TRANSIENT + (TypeError, KeyError)) as error:
                states.append(f"{type(error).__name__}")
        return states

    def upstream_counts(self):
        counts = {}
        with open(os.path.join(self.work, "upstreams.log")) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == str(self.proxy_port):
                    for addr in parts[1].replace(",", " ").replace(":", " ").split():
                        if addr.isdigit() and int(addr) in self.replica_ports:
                            counts[int(addr)] = counts.get(int(addr), 0) + 1
        return counts


# MARK: - The run under load


def replicas_under_load(binary, work, database_url, seed, budget):
    rng = random.Random(seed)
    receiver = serve_in_background(Receiver)
    cluster = Cluster(binary, os.path.join(work, "load"), database_url, events_port=receiver.server_address[1], name="load")
    progress(f"load: 3 replicas on ports {cluster.replica_ports}, nginx {cluster.proxy_port}, simulator {cluster.sim_port}, "
        f"events receiver {receiver.server_address[1]}; logs in {cluster.work}")
    cluster.start()
    try:
        cluster.set_chaos(0.1, seed)
        used = set()
        tenants = []
        # New customers of each provider by turns, and every fifth round customers who already were the provider's.
        pattern = [(p, False) for p in PROVIDERS] * 4 + [(p, True) for p in PROVIDERS]
        for i in range(60):
            provider, existing = pattern[i % len(pattern)]
            external_id = f"rp-{provider.kind(existing).replace('_', '-')}-{i}"
            tenants.append(spec(provider, external_id, f"r{seed}", rng, used, existing))
        make_existing(cluster, tenants)
        kinds = {}
        for tenant in tenants:
            kinds[tenant["kind"]] = kinds.get(tenant["kind"], 0) + 1
        progress(f"load: {len(tenants)} tenants ({kinds}), 10 % provider faults")

        counter = Counter()
        started = time.monotonic()

        def paced_create(tenant, pause):
            time.sleep(pause)
            return create(cluster, tenant, started + budget, counter)

        pool = concurrent.futures.ThreadPoolExecutor(8)
        futures = [pool.submit(paced_create, t, rng.uniform(0, 0.6)) for t in tenants]
        try:
            time.sleep(1.5)
            cluster.replicas[1].kill9()
            killed_first = time.monotonic() - started
            finished = sum(1 for f in futures if f.done())
            progress(f"load: replica 2 killed with SIGKILL at {killed_first:.1f} s, {finished} of {len(futures)} creates finished")
            time.sleep(4)
            cluster.restart(1)
            progress(f"load: replica 2 back at {time.monotonic() - started:.1f} s")
        finally:
            pool.shutdown(wait=True)
        acknowledged = [t for t in tenants if t.get("id")]
        CHECKS.check(f"every create acknowledged ({len(acknowledged)} of {len(tenants)})", len(acknowledged) == len(tenants),
                     "; ".join(describe(t) for t in tenants if not t.get("id")))

        driver = Driver(cluster, counter, recomplete_after=8, supply_for_new=True)
        second_kill = {}

        def kill_during_convergence():
            time.sleep(2)
            cluster.replicas[2].kill9()
            second_kill["at"] = time.monotonic() - started
            second_kill["active"] = sum(1 for t in acknowledged if t.get("state") == "active")
            time.sleep(4)
            cluster.restart(2)

        killer = threading.Thread(target=kill_during_convergence)
        killer.start()
        converged = converge(driver, acknowledged, time.monotonic() + budget, "load")
        killer.join()
        converged_at = time.monotonic()
        progress(f"load: replica 3 killed with SIGKILL at {second_kill.get('at', 0):.1f} s "
            f"({second_kill.get('active')} of {len(acknowledged)} tenants active then), restarted 4 s later")
        calls = cluster.simulator_calls()
        cluster.set_chaos(0, seed)

        check_tenants(cluster, tenants, acknowledged, counter)
        check_all_active(cluster, tenants, "replicas")
        check_history(cluster, acknowledged, "replicas")
        check_credentials(cluster, acknowledged, "replicas")
        check_provider_calls(acknowledged, calls, "replicas (simulator records, across processes)")
        check_events(cluster)
        check_shared_circuit(cluster, seed, rng)

        counts = cluster.upstream_counts()
        CHECKS.check("nginx sent requests to all three replicas", len(counts) == 3 and all(n > 0 for n in counts.values()),
                     ", ".join(f"replica on {port}: {n}" for port, n in sorted(counts.items())))
        ready = [call(port, "GET", "/readyz", timeout=5).status for port in cluster.replica_ports]
        CHECKS.check("all three replicas ready at the end (two after a kill -9 and restart)", ready == [200, 200, 200], f"{ready}")
        faults = provider_figures(calls)[0]
        FIGURES.append(
            f"load: {len(acknowledged)} of {len(tenants)} creates acknowledged through nginx with {counter['create_retries']} "
            f"retries ({counter['create_transport_error']} transport errors, {counter['create_5xx']} 5xx, "
            f"{counter['create_in_use']} idempotency_key_in_use); replica 2 killed at {killed_first:.1f} s, replica 3 at "
            f"{second_kill.get('at', 0):.1f} s; {'converged' if converged else 'NOT converged'} in {converged_at - started:.1f} s; "
            f"{faults} provider faults injected; {Receiver.deliveries} event deliveries ({Receiver.failed_on_purpose} failed on "
            f"purpose) for {len(Receiver.by_event)} events; requests per replica {sorted(counts.values())}"
        )
        progress(FIGURES[-1])
    finally:
        stopped = cluster.stop()
        receiver.shutdown()
    CHECKS.check("the replicas stop on SIGTERM", stopped)


def check_shared_circuit(cluster, seed, rng):
    """Wrapp goes down: the replica that sees enough failures first opens its circuit, and all three must report it
    open; Wrapp comes back: one probe closes it on all three, and the tenants created meanwhile converge."""
    cluster.set_chaos(1.0, seed + 500)
    used = set()
    tenants = [spec(WRAPP, f"rp-down-{i}", f"r{seed}", rng, used) for i in range(8)]
    counter = Counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        acknowledged = list(pool.map(lambda t: create(cluster, t, time.monotonic() + 60, counter), tenants))
    began = time.monotonic()
    states = []
    while time.monotonic() - began < 90 and "open" not in states:
        states = cluster.circuits(WRAPP.id)
        time.sleep(0.2)
    first = time.monotonic() - began
    # Each replica keeps its own window of outcomes: without the shared circuit the other two would open only after
    # failing 18 of their own last 20 calls, many seconds later. Shared, they read it within a second.
    while time.monotonic() - began < first + 5 and not all(state == "open" for state in states):
        states = cluster.circuits(WRAPP.id)
        time.sleep(0.2)
    opened = time.monotonic() - began
    CHECKS.check("a circuit one replica opens is open on all three within 5 s", all(state == "open" for state in states),
                 f"states {states}: first open {first:.1f} s after the creates, all open {opened - first:.1f} s later; "
                 f"{sum(acknowledged)} of {len(tenants)} creates acknowledged")
    # While it is open nobody calls Wrapp: from a second after the first replica opened it (calls admitted before the
    # others read it may still arrive) until shortly before its 8 s cool-down ends.
    time.sleep(max(0.0, first + 1.5 - (time.monotonic() - began)))
    before = cluster.simulator_calls()[WRAPP.id]
    time.sleep(max(0.0, first + 6.5 - (time.monotonic() - began)))
    after = cluster.simulator_calls()[WRAPP.id]
    states_after = cluster.circuits(WRAPP.id)
    calls = {path: (after.get("calls") or {}).get(path, 0) - (before.get("calls") or {}).get(path, 0) for path in WRAPP.partner_paths}
    CHECKS.check("no replica called Wrapp while the circuit was open", sum(calls.values()) == 0 and all(s == "open" for s in states_after),
                 f"partner calls from {first + 1.5:.1f} s to {first + 6.5:.1f} s: {calls}; states then {states_after}")
    cluster.set_chaos(0, seed)
    while time.monotonic() - began < 150:
        states = cluster.circuits(WRAPP.id)
        if all(state == "closed" for state in states):
            break
        time.sleep(0.3)
    closed = time.monotonic() - began - opened
    CHECKS.check("once Wrapp answers again one probe closes it on all three", all(state == "closed" for state in states),
                 f"states {states} {closed:.1f} s after Wrapp came back")
    driver = Driver(cluster, counter, recomplete_after=8, supply_for_new=True)
    converged = converge(driver, [t for t in tenants if t.get("id")], time.monotonic() + 90, "circuit")
    CHECKS.check("the tenants created while Wrapp was down converge", converged and all(acknowledged),
                 "; ".join(describe(t) for t in tenants if t.get("state") != "active"))
    FIGURES.append(f"shared circuit: opened {first:.1f} s after 8 creates met a Wrapp that fails every call, open on all "
                   f"three {opened - first:.1f} s later; closed on all three {closed:.1f} s after Wrapp came back (cool-down 8 s)")
    progress(FIGURES[-1])


def check_tenants(cluster, tenants, acknowledged, counter):
    check_acknowledged_exist(cluster, acknowledged)

    problems = []
    for tenant in acknowledged:
        answer = retrying(lambda: cluster.api("POST", "/v1/tenants", tenant["body"], {"Idempotency-Key": tenant["key"]}, timeout=30),
                             limit=30)
        same = isinstance(answer.json, dict) and answer.json.get("id") == tenant["id"]
        if answer.status != tenant["ack_status"] or not same or answer.headers.get("idempotent-replayed") != "true":
            problems.append(f"{tenant['external_id']}: acknowledged {tenant['ack_status']} {tenant['id']}, replay answered "
                            f"{answer!r} (Idempotent-Replayed: {answer.headers.get('idempotent-replayed')})")
    CHECKS.check("replaying every Idempotency-Key through any replica answers the kept response (same status, same tenant)", not problems,
                 "; ".join(problems) or f"{len(acknowledged)} replays")

    check_one_per_external_id(cluster, tenants)


def feed_ids(cluster):
    """Every event id of /v1/events, oldest first. The feed's next_cursor stays set at its end (an app polls on from
    it), so the walk ends at an empty page."""
    ids, after = [], None
    for _ in range(1000):
        path = "/v1/events?limit=100" + (f"&after={urllib.parse.quote(after, safe='')}" if after else "")
        answer = retrying(lambda: cluster.api("GET", path))
        if answer.status != 200 or not isinstance(answer.json, dict):
            raise Fatal(f"GET {path} answered {answer!r}")
        page = answer.json.get("data") or []
        if not page:
            return ids
        ids.extend(event["id"] for event in page)
        after = answer.json.get("next_cursor") or page[-1]["id"]
    raise Fatal("GET /v1/events: more than 1000 pages")


def check_events(cluster, limit=90):
    ids = feed_ids(cluster)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with Receiver.lock:
            undelivered = [i for i in ids if i not in Receiver.by_event]
        if not undelivered:
            break
        time.sleep(0.5)
    with Receiver.lock:
        undelivered = [i for i in ids if i not in Receiver.by_event]
        several = {event: sorted(hooks) for event, hooks in Receiver.by_event.items() if len(hooks) != 1}
        hook_owner = {}
        shared = []
        for event, hooks in Receiver.by_event.items():
            for hook in hooks:
                if hook in hook_owner and hook_owner[hook] != event:
                    shared.append(hook)
                hook_owner[hook] = event
        strangers = [event for event in Receiver.by_event if event not in set(ids)]
        unverified = list(Receiver.unverified)
    CHECKS.check("every event of the feed was delivered at least once", bool(ids) and not undelivered,
                 f"{len(undelivered)} of {len(ids)} never arrived: {undelivered[:5]}" if undelivered else f"{len(ids)} events")
    CHECKS.check("each event came under one webhook-id, and no two events shared one", not several and not shared,
                 f"events with several ids {list(several.items())[:3]}, ids on several events {shared[:3]}")
    CHECKS.check("no delivery of an event the feed does not hold", not strangers, f"{strangers[:5]}")
    CHECKS.check("every delivery verified with the Standard Webhooks library", not unverified, "; ".join(unverified[:3]))


# MARK: - The figure


def figures(binary, work, database_url_for, seconds):
    """Each configuration on a fresh schema and fresh processes, so neither inherits the other's tenants, queued
    polls or webhooks to process."""
    results = {}
    for replicas in (1, 3):
        directory = os.path.join(work, f"figure-{replicas}")
        os.makedirs(directory)
        cluster = Cluster(binary, directory, database_url_for(replicas), replicas=replicas, fast=False, name=f"figure {replicas}")
        cluster.start()
        try:
            run = secrets.token_hex(3)
            # A Wrapp customer whose webhook endpoint the intake figure posts to.
            answer = cluster.api("POST", "/v1/tenants", WRAPP.create_body(f"fig-{run}")[0])
            if answer.status != 201:
                raise Fatal(f"the figure's first create answered {answer!r}")
            customer = cluster.control("GET", f"/sandbox/test-helpers/wrapp/customers/fig-{run}").json
            hook_path = urllib.parse.urlsplit(customer["webhook_endpoint"]).path
            base = f"http://127.0.0.1:{cluster.proxy_port}"
            # Only successful answers count (created: 201; stored: 200), and a run whose answers were errors fails
            # (a slow answer is not an error: wrk waits up to 10 s, not its default 2 s, on a machine this loaded).
            report = judge(f"figure, {replicas} replica(s): creates through nginx", wrk(
                f"{base}/v1/tenants", "create.lua", seconds, connections=32, threads=2, timeout_s=10,
                env={"BENCH_KEY": cluster.api_key, "BENCH_RUN": run}), CHECKS)
            creates = report["statuses"].get("201", 0) / (report["duration_us"] / 1e6)
            hooks_report = judge(f"figure, {replicas} replica(s): Wrapp webhooks through nginx", wrk(
                f"{base}{hook_path}", "webhook.lua", seconds, connections=32, threads=2, timeout_s=10,
                env={"BENCH_EXTERNAL_ID": f"fig-{run}", "BENCH_RUN": run}), CHECKS)
            hooks = hooks_report["statuses"].get("200", 0) / (hooks_report["duration_us"] / 1e6)
            results[replicas] = (creates, hooks)
            progress(f"figure, {replicas} replica(s) behind nginx: {creates:,.0f} creates/s (p99 {report['p99_us'] / 1000:.0f} ms, "
                f"statuses {report['statuses']}); {hooks:,.0f} webhooks/s stored (p99 {hooks_report['p99_us'] / 1000:.0f} ms, "
                f"statuses {hooks_report['statuses']})")
        finally:
            cluster.stop()
    one, three = results[1], results[3]
    FIGURES.append(
        f"figure ({seconds} s per run, wrk -c32 through nginx, a fresh schema of one PostgreSQL per configuration, "
        f"{os.cpu_count()} cores shared by every process): creates/s {one[0]:,.0f} with 1 replica, {three[0]:,.0f} with 3 "
        f"({three[0] / max(one[0], 1e-9):.2f}x); Wrapp webhooks stored/s {one[1]:,.0f} with 1, {three[1]:,.0f} with 3 "
        f"({three[1] / max(one[1], 1e-9):.2f}x)"
    )
    progress(FIGURES[-1])


# MARK: - Main


def schema_url(url, schema):
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("search_path", "schema")]
    query.append(("search_path", schema))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=".build/debug/gateway", help="the built gateway (default .build/debug/gateway)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget", type=float, default=150, help="seconds the creates, and then convergence, may take")
    parser.add_argument("--figure-seconds", type=int, default=5, help="wrk seconds per figure run (0: no figure)")
    parser.add_argument("--phase", choices=("load", "figure", "all"), default="all")
    args = parser.parse_args()
    url = os.environ.get("GATEWAY_TEST_POSTGRES_URL")
    if not url:
        print("replica check: set GATEWAY_TEST_POSTGRES_URL (export GATEWAY_TEST_POSTGRES_URL=$(scripts/postgres.sh start))",
              file=sys.stderr)
        return 2
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"replica check: no gateway binary at {binary} (swift build first)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    random.seed(args.seed)
    Receiver.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    Receiver.verifier = Webhook(Receiver.secret)
    work = tempfile.mkdtemp(prefix="gw-replicas-")
    os.makedirs(os.path.join(work, "load"))
    tag = f"{os.getpid()}_{int(time.time())}"
    began = time.monotonic()
    phases = []
    if args.phase in ("load", "all"):
        phases.append(("load", lambda: replicas_under_load(binary, work, schema_url(url, f"replicas_{tag}"), args.seed, args.budget)))
    if args.figure_seconds > 0 and args.phase in ("figure", "all"):
        phases.append(("figure", lambda: figures(binary, work, lambda n: schema_url(url, f"figure{n}_{tag}"), args.figure_seconds)))
    for name, run in phases:
        try:
            run()
        except Exception as error:  # noqa: BLE001 - report, then go on
            CHECKS.check(f"the {name} phase ran to its end", False, f"{type(error).__name__}: {error}")
        cleanup_all()

    CHECKS.report("replica check", began, [process.log_path for process in Process.ALL], [work], tail_lines=30)
    return 1 if CHECKS.failed else 0


if __name__ == "__main__":
    run_main(main, cleanup_all)
