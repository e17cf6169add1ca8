#!/usr/bin/env python3
"""Traces and request ids as an operator follows them, against the built gateway (sandbox, SQLite, worker on).

An OTLP/HTTP receiver on loopback (decoded with `opentelemetry-proto`) takes the gateway's spans, an events receiver
takes its deliveries, and the gateway logs JSON at debug. Then:

- A create sent with a W3C `traceparent` and an `X-Request-ID` is one trace: the HTTP span continues the caller's
  span, the provider call is its child, the provider's HTTP request the call's child (method, status, attempt). The
  work the create queued runs later as a job span in the same trace, and so does the webhook's processing in the
  webhook request's trace.
- Event deliveries carry a `traceparent` naming their delivery span.
- No span carries a secret: partner key, admin token, provider credentials, webhook tokens, onboarding links.
- The log scan: over the whole run (creates of every provider, customers logging in, approving and typing in keys,
  refresh, a bad request, an unknown path, admin calls), every line written inside a request's trace or about a
  tenant carries a request id, every line with a request id carries the trace id of that request, and no line holds
  a secret.
- InvoiceXpress sends keys in its URLs (`?api_key=`): the partner's (INVOICEXPRESS_API_KEY, the sandbox's
  `invoicexpress_api_key`) on every create, a customer's on the check of a key typed in. The run makes a new
  InvoiceXpress customer (an account made at once) and an existing one (a key typed in and checked), and both scans
  name those keys: none may appear in a log line or a span.
- The provider proxy: a Wrapp customer taken to active through the sandbox helpers (complete-login), then a
  `POST /v1/tenants/{id}/access-token` and a proxied `GET /v1/tenants/{id}/provider/tenant_details?…`. Neither the
  token handed out nor the customer's Wrapp api_key appears in a log line or a span (name or attribute); the
  access-token request's server span holds no token; a "provider proxy" span (provider.name, the route template,
  status 200) is a child of the proxied request's server span, and its child client span (HTTP GET) names no path
  or query.

    python3 scripts/trace_check.py --binary .build/debug/gateway
"""
import argparse
import base64
import http.server
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklib import (  # noqa: E402 - the gateway process, tenants, the customers' driver, the report
    CHECKS, FIGURES, HOST, INVOICEXPRESS, QUICK, WRAPP, Counter, Driver, Fatal, Gateway, call, cleanup_all, converge, create, describe,
    kinds, progress, provider_of, run_main, serve_in_background, spec,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Collector:
    """What the receivers heard: spans by id, and each event delivery's headers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spans = {}
        self.deliveries = []

    def add_spans(self, body):
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            for resource in request.resource_spans:
                service = {a.key: value(a.value) for a in resource.resource.attributes}.get("service.name")
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        self.spans[span.span_id.hex()] = {
                            "trace": span.trace_id.hex(), "id": span.span_id.hex(), "parent": span.parent_span_id.hex(),
                            "name": span.name, "kind": span.kind, "status": span.status.code, "service": service,
                            "attributes": {a.key: value(a.value) for a in span.attributes},
                        }

    def snapshot(self):
        with self.lock:
            return list(self.spans.values()), list(self.deliveries)


def serve(collector):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/v1/traces":
                collector.add_spans(body)
                answer, kind = trace_service_pb2.ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"
            else:
                with collector.lock:
                    collector.deliveries.append({k.lower(): v for k, v in self.headers.items()})
                answer, kind = b"{}", "application/json"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    return serve_in_background(Handler)


class TracedGateway(Gateway):
    """The sandbox, as the reliability check runs it, exporting its spans and delivering its events to
    `receiver_port`, logging JSON at debug."""

    def __init__(self, binary, data_dir, receiver_port, overrides=None):
        self.events_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.collector_token = "collector-" + secrets.token_hex(16)
        settings = dict(
            QUICK,
            # Spans leave in batches every 5 s, so the last ones of the run reach the receiver only through the flush
            # at shutdown. A collector's token in the headers, which must never be logged.
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{HOST}:{receiver_port}", OTEL_BSP_SCHEDULE_DELAY="5000",
            OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer {self.collector_token}",
            LOG_FORMAT="json", LOG_LEVEL="debug",
            GATEWAY_EVENTS_URL=f"http://{HOST}:{receiver_port}/events", GATEWAY_EVENTS_SECRET=self.events_secret,
        )
        settings.update(overrides or {})  # --gateway-env: what the check's own self-test breaks
        super().__init__(binary, data_dir, name="traced gateway", settings=settings)


def wait_for_spans(collector, predicate, limit=20.0):
    deadline = time.monotonic() + limit
    while True:
        spans, _ = collector.snapshot()
        found = [s for s in spans if predicate(s)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


SECRETS = {"onboarding link": set(), "webhook token": set(), "probe path": set()}
# InvoiceXpress's keys travel in its URLs: scanned for by name as well (they are in the secrets too).
INVOICEXPRESS_KEYS = {"partner": set(), "customer": set()}


def invoicexpress_leaks(texts):
    """Which InvoiceXpress keys (partner's, customers') appear in any of `texts`."""
    keys = [(kind, key) for kind, values in INVOICEXPRESS_KEYS.items() for key in values]
    return sorted({kind for text in texts for kind, key in keys if key in text})


def traced_create(gateway, collector, counter):
    """A create with the caller's traceparent, followed through its spans."""
    trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    request_id = "trace-check-" + secrets.token_hex(4)
    tenant = spec(WRAPP, "trace-w-1", "trace", None, set())
    answer = gateway.api("POST", "/v1/tenants", tenant["body"], {
        "Idempotency-Key": tenant["key"], "traceparent": f"00-{trace}-{caller_span}-01", "X-Request-ID": request_id,
    }, timeout=30)
    CHECKS.check("the traced create is acknowledged", answer.status in (201, 202), repr(answer))
    CHECKS.check("the answer names the caller's request id", answer.headers.get("x-request-id") == request_id,
                 str(answer.headers.get("x-request-id")))
    if isinstance(answer.json, dict) and answer.json.get("id"):
        tenant.update(id=answer.json["id"], state=answer.json.get("state"), started=time.monotonic())
        counter.add(f"create_{answer.status}")
        link = ((answer.json.get("next_action") or {}).get("onboarding_link") or "")
        if "/onboard/" in link:
            SECRETS["onboarding link"].add(link.rstrip("/").split("/")[-1])
    customer = gateway.control("GET", f"/sandbox/test-helpers/{WRAPP.id}/customers/{tenant['external_id']}")
    endpoint = (customer.json or {}).get("webhook_endpoint") if isinstance(customer.json, dict) else None
    if endpoint:
        SECRETS["webhook token"].add(endpoint.rstrip("/").split("/")[-1])

    servers = wait_for_spans(collector, lambda s: s["trace"] == trace and s["parent"] == caller_span)
    server = servers[0] if servers else None
    CHECKS.check("one HTTP span continues the caller's trace, a child of the caller's span",
                 len(servers) == 1 and server["kind"] == SERVER, json.dumps(servers))
    if server:
        attributes = server["attributes"]
        CHECKS.check("the HTTP span is named by its route, with method, status and request id",
                     server["name"] == "POST /v1/tenants" and attributes.get("http.route") == "/v1/tenants"
                     and attributes.get("http.request.method") == "POST"
                     and attributes.get("http.response.status_code") == answer.status
                     and attributes.get("request.id") == request_id, json.dumps(server))
    # A span whose parent never came is not waited for.
    calls = wait_for_spans(collector, lambda s: s["parent"] == server["id"] and s["kind"] == CLIENT) if server else []
    call = calls[0] if calls else None
    CHECKS.check("the provider call is a child of the HTTP span (provider, operation, attempt 1)",
                 call is not None and call["attributes"].get("provider.name") == WRAPP.id
                 and call["attributes"].get("provider.attempt") == 1 and call["name"].startswith(WRAPP.id + " "),
                 json.dumps(calls))
    requests = wait_for_spans(collector, lambda s: s["parent"] == call["id"]) if call else []
    CHECKS.check("the provider's HTTP requests are children of the call, with method and status",
                 bool(requests) and all(r["attributes"].get("http.request.method") in ("GET", "POST")
                                        and isinstance(r["attributes"].get("http.response.status_code"), int)
                                        for r in requests), json.dumps(requests))
    return tenant, trace, server, request_id


PROXY_ROUTE = "/v1/tenants/{id}/provider/{path}"
# What the proxied run handed out or used: none may appear in a log line or a span.
PROXY_SECRETS = {"access token": set(), "customer's Wrapp api_key": set()}


def named_leaks(texts, named):
    """Which kinds of `named` ({kind: values}) appear in any of `texts`."""
    pairs = [(kind, v) for kind, values in named.items() for v in values]
    return sorted({kind for text in texts for kind, v in pairs if v in text})


def proxied_wrapp(gateway, counter, used):
    """A new Wrapp customer taken to active through the sandbox helpers (complete-login, then Wrapp's webhook), then a
    token from POST …/access-token and a proxied GET tenant_details. Returns what the span checks need."""
    tenant = spec(WRAPP, "trace-w-proxy", "trace", None, used)
    found = {"tenant": tenant, "marker": "probe" + secrets.token_hex(8),
             "token_request": "trace-check-token-" + secrets.token_hex(4), "proxy_request": "trace-check-proxy-" + secrets.token_hex(4)}
    if not create(gateway, tenant, time.monotonic() + 60, counter):
        CHECKS.check("the proxied Wrapp tenant is created", False, tenant.get("create_error") or tenant.get("last_answer", ""))
        return found
    helper = f"{WRAPP.helpers_path}/customers/{tenant['external_id']}"
    login = gateway.control("POST", f"{helper}/complete-login")
    CHECKS.check("the proxied Wrapp customer logs in through the sandbox helper (complete-login)", login.status == 200,
                 str(login.status) if login.status == 200 else repr(login))
    deadline, state = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        answer = gateway.api("GET", f"/v1/tenants/{tenant['id']}")
        state = (answer.json or {}).get("state") if isinstance(answer.json, dict) else None
        if state == "active":
            break
        time.sleep(0.3)
    tenant["state"] = state
    CHECKS.check("the proxied Wrapp tenant becomes active (Wrapp's webhook brought the key)", state == "active", f"state {state}")
    customer = gateway.control("GET", helper)
    api_key = (customer.json or {}).get("api_key") if isinstance(customer.json, dict) else None
    CHECKS.check("the sandbox helper names the Wrapp customer's api_key", bool(api_key), "" if api_key else repr(customer))
    if api_key:
        PROXY_SECRETS["customer's Wrapp api_key"].add(api_key)
    issued = gateway.api("POST", f"/v1/tenants/{tenant['id']}/access-token", headers={"X-Request-ID": found["token_request"]})
    token = (issued.json or {}).get("token") if isinstance(issued.json, dict) else None
    CHECKS.check("POST /v1/tenants/{id}/access-token answers 200 with a Wrapp token",
                 issued.status == 200 and bool(token) and issued.json.get("provider") == WRAPP.id,
                 f"{issued.status} {issued.code or ''}")
    if token:
        PROXY_SECRETS["access token"].add(token)
        found["token"] = token
    proxied = gateway.api("GET", f"/v1/tenants/{tenant['id']}/provider/tenant_details?check={found['marker']}",
                          headers={"X-Request-ID": found["proxy_request"]})
    CHECKS.check("the proxied GET tenant_details answers 200, naming the customer",
                 proxied.status == 200 and isinstance(proxied.json, dict)
                 and proxied.json.get("partner_user_id") == tenant["external_id"], repr(proxied))
    return found


def check_proxy_spans(spans, proxied):
    """The access-token and proxied requests' spans, after the flush at shutdown."""
    def server(request_id):
        return next((s for s in spans if s["kind"] == SERVER and s["attributes"].get("request.id") == request_id), None)

    issued = server(proxied["token_request"])
    CHECKS.check("the access-token request has a server span that holds no token",
                 issued is not None and proxied.get("token") and proxied["token"] not in json.dumps(issued),
                 json.dumps(issued) if issued else "no server span with its request id")
    outer = server(proxied["proxy_request"])
    proxies = [s for s in spans if s["name"] == "provider proxy" and outer is not None and s["parent"] == outer["id"]]
    span = proxies[0] if proxies else None
    CHECKS.check(f'a "provider proxy" span, child of the proxied request\'s server span: provider.name wrapp, '
                 f'http.route {PROXY_ROUTE}, http.response.status_code 200',
                 len(proxies) == 1 and span["attributes"].get("provider.name") == WRAPP.id
                 and span["attributes"].get("http.route") == PROXY_ROUTE
                 and span["attributes"].get("http.response.status_code") == 200,
                 json.dumps(proxies) if proxies else f"server span: {json.dumps(outer)}; "
                 f"provider proxy spans: {json.dumps([s for s in spans if s['name'] == 'provider proxy'][:3])}")
    children = [s for s in spans if span is not None and s["parent"] == span["id"]]
    requests = [s for s in children if s["kind"] == CLIENT and s["name"] == "HTTP GET"]
    url_keys = {"url.full", "url.path", "url.query", "http.url", "http.target", "url.template"}
    named = [s for s in requests for k, v in s["attributes"].items()
             if k in url_keys or any(part in str(v) for part in ("tenant_details", proxied["marker"], "?", "/"))]
    CHECKS.check("the proxy span has a child client span (HTTP GET, method and status) whose attributes name no path "
                 "or query", len(requests) == 1 and requests[0]["attributes"].get("http.request.method") == "GET"
                 and requests[0]["attributes"].get("http.response.status_code") == 200 and not named,
                 json.dumps(children))
    marked = [s for s in spans if proxied["marker"] in json.dumps(s)]
    CHECKS.check("no span holds the proxied request's query", not marked, json.dumps(marked[:3]))
    leaks = named_leaks((json.dumps(s) for s in spans), PROXY_SECRETS)
    CHECKS.check("no span (name or attribute) holds the access token handed out or the customer's Wrapp api_key",
                 all(PROXY_SECRETS.values()) and not leaks,
                 f"found: {leaks}" if leaks else f"{len(spans)} spans looked at")


def check_queued_work(collector, trace, server, tenant):
    """The customer has not logged in yet: the worker polls Wrapp for them (first after GATEWAY_POLL_FIRST_SECONDS)."""
    jobs = wait_for_spans(collector, lambda s: s["trace"] == trace and s["kind"] == CONSUMER, limit=30)
    CHECKS.check("the work the create queued runs as a job span in the create's trace, a child of its HTTP span",
                 bool(jobs) and all(j["parent"] == server["id"] and j["attributes"].get("tenant.id") == tenant.get("id")
                                    for j in jobs), json.dumps(jobs))
    attempts = {j["id"]: j["attributes"].get("job.attempt") for j in jobs}
    job_calls = wait_for_spans(collector, lambda s: s["parent"] in attempts and s["kind"] == CLIENT)
    CHECKS.check("each job's provider calls are its children, with the job's attempt",
                 bool(job_calls) and all(c["attributes"].get("provider.attempt") == attempts[c["parent"]] for c in job_calls),
                 json.dumps(job_calls[:3]))


def check_webhook_spans(collector):
    hooks = wait_for_spans(collector, lambda s: s["kind"] == CONSUMER and s["name"] == "job webhook")
    spans, _ = collector.snapshot()
    by_id = {s["id"]: s for s in spans}
    parents = [by_id.get(h["parent"]) for h in hooks]
    CHECKS.check("a webhook's processing is a job span in the webhook request's trace",
                 bool(hooks) and all(p is not None and p["kind"] == SERVER and
                                     p["attributes"].get("http.route", "").startswith("/webhooks/") for p in parents),
                 json.dumps(hooks[:3]))


def check_deliveries(collector):
    deadline = time.monotonic() + 20
    while True:
        spans, deliveries = collector.snapshot()
        by_id = {s["id"]: s for s in spans}
        carried = [d for d in deliveries if d.get("traceparent")]
        matched = [d for d in carried if (by_id.get(d["traceparent"].split("-")[2]) or {}).get("attributes", {}).get("event.id")
                   == d.get("webhook-id")]
        if (deliveries and len(matched) == len(deliveries)) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    CHECKS.check("every event delivery carries a traceparent naming its delivery span",
                 bool(deliveries) and len(matched) == len(deliveries),
                 f"{len(deliveries)} deliveries, {len(carried)} with a traceparent, {len(matched)} matching a span")
    FIGURES.append(f"{len(deliveries)} event deliveries, each with the traceparent of its span")


def secret_values(gateway, tenants):
    found = [v for v in gateway.secrets.values() if isinstance(v, str) and len(v) >= 12]
    found += [gateway.events_secret, gateway.collector_token]
    for kind, values in SECRETS.items():
        CHECKS.check(f"the secret scans know a {kind}", bool(values))
        found += values
    for tenant in tenants:
        answer = gateway.api("GET", f"/v1/tenants/{tenant['id']}/credentials")
        if answer.status == 200 and isinstance(answer.json, dict):
            found += [v for v in json.dumps(answer.json).split('"') if len(v) >= 16 and " " not in v]
            if tenant["provider"] == INVOICEXPRESS.id and answer.json.get("api_key"):
                INVOICEXPRESS_KEYS["customer"].add(answer.json["api_key"])
    partner_key = gateway.secrets.get("invoicexpress_api_key")
    if partner_key:
        INVOICEXPRESS_KEYS["partner"].add(partner_key)
    CHECKS.check("the secret scans know the partner's InvoiceXpress key (INVOICEXPRESS_API_KEY, the sandbox's "
                 "invoicexpress_api_key)", bool(partner_key) and partner_key in found,
                 "" if partner_key else f"sandbox-secrets.json has {sorted(gateway.secrets)}")
    customers = INVOICEXPRESS_KEYS["customer"]
    CHECKS.check("the secret scans know the api_key of every InvoiceXpress customer of the run",
                 len(customers) >= 2 and customers <= set(found),
                 f"{len(customers)} keys (a new customer's and an existing one's expected)")
    return [s for s in set(found) if len(s) >= 12]


def scan_logs(path, secrets_seen, spans, traced_request, traced_trace, gateway_secrets=None):
    """Every line in a request's trace or about a tenant has a request id; every line with a request id has the trace
    id; no line holds a secret. Returns the figures."""
    request_traces = {s["trace"] for s in spans if s["kind"] == SERVER}
    lines, problems, leaks, by_request = 0, [], [], {}
    unscoped, parsed, plain = {}, [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            raw = raw.strip()
            try:
                parsed.append((raw, json.loads(raw)) if raw.startswith("{") else None)
            except json.JSONDecodeError:
                parsed.append(None)
            if parsed[-1] is None:
                parsed.pop()
                plain.append(raw)
    # The rest of the output (stderr, the sandbox banner): the banner prints the partner key and the admin token on
    # purpose, nothing else may appear there.
    banner = {v for k, v in (gateway_secrets or {}).items() if k in ("api_key", "admin_token")}
    plain_leaks = [raw[:120] for raw in plain if any(s in raw for s in secrets_seen if s not in banner)]
    CHECKS.check(f"log scan: no line outside the JSON log (stderr, the banner; {len(plain)} lines) holds a secret "
                 "other than the banner's own key and token", not plain_leaks, json.dumps(plain_leaks[:5]))
    # Probes and scrapes are not traced (by design): their requests' lines need an id, not a trace.
    untraced = {line.get("request.id") for _, line in parsed if line.get("http.route") in ("/healthz", "/readyz", "/metrics")}
    for raw, line in parsed:
            lines += 1
            if any(s in raw for s in secrets_seen):
                leaks.append(line.get("message"))
            request_id, trace = line.get("request.id"), line.get("trace.id")
            if request_id:
                by_request.setdefault(request_id, set()).add(trace)
                if not trace and request_id not in untraced:
                    problems.append(f"request id without trace id: {raw[:300]}")
            elif trace in request_traces or "tenant.id" in line:
                # Deliveries are their own traces, about a tenant but caused by an event rather than a request.
                if not line.get("delivery.id"):
                    problems.append(f"no request id: {raw[:300]}")
            else:
                unscoped[line.get("message")] = unscoped.get(line.get("message"), 0) + 1
    CHECKS.check("log scan: every line of a request's trace or about a tenant carries a request id, and every such "
                 "line its trace id", lines > 0 and not problems, "\n".join(problems[:10]))
    CHECKS.check("log scan: the traced request's lines, its queued work's included, all carry the caller's trace id",
                 by_request.get(traced_request) == {traced_trace}, str(by_request.get(traced_request)))
    CHECKS.check("log scan: no line holds a secret", not leaks, json.dumps(leaks[:5]))
    ix_leaks = invoicexpress_leaks([raw for raw, _ in parsed] + plain)
    CHECKS.check("log scan: no line (JSON or not) holds an InvoiceXpress key, the partner's or a customer's",
                 lines > 0 and INVOICEXPRESS_KEYS["partner"] and INVOICEXPRESS_KEYS["customer"] and not ix_leaks,
                 f"found: {ix_leaks}" if ix_leaks else f"{len(INVOICEXPRESS_KEYS['customer'])} customer keys and the partner's "
                 f"looked for in {lines + len(plain)} lines")
    proxy_leaks = named_leaks([raw for raw, _ in parsed] + plain, PROXY_SECRETS)
    CHECKS.check("log scan: no line (JSON or not) holds the access token handed out or the proxied customer's Wrapp "
                 "api_key", lines > 0 and all(PROXY_SECRETS.values()) and not proxy_leaks,
                 f"found: {proxy_leaks}" if proxy_leaks else f"looked for in {lines + len(plain)} lines")
    return lines, len(by_request), unscoped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="set (after the check's own settings) in the gateway's environment: for the self-test's "
                             "mutants, e.g. OTEL_EXPORTER_OTLP_ENDPOINT pointed at nothing")
    parser.add_argument("--quick", action="store_true",
                        help="only the traced create and its spans, then the report (the self-test's cheap subset)")
    args = parser.parse_args()
    began = time.monotonic()
    collector = Collector()
    receiver = serve(collector)
    data_dir = tempfile.mkdtemp(prefix="gw-trace-")
    overrides = dict(item.split("=", 1) for item in args.gateway_env)
    gateway = TracedGateway(os.path.abspath(args.binary), data_dir, receiver.server_address[1], overrides)
    progress(f"trace check: OTLP and events receiver on port {receiver.server_address[1]}; data in {data_dir}")
    try:
        gateway.start()
        counter = Counter()
        tenant, trace, server, request_id = traced_create(gateway, collector, counter)
        if args.quick:
            CHECKS.check("the gateway stops on SIGTERM", gateway.stop())
            gateway.cleanup()
            receiver.shutdown()
            return CHECKS.report("trace check (quick)", began, [gateway.log_path], [data_dir])
        if server:
            check_queued_work(collector, trace, server, tenant)

        # The rest of a day: every provider, new and existing customers, driven to active; then a refresh, a bad
        # request, an unknown (secret-looking) path, and admin calls.
        used = set()
        import random
        rng = random.Random(11)
        others = [spec(provider, f"trace-{provider.kind(existing).replace('_', '-')}-1", "trace", rng, used, existing)
                  for provider, existing in kinds() if (provider, existing) != (WRAPP, False)]
        for other in others:
            answer = provider_of(other).make_existing(gateway, other) if other["existing"] else None
            if answer is not None:
                CHECKS.check(f"an existing {provider_of(other).name} customer is set up", answer.status == 200, repr(answer))
        for other in others:
            create(gateway, other, time.monotonic() + 60, counter)
        live = [t for t in [tenant] + others if t.get("id")]
        driver = Driver(gateway, counter)
        converged = converge(driver, live, time.monotonic() + 90, "trace check")
        CHECKS.check("every tenant of the run is active", converged, "; ".join(describe(t) for t in live))
        invoicexpress = [t for t in live if t["provider"] == INVOICEXPRESS.id]
        CHECKS.check("the run made InvoiceXpress customers, new (an account made at once) and existing (a key typed "
                     "in and checked), both active", {t["existing"] for t in invoicexpress if t.get("state") == "active"}
                     == {False, True}, "; ".join(describe(t) for t in invoicexpress) or "none created")
        proxied = proxied_wrapp(gateway, counter, used)
        if proxied["tenant"].get("id"):
            live.append(proxied["tenant"])
        gateway.api("POST", f"/v1/tenants/{tenant['id']}/refresh")
        gateway.api("POST", "/v1/tenants", b'{"provider": "nope"}')
        probe = "probe-" + secrets.token_hex(12)
        SECRETS["probe path"].add(probe)
        call(gateway.port, "GET", f"/webhooks/wrapp/{probe}/extra")
        admin = {"Authorization": f"Bearer {gateway.secrets.get('admin_token')}"}
        call(gateway.port, "GET", "/admin/tenants", headers=admin)
        call(gateway.port, "GET", f"/admin/tenants/{tenant['id']}", headers=admin)

        check_webhook_spans(collector)
        check_deliveries(collector)
        secrets_seen = secret_values(gateway, live)
        secrets_seen += [v for values in PROXY_SECRETS.values() for v in values if len(v) >= 12]
        # The last request, then SIGTERM at once: its span is still in the batch, and only the flush at shutdown
        # (the exporter stopping after the server) sends it.
        last_id = "trace-check-last-" + secrets.token_hex(4)
        gateway.api("GET", f"/v1/tenants/{tenant['id']}", headers={"X-Request-ID": last_id})
        stopped = gateway.stop()
        CHECKS.check("the gateway stops on SIGTERM", stopped)
        CHECKS.check("the last request's span, still in its batch at SIGTERM, is exported at shutdown",
                     bool(wait_for_spans(collector, lambda s: s["attributes"].get("request.id") == last_id, limit=5)))
        spans, _ = collector.snapshot()
        leaked = [s for s in spans if any(secret in json.dumps(s) for secret in secrets_seen)]
        CHECKS.check("no span carries a secret (keys, tokens, credentials, webhook and onboarding paths)", not leaked,
                     json.dumps(leaked[:3]))
        ix_spans = [s for s in spans if s["attributes"].get("provider.name") == INVOICEXPRESS.id]
        ix_leaks = invoicexpress_leaks(json.dumps(s) for s in spans)
        CHECKS.check("no span carries an InvoiceXpress key, the partner's or a customer's (the run made InvoiceXpress "
                     "provider calls, traced)", ix_spans and INVOICEXPRESS_KEYS["customer"] and not ix_leaks,
                     f"found: {ix_leaks}" if ix_leaks else f"{len(ix_spans)} InvoiceXpress provider-call spans of {len(spans)}")
        check_proxy_spans(spans, proxied)
        as_sent = [s for s in spans for v in [s["name"], *map(str, s["attributes"].values())]
                   if ("/onboard/" in v or "/webhooks/" in v) and "{" not in v and "***" not in v]
        CHECKS.check("no span names a secret-bearing path as sent", not as_sent, json.dumps(as_sent[:3]))
        probes = [s for s in spans if s["attributes"].get("http.route") in ("/healthz", "/readyz", "/metrics")]
        CHECKS.check("probes and scrapes make no spans (the check polled /readyz at start)", not probes, json.dumps(probes[:2]))
        lines, requests, unscoped = scan_logs(gateway.log_path, secrets_seen, spans, request_id, trace, gateway.secrets)
        FIGURES.append(
            f"{len(spans)} spans in {len({s['trace'] for s in spans})} traces; {lines} log lines of {requests} requests; "
            f"lines outside any request: {json.dumps(unscoped, sort_keys=True)}")
    except Fatal as error:
        CHECKS.check("the run completed", False, str(error))
    finally:
        gateway.cleanup()
        receiver.shutdown()
    # gRPC is not built in: asking for it is refused at start with a reason, not a crash.
    env = dict(gateway.environment(), OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    refused = subprocess.run([gateway.binary, "serve", "--sandbox"], env=env, capture_output=True, text=True, timeout=60)
    CHECKS.check("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is refused at start (exit 78, saying why)",
                 refused.returncode == 78 and "grpc" in refused.stderr, f"exit {refused.returncode}: {refused.stderr[-300:]}")
    told = [s for s in {gateway.collector_token, gateway.events_secret} if s in refused.stderr + refused.stdout]
    CHECKS.check("the refusal's stdout and stderr name no secret of its environment (the collector's token, the "
                 "events secret)", not told, f"{len(told)} found")
    return CHECKS.report("trace check", began, [gateway.log_path], [data_dir])


if __name__ == "__main__":
    run_main(main, cleanup_all)
