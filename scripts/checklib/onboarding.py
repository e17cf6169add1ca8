"""Tenants as the generic checks make them, their creates (retried with the same Idempotency-Key), and the customers'
side of onboarding, played until every tenant is active. A `gateway` here is anything with `api` (the partner API),
`control` and `sim_port` (the simulators): a Gateway, or replica_check's cluster behind nginx."""
import concurrent.futures
import json
import random
import threading
import time
import urllib.parse
import uuid

from .net import HOST, TRANSIENT, call, retrying
from .providers import PROVIDER_BY_ID
from .report import Fatal, progress


def spec(provider, external_id, run, rng, used_tax_ids, existing=False):
    """A tenant to create: a customer of `provider` (one who already was the provider's when `existing`), with its
    Idempotency-Key and the exact body every retry sends."""
    body, extras = provider.create_body(external_id, existing, rng, used_tax_ids)
    tenant = {"kind": provider.kind(existing), "provider": provider.id, "existing": existing, "external_id": external_id,
              "key": f"rel-{run}-{external_id}", **extras}
    tenant["body"] = json.dumps(body, sort_keys=True).encode()  # the same bytes on every retry
    return tenant


def provider_of(tenant):
    return PROVIDER_BY_ID[tenant["provider"]]


def make_existing(gateway, tenants):
    """The sandbox test helpers that make each `existing` tenant's customer one the provider already had (before its
    create); Fatal when a helper refuses. Returns how many helpers were called."""
    made = 0
    for tenant in tenants:
        if tenant.get("existing"):
            answer = provider_of(tenant).make_existing(gateway, tenant)
            if answer is not None:
                made += 1
                if answer.status != 200:
                    raise Fatal(f"making {tenant['external_id']} an existing {provider_of(tenant).name} customer answered {answer!r}")
    return made


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}

    def add(self, name, n=1):
        with self.lock:
            self.values[name] = self.values.get(name, 0) + n

    def __getitem__(self, name):
        with self.lock:
            return self.values.get(name, 0)


def create(gateway, tenant, deadline, counter):
    """POST /v1/tenants with the tenant's Idempotency-Key and body, retried (same key, same body) on transport
    errors, 5xx, 429 and 409 idempotency_key_in_use, until acknowledged or `deadline`."""
    tenant.setdefault("started", time.monotonic())
    attempt = 0
    while True:
        attempt += 1
        try:
            answer = gateway.api("POST", "/v1/tenants", tenant["body"], {"Idempotency-Key": tenant["key"]}, timeout=30)
            tenant["last_answer"] = repr(answer)
            if answer.status in (200, 201, 202) and isinstance(answer.json, dict) and answer.json.get("id"):
                tenant["id"] = answer.json["id"]
                tenant["ack_status"] = answer.status
                tenant["state"] = answer.json.get("state")
                tenant["acknowledged"] = time.monotonic()
                tenant["resource"] = answer.json
                if tenant["state"] == "active":
                    # Active at once (a new MagniFinance company): the driver never steps it, so it is timed here.
                    tenant["active_at"] = tenant["acknowledged"]
                counter.add(f"create_{answer.status}")
                return True
            transient = answer.status >= 500 or answer.status == 429 or (
                answer.status == 409 and answer.code == "idempotency_key_in_use")
            if not transient:
                tenant["create_error"] = repr(answer)
                return False
            counter.add("create_in_use" if answer.status == 409 else "create_5xx" if answer.status >= 500 else "create_429")
        except TRANSIENT as error:
            tenant["last_answer"] = f"{type(error).__name__}: {error}"
            counter.add("create_transport_error")
        if time.monotonic() > deadline:
            return False
        counter.add("create_retries")
        time.sleep(min(2.0, 0.15 * attempt) + random.random() * 0.2)


