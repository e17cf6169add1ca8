#!/usr/bin/env python3
"""Database outages: the built gateway with its worker loses its storage under load, fails fast, and recovers.

Phase 1, PostgreSQL outage: a throwaway PostgreSQL on loopback (scripts/postgres.sh, a fresh cluster and database),
one gateway on it as in production (`gateway serve`, providers in a `gateway simulate` process of their own). Six
clients create Wrapp, MagniFinance and InvoiceXpress tenants (of each provider by turns), each with an Idempotency-Key, retrying the same key on 5xx and
timeouts, for the whole phase; a prober asks `/readyz` every 0.1 s and a reader lists and reads tenants. After 5 s
PostgreSQL is stopped (`pg_ctl stop -m fast`) for 30 s, then started again. Asserted: while it is down `/readyz`
answers 503 within 2 s, API calls answer `503 storage_unavailable` (problem+json, `Retry-After`) within 5 s and no
request hangs (client timeout 15 s, a timeout is a failure); every 5xx at any time is problem+json; once it is back
`/readyz` is 200 within 5 s of `pg_ctl start` returning, without a restart; every create is acknowledged in the end,
exists once (by id, and listed by its external_id), and replaying its key answers the same tenant.

Phase 2, SQLite on a full disk: `gateway serve --sandbox` with its data directory on an 8 MB tmpfs. Tenants are
created, then a file fills the tmpfs. Asserted: creates answer `503 storage_unavailable` (problem+json,
`Retry-After`), never 500; `/readyz` answers 503 while writes fail; once the file is deleted `/readyz` is 200 again
and the creates succeed, without a restart; acknowledged tenants all exist, and `PRAGMA integrity_check` is ok after
the gateway stops. The tmpfs is always unmounted.

Needs root (mount, and PostgreSQL runs as the `postgres` user) and `apt-get install postgresql`.

    python3 scripts/fault_check.py --binary .build/debug/gateway [--phase postgres|disk|all] [--outage 30]
"""
import argparse
import concurrent.futures
import errno
import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklib import (  # noqa: E402 - processes, simulators, tenants, creates, the report
    CHECKS, FIGURES, PROVIDERS, QUICK, ROOT, TRANSIENT, Counter, Fatal, Gateway, SimulatedProviders, call,
    check_integrity, check_one_per_external_id, check_provider_calls, cleanup_all, create, describe, free_port,
    listed, progress, retrying, run_main, spec,
)

CLIENT_TIMEOUT = 15.0   # no request may take this long: a timeout is a failure
READY_LIMIT = 2.0       # /readyz answers within this while the database is away
API_LIMIT = 5.0         # API calls answer within this while the database is away
RECOVERY_LIMIT = 5.0    # ready again this long after the database is back (PostgreSQL: after pg_ctl start returns)
DISK_RECOVERY_LIMIT = 10.0  # ready again this long after the filler is deleted ("a few seconds")
PROBLEM = "application/problem+json"


# MARK: - Every request, timed


class Sample:
    """One request: when it began and ended (monotonic), and what came back (or the transport error)."""
    __slots__ = ("what", "began", "wall", "ended", "answer", "exception", "status", "content_type", "retry_after", "code", "error")

    def __init__(self, what, began):
        self.what, self.began, self.wall = what, began, time.time()
        self.ended = self.answer = self.exception = None
        self.status = self.content_type = self.retry_after = self.code = self.error = None

    @property
    def took(self):
        return self.ended - self.began

    def is_storage_unavailable(self):
        return (self.status == 503 and self.code == "storage_unavailable" and (self.content_type or "").startswith(PROBLEM)
                and bool(self.retry_after))

    def __repr__(self):
        answer = self.error or f"{self.status}{' ' + self.code if self.code else ''} ({self.content_type}, Retry-After {self.retry_after})"
        clock = time.strftime("%H:%M:%S", time.gmtime(self.wall)) + f".{int(self.wall * 1000) % 1000:03d}Z"
        return f"{self.what} at {clock}: {answer} in {self.took:.2f} s"


