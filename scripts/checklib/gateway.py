"""The one way the checks start a gateway (and the other processes they need): `Gateway` / `start_gateway`, on
SQLite or PostgreSQL, in sandbox mode (the simulators inside it) or against `gateway simulate` (SimulatedProviders).
Every process started here is killed when the script ends."""
import atexit
import base64
import json
import os
import secrets
import signal
import subprocess
import time

from .net import HOST, TRANSIENT, call, free_port
from .providers import PROVIDERS
from .report import Fatal, log_tail, progress

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROVIDER_TIMEOUT_SECONDS = 1
# The worker's timings scaled down, so a check sees polls, retries and settling within seconds; still longer than a
# late success takes to land (LATE_DELAY_MS).
QUICK_TIMINGS = {
    "GATEWAY_PROVIDER_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT_SECONDS), "GATEWAY_POLL_FIRST_SECONDS": "1",
    "GATEWAY_POLL_MAX_SECONDS": "4", "GATEWAY_RETRY_FIRST_SECONDS": "1", "GATEWAY_RETRY_MAX_SECONDS": "4",
    "GATEWAY_SETTLE_SECONDS": "4", "GATEWAY_WORKER_INTERVAL_SECONDS": "0.2",
}
# A gateway as the reliability, fault, trace and monitoring checks run it: on loopback, quick, logging at info, with
# this repository's migrations.
QUICK = dict(QUICK_TIMINGS, GATEWAY_HOST=HOST, LOG_LEVEL="info")
if os.path.isdir(os.path.join(ROOT, "migrations")):
    QUICK["GATEWAY_MIGRATIONS_DIR"] = os.path.join(ROOT, "migrations")
# The simulators' random faults: a late success lands this long after the call, and stops counting as "in flight"
# for their concurrency records a little before the gateway's provider timeout (by then the gateway has given up on
# the call, and may legitimately call again).
LATE_DELAY_MS = 2500
CALLER_TIMEOUT_MS = PROVIDER_TIMEOUT_SECONDS * 1000 - 100


def clean_environment():
    """This environment without the gateway's and the providers' settings, so none leaks in from the caller's shell."""
    prefixes = ("GATEWAY_", "LOG_", "OTEL_") + tuple(p.settings_prefix for p in PROVIDERS)
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