class Driver:
    """Plays the customers: polls each tenant and does what its next_action asks, through the sandbox: presses the
    login page's button (`redirect_to_url`), types in what the provider shows (`provide_credentials`), has the
    provider approve (`await_approval`)."""

    def __init__(self, gateway, counter, recomplete_after=None, supply_for_new=False):
        self.gateway = gateway
        self.counter = counter
        # Once, a login page is completed once (a customer logs in once); under kills, again after this many
        # seconds, since a kill may lose the webhook, or the simulator the login.
        self.recomplete_after = recomplete_after
        # Whether a new customer asked for credentials (the key the provider's webhook brought was lost) types them
        # in too; without, only customers who already were the provider's do.
        self.supply_for_new = supply_for_new

    def step(self, tenant):
        try:
            self._step(tenant)
        except TRANSIENT:
            self.counter.add("drive_transport_errors")
        except Exception as error:  # noqa: BLE001 - a bug here must not stop the other tenants
            note(tenant, f"driver error: {type(error).__name__}: {error}")

    def _step(self, tenant):
        now = time.monotonic()
        answer = self.gateway.api("GET", f"/v1/tenants/{tenant['id']}")
        if answer.status != 200 or not isinstance(answer.json, dict):
            tenant["last_get"] = repr(answer)
            return
        resource = answer.json
        state = resource.get("state")
        action = resource.get("next_action") or {}
        signature = (state, action.get("type"))
        if signature != tenant.get("signature"):
            tenant["signature"] = signature
            tenant["changed"] = now
            tenant.setdefault("path", []).append("/".join(x for x in signature if x))
        tenant["state"] = state
        tenant["resource"] = resource
        if state == "active":
            tenant.setdefault("active_at", now)
            return
        if state == "failed":
            tenant["seen_failed"] = True
            return
        if state == "action_required":
            kind = action.get("type")
            if kind == "redirect_to_url":
                self.complete_login(tenant, action.get("url"))
            elif kind == "provide_credentials":
                if tenant.get("existing") or self.supply_for_new:
                    self.supply_credentials(tenant)
                else:
                    tenant["asked_for_credentials"] = True
            elif kind == "await_approval":
                self.approve(tenant)
        # Sparingly: a tenant that has not moved for a long while gets one refresh now and then.
        if now - tenant.get("changed", now) > 45 and now - tenant.get("refreshed", 0) > 45:
            tenant["refreshed"] = now
            self.counter.add("refreshes")
            self.gateway.api("POST", f"/v1/tenants/{tenant['id']}/refresh", headers={"Idempotency-Key": str(uuid.uuid4())},
                             timeout=20)

    def complete_login(self, tenant, url):
        now = time.monotonic()
        if tenant.get("completed"):
            if self.recomplete_after is None or now - tenant["completed"] < self.recomplete_after:
                return
        if not url:
            return
        parts = urllib.parse.urlsplit(url)
        if parts.hostname != HOST or parts.port != self.gateway.sim_port:
            note(tenant, f"login URL not on this gateway: {url}")
            return
        answer = self.press_button(parts.path)
        if answer.status == 404:
            # The login link is not (or no longer) valid: ask the gateway for a fresh one.
            fresh = self.gateway.api("POST", f"/v1/tenants/{tenant['id']}/onboarding-link",
                                     headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=20)
            self.counter.add("fresh_links")
            if fresh.status != 200 or not isinstance(fresh.json, dict) or not fresh.json.get("url"):
                return
            parts = urllib.parse.urlsplit(fresh.json["url"])
            if parts.hostname != HOST or parts.port != self.gateway.sim_port:
                return
            answer = self.press_button(parts.path)
        if answer.status == 200:
            tenant["completed"] = now
            self.counter.add("logins_completed")

    def press_button(self, login_path):
        """The sandbox login page's button: a form POST to `<login url>/complete`."""
        return call(self.gateway.sim_port, "POST", login_path.rstrip("/") + "/complete", b"",
                    {"Content-Type": "application/x-www-form-urlencoded"}, timeout=20)

    def supply_credentials(self, tenant):
        now = time.monotonic()
        if now - tenant.get("supplied", 0) < 2:
            return
        tenant["supplied"] = now
        credentials = provider_of(tenant).customer_credentials(self.gateway, tenant)
        if credentials is None:
            return
        self.counter.add("credentials_supplied")
        answer = self.gateway.api("PUT", f"/v1/tenants/{tenant['id']}/credentials", credentials,
                                  {"Idempotency-Key": str(uuid.uuid4())}, timeout=20)
        if answer.status == 200:
            return
        expected = answer.status in (202, 409, 503) or answer.status >= 500 or (
            answer.status == 422 and answer.code == "provider_unavailable")
        if not expected:
            note(tenant, f"PUT credentials answered {answer!r}")

    def approve(self, tenant):
        if tenant.get("approved"):
            return
        if provider_of(tenant).approve(self.gateway, tenant):
            tenant["approved"] = time.monotonic()


def converge(driver, tenants, deadline, label):
    """Drives every tenant until all are active, every one left is failed, or `deadline`."""
    last_report = 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while time.monotonic() < deadline:
            todo = [t for t in tenants if t.get("state") != "active"]
            if not todo:
                return True
            if all(t.get("state") == "failed" for t in todo):
                return False
            list(pool.map(driver.step, todo))
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                states = {}
                for t in tenants:
                    name = "/".join(x for x in (t.get("signature") or (t.get("state"), None)) if x) or "?"
                    states[name] = states.get(name, 0) + 1
                progress(f"{label}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
            time.sleep(0.5)
    return all(t.get("state") == "active" for t in tenants)


def note(tenant, text):
    notes = tenant.setdefault("notes", [])
    if not notes or notes[-1] != text:
        notes.append(text)


def describe(tenant):
    resource = tenant.get("resource") or {}
    parts = [f"{tenant['external_id']} ({tenant.get('id')}, {tenant['kind']}): {tenant.get('state')}"]
    if resource.get("next_action"):
        parts.append(f"next_action {resource['next_action'].get('type')}")
    if resource.get("last_error"):
        parts.append(f"last_error {json.dumps(resource['last_error'])[:300]}")
    if tenant.get("path"):
        parts.append("path " + " > ".join(tenant["path"]))
    if tenant.get("asked_for_credentials"):
        parts.append(f"a new {provider_of(tenant).name} customer was asked for credentials (the key its provider sent was lost)")
    for text in tenant.get("notes", [])[-3:]:
        parts.append(text)
    if tenant.get("create_error") or not tenant.get("id"):
        parts.append(f"last create answer {tenant.get('create_error') or tenant.get('last_answer')}")
    return "; ".join(parts)


def listed(gateway, path):
    """Every item of a paged list (`{"data", "next_cursor"}`), following next_cursor."""
    items, cursor = [], None
    for _ in range(50):
        separator = "&" if "?" in path else "?"
        page_path = path + (f"{separator}cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
        answer = retrying(lambda: gateway.api("GET", page_path))
        if answer.status != 200 or not isinstance(answer.json, dict):
            raise Fatal(f"GET {page_path} answered {answer!r}")
        items.extend(answer.json.get("data") or [])
        cursor = answer.json.get("next_cursor")
        if not cursor:
            return items
    raise Fatal(f"GET {path}: more than 50 pages")