class Recorder:
    """Times every request a gateway makes and keeps the samples."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples = []

    def timed(self, what, request):
        """Makes the request and keeps its Sample, which it returns (`answer` None and `exception` set when the
        transport failed: refused, reset, timed out)."""
        sample = Sample(what, time.monotonic())
        try:
            answer = sample.answer = request()
            sample.status, sample.code = answer.status, answer.code
            sample.content_type, sample.retry_after = answer.headers.get("content-type"), answer.headers.get("retry-after")
        except TRANSIENT as error:
            sample.exception = error
            sample.error = "timeout" if isinstance(error, TimeoutError) else f"{type(error).__name__}: {error}"
        sample.ended = time.monotonic()
        with self.lock:
            self.samples.append(sample)
        return sample

    def snapshot(self):
        with self.lock:
            return list(self.samples)


class RecordedGateway(Gateway):
    """A gateway as the reliability check runs it, with every API call and readiness probe timed (client timeout 15 s
    whatever the caller asked), and optionally on PostgreSQL (`database_url`) with an admin token, as in production."""

    def __init__(self, binary, data_dir, name, providers=None, database_url=None):
        settings = dict(QUICK)
        if database_url:
            settings.update(GATEWAY_DATABASE_URL=database_url, GATEWAY_ADMIN_TOKEN="gw_admin_" + secrets.token_hex(16))
        super().__init__(binary, data_dir, name=name, providers=providers, settings=settings)
        self.recorder = Recorder()

    def api(self, method, path, body=None, headers=None, timeout=None):
        """The gateway's API call (raising on transport failures), timed."""
        sample = self.api_sample(method, path, body, headers)
        if sample.exception is not None:
            raise sample.exception
        return sample.answer

    def api_sample(self, method, path, body=None, headers=None):
        what = f"{method} {urllib.parse.urlsplit(path).path}"
        return self.recorder.timed(what, lambda: super(RecordedGateway, self).api(method, path, body, headers, CLIENT_TIMEOUT))

    def ready(self):
        """GET /readyz, timed: its Sample."""
        return self.recorder.timed("GET /readyz", lambda: call(self.port, "GET", "/readyz", timeout=CLIENT_TIMEOUT))


def is_api(sample):
    return sample.what != "GET /readyz"


def check_problems(samples, label):
    """Every 5xx, API or probe, is problem+json."""
    bare = [s for s in samples if s.status is not None and s.status >= 500 and not (s.content_type or "").startswith(PROBLEM)]
    CHECKS.check(f"{label}: every 5xx is {PROBLEM}", not bare,
                 f"{len(bare)} were not, e.g. {bare[:3]}" if bare else f"{sum(1 for s in samples if (s.status or 0) >= 500)} 5xx")


def check_no_timeouts(samples, label):
    hung = [s for s in samples if s.error == "timeout"]
    CHECKS.check(f"{label}: no request hit the {CLIENT_TIMEOUT:.0f} s client timeout", not hung,
                 f"{len(hung)} timed out, e.g. {hung[:3]}" if hung else f"{len(samples)} requests")


def statuses(samples):
    """How many answered each status ("timeout" and "transport error" for the rest), most frequent first."""
    counts = {}
    for s in samples:
        key = str(s.status) if s.status is not None else s.error if s.error == "timeout" else "transport error"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key}: {n}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


# MARK: - Acknowledged tenants


