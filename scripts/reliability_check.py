#!/usr/bin/env python3
"""Reliability check of the built gateway, its worker and the sandbox simulators, over real HTTP on 127.0.0.1.

Phase A, random faults: every provider's simulator that takes random faults (Wrapp's, MagniFinance's) fails half of
the partner-API calls at random (500 JSON, 502 HTML, malformed JSON in a 200, 429, connection reset, and a late
success that takes effect after the gateway gave up). InvoiceXpress's simulator has no random faults: it gets its
scripted faults instead (500, 502 HTML, garbage in a 200, 429, resets, on its creates and key checks; through the
public faults helper). 15 tenants of each provider (11 new customers, 4 who already were the provider's) are created
concurrently and their customers act (Wrapp logins, keys typed in for people who already had a Wrapp or an
InvoiceXpress account, MagniFinance approvals). Every tenant must become active, none may ever be failed, the stored
credentials must be the provider's, no company registered at once may get a second AddPartner, and no two provider
calls for one customer may run at once (asserted from the simulators' call records: InvoiceXpress's keeps none).

Phase B, kill -9: 60 new customers, of each provider by turns, are created by 6 clients that retry with the same
Idempotency-Key while the gateway is killed with SIGKILL 10 times and restarted on the same data. The providers are
`gateway simulate`, a process of its own (as replica_check.py runs it), so the simulators' users, partnerships,
accounts and call records survive every kill: each new MagniFinance company must have reached AddPartner exactly once
over the whole run (none seen fails, as does a second one after a crash). An InvoiceXpress create whose outcome a kill
hid is asked for credentials (its fiscal id is "already used"): the customer types in the account the first create
made. Nothing acknowledged may be lost or doubled, everything converges, and SQLite's integrity check passes.

    python3 scripts/reliability_check.py --binary .build/debug/gateway [--seed 7] [--phase a|b|all]
    python3 scripts/reliability_check.py --phase b --kills 3 --tenants-b 20            # phase B alone, quickly
    python3 scripts/reliability_check.py --phase b --kills 3 --tenants-b 20 --mutant double-addpartner

`--mutant double-addpartner` is the check's own self-test: phase B's gateway reaches MagniFinance through a small
proxy in this script that sends every AddPartner twice (as a gateway that repeats it blindly would). Phase B must then
fail; the script exits non-zero.
"""
import argparse
import concurrent.futures
import http.server
import os
import random
import signal
import sys
import tempfile
import time
import urllib.parse

from checklib import (
    CHECKS, FIGURES, GATEWAYS, HOST, MAGNIFINANCE, PROVIDERS, QUICK, TRANSIENT, Counter, Driver, Fatal, Gateway, Process,
    SimulatedProviders, call, check_acknowledged_exist, check_all_active, check_credentials, check_history,
    check_integrity, check_one_per_external_id, check_provider_calls, cleanup_all, converge, create, describe,
    make_existing, progress, provider_figures, retrying, run_main, serve_in_background, spec,
)

MUTANTS = ("double-addpartner",)
NEW_PER_PROVIDER, EXISTING_PER_PROVIDER = 11, 4   # phase A's tenants of each provider


# MARK: - The mutant


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
        times = 2 if self.command == "POST" and path.endswith(MAGNIFINANCE.sandbox_path + "/partner") else 1
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
        providers.urls[MAGNIFINANCE.id] = f"http://{HOST}:{proxy.server_address[1]}{MAGNIFINANCE.sandbox_path}"
        return f"MUTANT double-addpartner: MagniFinance reached through a proxy on {proxy.server_address[1]} that sends every AddPartner twice"
    raise ValueError(f"unknown mutant {mutant}")


# MARK: - Phase A


