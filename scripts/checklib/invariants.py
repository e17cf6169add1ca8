"""What must hold after a run of the generic checks, whatever happened during it: recorded in checklib.CHECKS."""
import os
import sqlite3

from .net import retrying
from .onboarding import describe, listed, provider_of
from .providers import PROVIDERS
from .report import CHECKS


def check_history(gateway, tenants, label):
    failed = []
    for tenant in tenants:
        if not tenant.get("id"):
            continue
        events = listed(gateway, f"/v1/tenants/{tenant['id']}/events?limit=100")
        states = [((e.get("data") or {}).get("tenant") or {}).get("state") for e in events]
        if "failed" in states or tenant.get("seen_failed"):
            failed.append(f"{tenant['external_id']} ({tenant['id']}): states {states}")
    CHECKS.check(f"{label}: no tenant was ever failed", not failed, "; ".join(failed) or f"{len(tenants)} histories read")


def check_all_active(gateway, tenants, label):
    stragglers = []
    for tenant in tenants:
        if not tenant.get("id"):
            stragglers.append(describe(tenant))
            continue
        answer = retrying(lambda: gateway.api("GET", f"/v1/tenants/{tenant['id']}"))
        if answer.status == 200 and isinstance(answer.json, dict):
            tenant["resource"] = answer.json
            tenant["state"] = answer.json.get("state")
        if tenant.get("state") != "active":
            stragglers.append(describe(tenant))
    CHECKS.check(f"{label}: all {len(tenants)} tenants active", not stragglers,
                 "; ".join(stragglers) if stragglers else "")
    return not stragglers


def check_one_per_external_id(gateway, tenants, label=""):
    """Every tenant the run created is listed exactly once, and nothing else is."""
    everything = listed(gateway, "/v1/tenants?limit=100")
    per_pair = {}
    for item in everything:
        pair = (item.get("provider"), item.get("external_id"))
        per_pair[pair] = per_pair.get(pair, 0) + 1
    doubled = {f"{p}/{e}": n for (p, e), n in per_pair.items() if n != 1}
    absent = [t["external_id"] for t in tenants if per_pair.get((t["provider"], t["external_id"]), 0) == 0]
    strangers = [f"{p}/{e}" for (p, e) in per_pair if e not in {t["external_id"] for t in tenants}]
    CHECKS.check(f"{label}exactly one tenant per external_id", not doubled and not absent and not strangers,
                 f"doubled {doubled}, absent {absent}, unknown {strangers}" if (doubled or absent or strangers)
                 else f"{len(everything)} tenants listed")


def check_provider_calls(tenants, calls, label, concurrency=True):
    """From the simulators' records (`calls`: {provider id: records}): what each provider's records must show of its
    tenants (one AddPartner per company MagniFinance registered at once: none seen fails too), and, with
    `concurrency`, never two calls for one customer in flight together (whichever gateway process made them).
    A provider whose simulator keeps no call records (InvoiceXpress: no /_control/calls) is not in `calls`, and
    nothing is asserted of its calls here."""
    recorded = [p for p in PROVIDERS if p.call_records]
    for provider in recorded:
        provider.check_calls(CHECKS, [t for t in tenants if t["provider"] == provider.id], calls[provider.id], label)
    if not concurrency:
        return
    for provider in recorded:
        record = calls[provider.id]
        most = record.get(provider.concurrency_record)
        CHECKS.check(f"{label}: never two {provider.name} calls for one {provider.customer} at once",
                     isinstance(most, int) and most <= 1,
                     f"{provider.concurrency_record} {most}, overlaps {record.get('overlapping_calls')}")


def check_credentials(gateway, tenants, label="A"):
    """Every credential set the gateway holds is compared with the simulator's own record of that customer: a
    lookup that is not a clear answer (a 200 with the record) is a failure, never a skip, and so is a run in which
    nothing was compared at all."""
    problems, read, compared = [], 0, 0
    for tenant in tenants:
        resource = tenant.get("resource") or {}
        if not resource.get("credentials_available"):
            if tenant.get("state") == "active":
                problems.append(f"{tenant['external_id']}: active without credentials_available")
            continue
        answer = retrying(lambda: gateway.api("GET", f"/v1/tenants/{tenant['id']}/credentials"))
        if answer.status != 200 or not isinstance(answer.json, dict):
            problems.append(f"{tenant['external_id']}: GET credentials answered {answer!r}")
            continue
        read += 1
        done, problem = provider_of(tenant).compare_credentials(gateway, tenant, answer.json)
        compared += done
        if problem:
            problems.append(problem)
    if not compared and not problems:
        problems.append(f"no credential set was compared ({len(tenants)} tenants, {read} credential sets read)")
    CHECKS.check(f"{label}: stored credentials are the provider's", not problems,
                 "; ".join(problems) if problems else f"{compared} of {read} credential sets read, each compared with the simulator's")


def check_acknowledged_exist(gateway, acknowledged, label=""):
    """Each acknowledged tenant reads back by id, with its external_id."""
    missing = []
    for tenant in acknowledged:
        answer = retrying(lambda: gateway.api("GET", f"/v1/tenants/{tenant['id']}"))
        if answer.status != 200 or not isinstance(answer.json, dict) or answer.json.get("external_id") != tenant["external_id"]:
            missing.append(f"{tenant['external_id']} -> {tenant['id']}: {answer!r}")
    CHECKS.check(f"{label}every acknowledged tenant exists", not missing, "; ".join(missing))


def check_integrity(data_dir, label):
    path = os.path.join(data_dir, "gateway.sqlite")
    try:
        connection = sqlite3.connect(path, timeout=10)
        try:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        finally:
            connection.close()
        ok = rows == [("ok",)]
        detail = "ok" if ok else repr(rows[:10])
    except sqlite3.Error as error:
        ok, detail = False, f"{type(error).__name__}: {error}"
    CHECKS.check(f"{label}: PRAGMA integrity_check", ok, detail)


def provider_figures(calls):
    """(faults injected, partner-API calls, faults by kind) over every provider's simulator records (those that keep
    them: InvoiceXpress's simulator does not)."""
    faults = sum(record.get("faults_injected", 0) for record in calls.values())
    partner_calls = sum(p.partner_calls(calls[p.id]) for p in PROVIDERS if p.id in calls)
    kinds = {}
    for record in calls.values():
        for kind, n in ((record.get("chaos") or {}).get("faults_by_kind") or {}).items():
            kinds[kind] = kinds.get(kind, 0) + n
    return faults, partner_calls, kinds