def check_acknowledged(gateway, tenants, label):
    """Every create is acknowledged in the end; each acknowledged tenant reads back by id, is the one tenant its
    external_id lists, and its Idempotency-Key replays to the same tenant with the same status; nothing else exists."""
    acknowledged = [t for t in tenants if t.get("id")]
    CHECKS.check(f"{label}: every create acknowledged in the end ({len(acknowledged)} of {len(tenants)})",
                 len(acknowledged) == len(tenants), "; ".join(describe(t) for t in tenants if not t.get("id"))[:2000])
    problems = []
    for tenant in acknowledged:
        read = retrying(lambda: gateway.api("GET", f"/v1/tenants/{tenant['id']}"))
        if read.status != 200 or not isinstance(read.json, dict) or read.json.get("external_id") != tenant["external_id"]:
            problems.append(f"GET {tenant['id']} ({tenant['external_id']}) answered {read!r}")
        query = urllib.parse.urlencode({"external_id": tenant["external_id"], "provider": tenant["provider"]})
        ids = [item.get("id") for item in listed(gateway, f"/v1/tenants?{query}")]
        if ids != [tenant["id"]]:
            problems.append(f"external_id {tenant['external_id']} lists {ids}, acknowledged {tenant['id']}")
        replay = retrying(lambda: gateway.api("POST", "/v1/tenants", tenant["body"], {"Idempotency-Key": tenant["key"]}))
        if (replay.status != tenant["ack_status"] or not isinstance(replay.json, dict) or replay.json.get("id") != tenant["id"]
                or replay.headers.get("idempotent-replayed") != "true"):
            problems.append(f"{tenant['external_id']}: acknowledged {tenant['ack_status']} {tenant['id']}, replay answered {replay!r} "
                            f"(Idempotent-Replayed: {replay.headers.get('idempotent-replayed')})")
    CHECKS.check(f"{label}: each acknowledged tenant exists once, by id and by external_id, and its key replays to it",
                 acknowledged and not problems, "; ".join(problems[:10]) or f"{len(acknowledged)} tenants read, listed and replayed")
    check_one_per_external_id(gateway, tenants, f"{label}: ")


class Tenants:
    """A thread-safe supply of new tenants, of each provider by turns."""

    def __init__(self, prefix, seed):
        self.prefix, self.rng, self.used = prefix, random.Random(seed), set()
        self.lock = threading.Lock()
        self.all = []

    def next(self):
        with self.lock:
            provider = PROVIDERS[len(self.all) % len(PROVIDERS)]
            external_id = f"{self.prefix}-{provider.kind().replace('_', '-')}-{len(self.all)}"
            tenant = spec(provider, external_id, self.prefix, self.rng, self.used)
            self.all.append(tenant)
            return tenant


# MARK: - Phase 1: PostgreSQL outage