def phase_a(binary, seed, budget):
    rng = random.Random(seed)
    data_dir = tempfile.mkdtemp(prefix="gw-reliability-a-")
    gateway = Gateway(binary, data_dir, name="phase A gateway", settings=QUICK)
    progress(f"phase A: random faults on half of all provider calls (seed {seed}); data in {data_dir}")
    gateway.start()
    try:
        gateway.set_chaos(0.5, seed)
        used = set()
        tenants = []
        for provider in PROVIDERS:
            for existing, count in ((False, NEW_PER_PROVIDER), (True, EXISTING_PER_PROVIDER)):
                kind = provider.kind(existing).replace("_", "-")
                tenants += [spec(provider, f"rel-{kind}-{i}", seed, rng, used, existing) for i in range(count)]
        make_existing(gateway, tenants)
        rng.shuffle(tenants)
        counter = Counter()
        started = time.monotonic()
        deadline = started + budget
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            acknowledged = list(pool.map(lambda t: create(gateway, t, min(deadline, time.monotonic() + 90), counter), tenants))
        progress(f"phase A: {sum(acknowledged)} of {len(tenants)} creates acknowledged in {time.monotonic() - started:.1f} s "
                 f"({counter['create_retries']} retries)")
        CHECKS.check("A: every create acknowledged (201/202, retried with its key)", all(acknowledged),
                     "; ".join(describe(t) for t, ok in zip(tenants, acknowledged) if not ok))
        live = [t for t in tenants if t.get("id")]
        driver = Driver(gateway, counter)
        converged = converge(driver, live, deadline, "phase A")
        converged_at = time.monotonic()
        calls = gateway.simulator_calls()
        gateway.set_chaos(0, seed)

        check_all_active(gateway, tenants, "A")
        check_history(gateway, live, "A")
        check_credentials(gateway, live)

        check_provider_calls(live, calls, "A")

        def took(t):
            return (t.get("active_at") or converged_at) - t["started"]

        slowest = max(live, key=took) if live else None
        faults, provider_calls, kinds = provider_figures(calls)
        FIGURES.append(
            f"phase A: {len(tenants)} tenants, {'converged' if converged else 'NOT converged'} in "
            f"{converged_at - started:.1f} s"
            + (f"; slowest tenant {took(slowest):.1f} s ({slowest['external_id']}, {slowest['kind']}"
               f"{'' if slowest.get('active_at') else ', not active'})" if slowest else "")
            + f"; {faults} faults injected in {provider_calls} provider calls ({kinds}); "
            f"{counter['create_retries']} create retries, {counter['logins_completed']} logins, "
            f"{counter['credentials_supplied']} credential submissions, {counter['refreshes']} refreshes"
        )
        progress(FIGURES[-1])
    finally:
        stopped = gateway.stop()
    CHECKS.check("A: the gateway stops on SIGTERM", stopped)
    check_integrity(data_dir, "A")
    return data_dir, gateway.log_path


# MARK: - Phase B


def phase_b(binary, seed, budget, chaos_rate, kills=10, count=60, mutant=None):
    rng = random.Random(seed * 7919 + 1)
    data_dir = tempfile.mkdtemp(prefix="gw-reliability-b-")
    # The providers run as a process of their own, so their records survive the gateway's kills.
    providers = SimulatedProviders(binary, data_dir, "phase B")
    if mutant:
        progress(apply_mutant(mutant, providers))
    gateway = Gateway(binary, data_dir, name="phase B gateway", providers=providers, settings=QUICK)
    progress(f"phase B: kill -9 x{kills} under concurrent creates of {count} tenants (chaos rate {chaos_rate}); simulator "
             f"process on {providers.port}; data in {data_dir}")
    providers.start()
    gateway.start()
    try:
        if chaos_rate > 0:
            gateway.set_chaos(chaos_rate, seed)
        used = set()
        tenants = []
        for i in range(count):
            provider = PROVIDERS[i % len(PROVIDERS)]
            tenants.append(spec(provider, f"kb-{provider.kind().replace('_', '-')}-{i}", f"b{seed}", rng, used))
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
            progress(f"phase B: {kills} kills at {', '.join(f'{t:.1f}' for t in kill_times)} s; "
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
        calls = gateway.simulator_calls()
        if chaos_rate > 0:
            gateway.set_chaos(0, seed)

        check_acknowledged_exist(gateway, acknowledged, "B: ")

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
        check_provider_calls(acknowledged, calls, "B (simulator process, across all kills)", concurrency=False)
        if mutant:
            progress(f"MUTANT {mutant}: {AddPartnerTwice.doubled} AddPartner calls were sent twice")

        check_all_active(gateway, tenants, "B")
        check_credentials(gateway, acknowledged, "B")
        FIGURES.append(
            f"phase B: {len(kill_times)} kills; {len(acknowledged)} of {len(tenants)} creates acknowledged with "
            f"{counter['create_retries']} retries ({counter['create_transport_error']} transport errors, "
            f"{counter['create_in_use']} idempotency_key_in_use, {counter['create_5xx']} 5xx, {counter['create_429']} 429); "
            f"{'converged' if converged else 'NOT converged'} {converged_at - last_restart:.1f} s after the last restart "
            f"({converged_at - started:.1f} s after the first create); {counter['fresh_links']} fresh login links, "
            f"{counter['credentials_supplied']} credential submissions; "
            f"{sum((calls[MAGNIFINANCE.id].get('add_partner') or {}).values())} AddPartner calls seen by the simulator process"
        )
        progress(FIGURES[-1])
    finally:
        stopped = gateway.stop()
        providers.stop()
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
                process.stop()
            if process.log_path not in logs:
                logs.append(process.log_path)

    CHECKS.report("reliability", began, logs, dirs)
    return 1 if CHECKS.failed else 0


if __name__ == "__main__":
    run_main(main, cleanup_all)