class Process:
    """A child process with its log file (appended to, a line marking each start), in a session of its own, killed
    when the script ends. `start` waits until `ready_path` on `ready_port` answers 200."""
    ALL = []

    def __init__(self, name, command, env, log_path, cwd=ROOT):
        self.name, self.command, self.env, self.log_path, self.cwd = name, command, env, log_path, cwd
        self.proc = None
        self.starts = 0
        Process.ALL.append(self)

    def environment(self):
        return self.env

    def start(self, ready_port, ready_path="/readyz", limit=90, attempts=1, every=0.2):
        """Starts the process and waits for it to be ready (Fatal if it is not within `limit` seconds). A process
        that exited before it was ready is started again, up to `attempts` times in all."""
        for attempt in range(attempts):
            self.starts += 1
            with open(self.log_path, "ab") as out:
                out.write(f"\n===== start {self.starts} of {self.name} =====\n".encode())
                out.flush()
                self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.environment(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                self.wait_ready(ready_port, ready_path, limit, every)
                return
            except Fatal as error:
                if self.proc.poll() is None or attempt == attempts - 1:
                    raise
                progress(f"{self.name} exited at start ({str(error).splitlines()[0]}); starting again")
                time.sleep(1)

    def wait_ready(self, port, path, limit, every):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fatal(f"{self.name} exited with status {self.proc.returncode} before it was ready:\n"
                            f"{log_tail(self.log_path, 20)}")
            try:
                if call(port, "GET", path, timeout=2).status == 200 and self.is_ready():
                    return
            except TRANSIENT:
                pass
            time.sleep(every)
        raise Fatal(f"{self.name} was not ready within {limit} s")

    def is_ready(self):
        """What readiness needs beyond the 200."""
        return True

    def start_or_fail(self, checks, what, *args, **kwargs):
        """`start`, with a failed check `what` (and False) instead of Fatal."""
        try:
            self.start(*args, **kwargs)
            return True
        except Fatal as error:
            checks.check(what, False, str(error))
            return False

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def stop(self, limit=20):
        """SIGTERM, then SIGKILL after `limit` seconds; True if the process ended by itself in time."""
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
        """SIGKILL if still running."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass


def cleanup_all():
    for process in Process.ALL:
        process.cleanup()


atexit.register(cleanup_all)


class SimulatorControls:
    """The simulators' test controls (/sandbox/<provider>/_control/…, never faulted) on `sim_port`."""

    def control(self, method, path, body=None, limit=20.0):
        """A control request, retried on transport errors for up to `limit` seconds."""
        deadline = time.monotonic() + limit
        while True:
            try:
                return call(self.sim_port, method, path, body, timeout=10)
            except TRANSIENT:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def set_chaos(self, rate, seed):
        """Every provider's simulator that takes random faults (`chaos`) fails `rate` of the partner-API calls at
        random (0: none). One that does not (InvoiceXpress: its simulator has no /_control/chaos) gets its scripted
        faults through the public faults helper instead when `rate` is above 0, and has them cleared at 0."""
        for offset, provider in enumerate(PROVIDERS):   # each provider's seed is its place in PROVIDERS
            if not provider.chaos:
                self.script_faults(provider, rate > 0)
                continue
            answer = self.control("POST", f"{provider.sandbox_path}/_control/chaos", {
                "rate": rate, "seed": seed + offset, "late_delay_ms": LATE_DELAY_MS, "caller_timeout_ms": CALLER_TIMEOUT_MS,
            })
            if answer.status != 200:
                raise Fatal(f"POST {provider.sandbox_path}/_control/chaos answered {answer!r}")

    def script_faults(self, provider, on):
        """Clears the provider's scripted faults, then (`on`) puts its `fault_script` on its simulator, through the
        sandbox's public faults helper."""
        path = f"{provider.helpers_path}/faults"
        answer = self.control("DELETE", path)
        if answer.status != 200:
            raise Fatal(f"DELETE {path} answered {answer!r}")
        for fault in provider.fault_script if on else ():
            answer = self.control("POST", path, fault)
            if answer.status != 200:
                raise Fatal(f"POST {path} {fault} answered {answer!r}")

    def simulator_calls(self):
        """{provider id: its simulator's call records}, of every provider whose simulator keeps them (`call_records`;
        InvoiceXpress's has no /_control/calls, so it has no entry)."""
        records = {p.id: self.control("GET", f"{p.sandbox_path}/_control/calls") for p in PROVIDERS if p.call_records}
        if any(a.status != 200 or not isinstance(a.json, dict) for a in records.values()):
            raise Fatal(f"the simulators' /_control/calls answered {records!r}")
        return {provider: answer.json for provider, answer in records.items()}


GATEWAYS = []   # every Gateway made, in order


class Gateway(Process, SimulatorControls):
    """One gateway process: `serve --sandbox` (the simulators inside it; its secrets read from the data directory's
    sandbox-secrets.json once it is ready), or with a SimulatedProviders `serve` against that process, whose state
    then outlives a kill -9 of this one (an API key of its own, GATEWAY_PUBLIC_URL this gateway).

    The environment: the caller's less any gateway or provider setting (`base`, if given, instead), the providers'
    settings, GATEWAY_PORT, GATEWAY_DATA_DIR (unless `data_dir` is None: the working directory's data/), then
    `settings` (QUICK for the reliability checks' timings). The log goes to `log_path` (default the data directory's
    gateway.log). `start` waits for /readyz, starting again (up to `attempts` in all) a gateway that exited at start;
    `stop` is SIGTERM then SIGKILL, `kill9` SIGKILL. `sim_port` is where the simulators (login pages, /_control)
    answer."""

    def __init__(self, binary, data_dir=None, port=None, name="gateway", providers=None, settings=None, log_path=None,
                 sandbox=None, base=None, cwd=ROOT, api_key=None, attempts=3):
        self.binary, self.data_dir, self.port = binary, data_dir, port or free_port()
        self.providers = providers
        self.sandbox = providers is None if sandbox is None else sandbox
        self.settings = dict(settings or {})
        self.base = base
        self.attempts = attempts
        self.secrets = None
        if not self.sandbox:
            self.secrets = {"api_key": api_key or "gw_check_" + secrets.token_hex(16), **(providers.secrets if providers else {})}
        folder = data_dir or os.path.join(cwd, "data")
        self.secrets_path = os.path.join(folder, "sandbox-secrets.json")
        super().__init__(name, [binary, "serve"] + (["--sandbox"] if self.sandbox else []), None,
                         log_path or os.path.join(folder, "gateway.log"), cwd)
        GATEWAYS.append(self)

    @property
    def sim_port(self):
        return self.providers.port if self.providers is not None else self.port

    @property
    def key(self):
        return self.secrets["api_key"]

    def environment(self):
        env = dict(self.base) if self.base is not None else clean_environment()
        if self.providers is not None:
            env.update(self.providers.gateway_environment())
        if not self.sandbox:
            env.update(GATEWAY_API_KEY=self.key, GATEWAY_PUBLIC_URL=f"http://{HOST}:{self.port}",
                       GATEWAY_ENCRYPTION_KEY=base64.b64encode(b"b" * 32).decode(), LOG_FORMAT="json")
        env["GATEWAY_PORT"] = str(self.port)
        if self.data_dir:
            env["GATEWAY_DATA_DIR"] = self.data_dir
        env.update(self.settings)
        return env

    def start(self, ready_within=90, every=0.2):
        super().start(self.port, "/readyz", ready_within, self.attempts, every)
        if self.secrets is None:
            with open(self.secrets_path) as f:
                self.secrets = json.load(f)

    def is_ready(self):
        return not self.sandbox or os.path.exists(self.secrets_path)

    def api(self, method, path, body=None, headers=None, timeout=10.0):
        """A partner-API request with this gateway's key."""
        sent = {"Authorization": f"Bearer {self.key}"}
        sent.update(headers or {})
        return call(self.port, method, path, body, sent, timeout)


def start_gateway(binary, data_dir=None, port=None, ready_within=90, every=0.2, **options):
    """A Gateway (see there for `options`), started: ready (Fatal if not within `ready_within` seconds, asked every
    `every`), its secrets read."""
    gateway = Gateway(binary, data_dir, port, **options)
    gateway.start(ready_within, every)
    return gateway


class SimulatedProviders:
    """`gateway simulate`: every provider's simulator as a process of its own, with the credentials it and the
    gateways share. Its users, partnerships and call records outlive any gateway process. `gateway_environment()`
    points a gateway at it; `urls[provider id]` may be moved to a proxy in front of it (a mutant)."""

    def __init__(self, binary, work, name, answer_delay_ms=0, log_level="info"):
        self.port = free_port()
        self.credentials, self.secrets = {}, {}
        for provider in PROVIDERS:
            settings = provider.simulator_settings()
            self.credentials.update(settings)
            self.secrets.update(provider.check_secrets(settings))
        self.urls = {p.id: p.base_url(f"http://{HOST}:{self.port}") for p in PROVIDERS}
        env = clean_environment()
        env.update(self.credentials, LOG_LEVEL=log_level, LOG_FORMAT="json")
        delay = ["--answer-delay-ms", str(answer_delay_ms)] if answer_delay_ms else []
        self.process = Process(f"{name}: simulator", [binary, "simulate", "--port", str(self.port)] + delay, env,
                               os.path.join(work, "simulator.log"))

    def start(self):
        self.process.start(self.port, "/healthz")

    def stop(self):
        return self.process.stop()

    def gateway_environment(self):
        return dict(self.credentials, **{p.base_url_setting: self.urls[p.id] for p in PROVIDERS})