class Postgres:
    """A throwaway cluster of scripts/postgres.sh (its own directory and port), and pg_ctl to stop and start it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gw-fault-pg-", dir="/tmp")  # the postgres user must reach it
        self.env = dict(os.environ, PGPORT=str(free_port()), PGDATA_DIR=self.dir)
        self.bin = sorted((os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")),
                          key=lambda p: [int(x) for x in p.split("/")[-2].split(".") if x.isdigit()])[-1]

    def start_cluster(self):
        out = subprocess.run([os.path.join(ROOT, "scripts", "postgres.sh"), "start"], env=self.env, capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise Fatal(f"scripts/postgres.sh start failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def pg_ctl(self, *args):
        command = ["runuser", "-u", "postgres", "--", os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.dir, "data")]
        out = subprocess.run(command + list(args), capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise Fatal(f"pg_ctl {' '.join(args)} failed: {out.stdout} {out.stderr}")

    def stop(self):
        self.pg_ctl("-m", "fast", "-w", "stop")

    def start(self):
        self.pg_ctl("-l", os.path.join(self.dir, "server.log"), "-w", "start")

    def cleanup(self):
        subprocess.run([os.path.join(ROOT, "scripts", "postgres.sh"), "stop"], env=self.env, capture_output=True, timeout=60)


def postgres_outage(binary, work, seed, outage, clients=6, lead=5.0, tail=5.0):
    label = "PostgreSQL outage"
    postgres = Postgres()
    try:
        url = postgres.start_cluster()
        providers = SimulatedProviders(binary, work, "fault")
        gateway = RecordedGateway(binary, work, "PostgreSQL gateway", providers=providers, database_url=url)
        progress(f"{label}: PostgreSQL in {postgres.dir} on {postgres.env['PGPORT']}, gateway {gateway.port}, simulator "
            f"{providers.port}; logs in {work}")
        providers.start()
        gateway.start(ready_within=60)
        run_outage(gateway, postgres, label, seed, outage, clients, lead, tail)
        CHECKS.check(f"{label}: the gateway stops on SIGTERM", gateway.stop())
        providers.stop()
    finally:
        postgres.cleanup()
        if os.path.exists(os.path.join(postgres.dir, "server.log")):
            shutil.copy(os.path.join(postgres.dir, "server.log"), os.path.join(work, "postgres-server.log"))
        shutil.rmtree(postgres.dir, ignore_errors=True)


def run_outage(gateway, postgres, label, seed, outage, clients, lead, tail):
    tenants = Tenants(f"pg{seed}", seed)
    counter = Counter()
    stop = threading.Event()
    began = time.monotonic()
    deadline = began + lead + outage + 75   # every create started is retried (same key) until then

    def client():
        while not stop.is_set():
            create(gateway, tenants.next(), deadline, counter)
            time.sleep(0.2)

    def prober():
        while not stop.is_set():
            gateway.ready()
            time.sleep(0.1)

    def reader():
        while not stop.is_set():
            known = next((t["id"] for t in list(tenants.all) if t.get("id")), None)
            for path in ["/v1/tenants?limit=5"] + ([f"/v1/tenants/{known}"] if known else []):
                try:
                    gateway.api("GET", path)
                except TRANSIENT:
                    pass
            time.sleep(0.5)

    pool = concurrent.futures.ThreadPoolExecutor(clients + 2)
    futures = [pool.submit(client) for _ in range(clients)] + [pool.submit(prober), pool.submit(reader)]
    try:
        time.sleep(lead)
        stopping = time.monotonic()
        postgres.stop()
        down = time.monotonic()
        progress(f"{label}: PostgreSQL stopped at {down - began:.1f} s (pg_ctl took {down - stopping:.1f} s); "
            f"{sum(1 for t in tenants.all if t.get('id'))} creates acknowledged so far")
        time.sleep(max(0.0, down + outage - time.monotonic()))
        starting = time.monotonic()
        postgres.start()
        up = time.monotonic()
        progress(f"{label}: PostgreSQL started again at {up - began:.1f} s (pg_ctl took {up - starting:.1f} s)")
        # The load goes on until the gateway is ready again (or clearly is not), and `tail` seconds more.
        while time.monotonic() < up + 30 and not any(
                s.status == 200 and s.began >= starting for s in gateway.recorder.snapshot() if not is_api(s)):
            time.sleep(0.2)
        time.sleep(tail)
    finally:
        stop.set()
        pool.shutdown(wait=True)
    for future in futures:
        future.result()   # a client that raised is a bug of this script: let it show
    samples = gateway.recorder.snapshot()
    judge_outage(samples, label, stopping, down, starting, up)
    CHECKS.check(f"{label}: the gateway ran throughout, never restarted", gateway.proc.poll() is None and gateway.starts == 1,
                 f"exit status {gateway.proc.poll()}, {gateway.starts} starts")
    progress(f"{label}: {len(tenants.all)} creates, {counter['create_retries']} retries; checking what was acknowledged")
    check_acknowledged(gateway, tenants.all, label)
    check_provider_calls(tenants.all, gateway.simulator_calls(), label)
    check_problems(gateway.recorder.snapshot()[len(samples):], f"{label} (the checks' own requests)")


def judge_outage(samples, label, stopping, down, starting, up):
    probes = [s for s in samples if not is_api(s)]
    calls = [s for s in samples if is_api(s)]
    # During the outage: whatever was in flight between the stop's start and the start's start.
    overlapping = [s for s in samples if s.began < starting and s.ended > stopping]
    probes_out = [s for s in overlapping if not is_api(s)]
    calls_out = [s for s in overlapping if is_api(s)]
    max_probe = max((s.took for s in probes_out), default=None)
    max_call = max((s.took for s in calls_out), default=None)
    CHECKS.check(f"{label}: every /readyz probe during the outage answered within {READY_LIMIT:.0f} s",
                 probes_out and max_probe <= READY_LIMIT,
                 f"{len(probes_out)} probes, max {max_probe:.2f} s" + slow(probes_out, READY_LIMIT) if probes_out else "no probe ran")
    settled = [s for s in probes_out if s.began >= down + READY_LIMIT and s.ended <= starting]
    not_503 = [s for s in settled if s.status != 503]
    CHECKS.check(f"{label}: /readyz answered 503 from {READY_LIMIT:.0f} s into the outage until PostgreSQL was back",
                 settled and not not_503, f"{len(not_503)} of {len(settled)} were not, e.g. {not_503[:3]}" if not_503 else
                 f"{len(settled)} probes" if settled else "no probe both began then and ended while PostgreSQL was down")
    CHECKS.check(f"{label}: every API call during the outage answered within {API_LIMIT:.0f} s", calls_out and max_call <= API_LIMIT,
                 f"{len(calls_out)} calls, max {max_call:.2f} s" + slow(calls_out, API_LIMIT) if calls_out else "no API call ran")
    while_down = [s for s in calls_out if s.began >= down and s.ended <= starting]
    wrong = [s for s in while_down if not s.is_storage_unavailable()]
    CHECKS.check(f"{label}: API calls while PostgreSQL was down answered 503 storage_unavailable, {PROBLEM}, Retry-After",
                 while_down and not wrong, f"{len(wrong)} of {len(while_down)} did not, e.g. {wrong[:4]}" if wrong else
                 f"{len(while_down)} calls" if while_down else "no API call both began and ended while PostgreSQL was down")
    check_problems(samples, label)
    check_no_timeouts(samples, label)
    ready = next((s for s in probes if s.began >= starting and s.status == 200), None)
    ready_after = max(0.0, ready.ended - up) if ready else None
    later = [s for s in probes if ready and s.began > ready.ended and s.status != 200]
    CHECKS.check(f"{label}: /readyz 200 within {RECOVERY_LIMIT:.0f} s of pg_ctl start returning, and stays so",
                 ready_after is not None and ready_after <= RECOVERY_LIMIT and not later,
                 f"ready {ready_after:.2f} s after" + (f", then not ready again: {later[:3]}" if later else "") if ready else
                 f"never ready; last probes {[s for s in probes if s.began >= starting][-3:]}")
    creates = [s for s in calls if s.what == "POST /v1/tenants"]
    FIGURES.append(
        f"{label}: /readyz during the outage max {fmt(max_probe)} ({len(probes_out)} probes); API calls during the outage max "
        f"{fmt(max_call)} ({len(calls_out)} calls, {statuses(calls_out)}); ready {fmt(ready_after)} after pg_ctl start returned; "
        f"creates over the phase {statuses(creates)}; all API calls {statuses(calls)}; pg_ctl stop took {down - stopping:.1f} s, "
        f"start {up - starting:.1f} s")
    progress(FIGURES[-1])


def slow(samples, limit):
    """The slowest few of `samples` over `limit`, for a failure's detail."""
    over = sorted((s for s in samples if s.took > limit), key=lambda s: -s.took)
    return f"; {len(over)} slower than {limit:.0f} s, e.g. {over[:3]}" if over else ""


def fmt(seconds):
    return "n/a" if seconds is None else f"{seconds:.2f} s"


# MARK: - Phase 2: SQLite on a full disk


def fill(path):
    """Writes zeros to `path` until the file system is full; the bytes written."""
    written = 0
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 4096, 512):
            try:
                while True:
                    written += f.write(block[:size])
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    return written


def full_disk(binary, work, seed):
    label = "SQLite full disk"
    mount = tempfile.mkdtemp(prefix="gw-fault-disk-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount], check=True, capture_output=True, timeout=30)
    gateway = None
    try:
        gateway = RecordedGateway(binary, mount, "full-disk gateway")
        gateway.log_path = os.path.join(work, "full-disk-gateway.log")   # not on the disk that fills
        progress(f"{label}: sandbox gateway {gateway.port}, data on an 8 MB tmpfs at {mount}; log {gateway.log_path}")
        gateway.start(ready_within=60)
        tenants = run_full_disk(gateway, mount, label, seed)
        CHECKS.check(f"{label}: the gateway stops on SIGTERM", gateway.stop())
        check_integrity(mount, label)
        check_rows(mount, [t for t in tenants if t.get("id")], label)
    finally:
        if gateway is not None:
            gateway.cleanup()
            if CHECKS.failed:
                for name in os.listdir(mount):
                    if name.startswith("gateway.sqlite"):
                        shutil.copy(os.path.join(mount, name), work)
        if subprocess.run(["umount", mount], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", mount], capture_output=True, timeout=30)
        shutil.rmtree(mount, ignore_errors=True)


def run_full_disk(gateway, mount, label, seed):
    tenants = Tenants(f"disk{seed}", seed + 1)
    counter = Counter()
    first = [tenants.next() for _ in range(4)]
    for tenant in first:
        create(gateway, tenant, time.monotonic() + 20, counter)
    CHECKS.check(f"{label}: creates acknowledged before the disk fills", all(t.get("id") for t in first),
                 "; ".join(describe(t) for t in first if not t.get("id")))

    filler = os.path.join(mount, "filler")
    size = fill(filler)
    filled = time.monotonic()
    # SQLite may still write into space it already holds (the WAL, free pages): create until a write fails.
    refused = []
    after_fill = []
    while len(after_fill) < 60 and len(refused) < 3:
        tenant = tenants.next()
        after_fill.append(tenant)
        sample = gateway.api_sample("POST", "/v1/tenants", tenant["body"], {"Idempotency-Key": tenant["key"]})
        answer = sample.answer
        if answer is not None and answer.status in (200, 201, 202) and isinstance(answer.json, dict) and answer.json.get("id"):
            tenant.update(id=answer.json["id"], ack_status=answer.status, state=answer.json.get("state"), resource=answer.json)
        else:
            refused.append(sample)
            time.sleep(0.3)
    CHECKS.check(f"{label}: a create fails once the disk is full", refused,
                 f"{len(after_fill) - len(refused)} creates acknowledged after filling {size} bytes" if refused else
                 f"all {len(after_fill)} creates after filling {size} bytes were acknowledged")
    wrong = [s for s in refused if not s.is_storage_unavailable()]
    CHECKS.check(f"{label}: creates on a full disk answer 503 storage_unavailable, {PROBLEM}, Retry-After (not 500)",
                 refused and not wrong, f"{wrong[:3]}" if wrong else f"{len(refused)} refusals")

    # Readiness: not ready while writes fail (a few probes, the first may come before the gateway noticed).
    probes = []
    limit = time.monotonic() + 5
    while time.monotonic() < limit and not (probes and probes[-1].status == 503):
        probes.append(gateway.ready())
        time.sleep(0.2)
    noticed = bool(probes) and probes[-1].status == 503
    held = []
    for _ in range(5):   # and stays so while the disk is full
        time.sleep(0.2)
        held.append(gateway.ready())
    CHECKS.check(f"{label}: /readyz answers 503 while writes fail", noticed and all(s.status == 503 for s in held),
                 f"first probes {probes[:3]}, then {held}")

    os.remove(filler)
    freed = time.monotonic()
    ready = None
    while time.monotonic() - freed < DISK_RECOVERY_LIMIT + 5:
        if gateway.ready().status == 200:
            ready = time.monotonic() - freed
            break
        time.sleep(0.1)
    CHECKS.check(f"{label}: /readyz 200 within {DISK_RECOVERY_LIMIT:.0f} s of the disk being freed", ready is not None and
                 ready <= DISK_RECOVERY_LIMIT, f"after {fmt(ready)}")
    retried = [t for t in after_fill if not t.get("id")] + [tenants.next() for _ in range(2)]
    for tenant in retried:
        create(gateway, tenant, time.monotonic() + 20, counter)
    CHECKS.check(f"{label}: creates succeed again once space is freed (the refused keys retried, and new ones)",
                 all(t.get("id") for t in retried), "; ".join(describe(t) for t in retried if not t.get("id")))
    CHECKS.check(f"{label}: the gateway ran throughout, never restarted", gateway.proc.poll() is None and gateway.starts == 1,
                 f"exit status {gateway.proc.poll()}, {gateway.starts} starts")
    check_acknowledged(gateway, tenants.all, label)
    samples = gateway.recorder.snapshot()
    check_problems(samples, label)
    check_no_timeouts(samples, label)
    FIGURES.append(
        f"{label}: filler {size / 1e6:.1f} MB; {len(after_fill) - len(refused)} creates acknowledged after the fill, then refused "
        f"{statuses(refused)} in max {fmt(max((s.took for s in refused), default=None))}; /readyz 503 "
        f"{fmt(probes[-1].ended - filled) if noticed else 'never'} after the fill; ready {fmt(ready)} after the filler was "
        f"deleted; all API calls {statuses([s for s in samples if is_api(s)])}")
    progress(FIGURES[-1])
    return tenants.all


def check_rows(data_dir, acknowledged, label):
    """Read from the file once the gateway has stopped: every acknowledged tenant is a row."""
    try:
        connection = sqlite3.connect(f"file:{os.path.join(data_dir, 'gateway.sqlite')}?mode=ro", uri=True, timeout=10)
        try:
            ids = {row[0] for row in connection.execute("SELECT id FROM tenants")}
        finally:
            connection.close()
        missing = [t["id"] for t in acknowledged if t["id"] not in ids]
        CHECKS.check(f"{label}: every acknowledged tenant is in the file after the stop", acknowledged and not missing,
                     f"missing {missing}" if missing else f"{len(acknowledged)} tenants, {len(ids)} rows")
    except sqlite3.Error as error:
        CHECKS.check(f"{label}: every acknowledged tenant is in the file after the stop", False, f"{type(error).__name__}: {error}")


# MARK: - Main


def log_digest(path, limit=15):
    """A JSON log's warnings and errors, counted by level, message and error, with the first and last time: what a
    failure's report shows beside the log's last lines (which, at info level, are mostly requests)."""
    seen = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(entry, dict) or entry.get("level") in (None, "trace", "debug", "info"):
                    continue
                key = (entry.get("level"), entry.get("message"), str(entry.get("error", ""))[:200])
                first, last, count = seen.get(key, (entry.get("time"), None, 0))
                seen[key] = (first, entry.get("time"), count + 1)
    except OSError as error:
        return f"(no log: {error})"
    rows = sorted(seen.items(), key=lambda kv: kv[1][0] or "")[:limit]
    return "\n".join(f"{count:5d} x {level} {message!r}" + (f" error={error!r}" if error else "") + f" ({first} .. {last})"
                     for (level, message, error), (first, last, count) in rows) or "(no warnings or errors)"




def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "gateway"),
                        help="the built gateway (default .build/debug/gateway, what `swift build --show-bin-path` names)")
    parser.add_argument("--phase", choices=("postgres", "disk", "all"), default="all")
    parser.add_argument("--outage", type=float, default=30, help="seconds PostgreSQL stays down")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"fault check: no gateway binary at {binary} (swift build first)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    random.seed(args.seed)
    work = tempfile.mkdtemp(prefix="gw-fault-")
    began = time.monotonic()
    phases = []
    if args.phase in ("postgres", "all"):
        phases.append(("PostgreSQL outage", "postgres", lambda directory: postgres_outage(binary, directory, args.seed, args.outage)))
    if args.phase in ("disk", "all"):
        phases.append(("SQLite full disk", "disk", lambda directory: full_disk(binary, directory, args.seed)))
    for name, folder, run in phases:
        progress(f"== {name}")
        directory = os.path.join(work, folder)
        os.makedirs(directory)
        try:
            run(directory)
        except Exception as error:  # noqa: BLE001 - report, then go on
            CHECKS.check(f"{name}: the phase ran to its end", False, f"{type(error).__name__}: {error}")
        cleanup_all()
    logs = sorted(os.path.join(folder, f) for folder, _, files in os.walk(work) for f in files if f.endswith(".log"))
    if CHECKS.failed:
        for path in logs:
            if path.endswith("gateway.log"):
                print(f"\n----- warnings and errors in {path} -----\n{log_digest(path)}")
    return CHECKS.report("fault check", began, logs, [work], tail_lines=30)


if __name__ == "__main__":
    run_main(main, cleanup_all)
