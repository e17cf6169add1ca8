#!/usr/bin/env python3
"""The monitoring files against the real thing: deploy/prometheus/alerts.yml passes `promtool check rules` and its
unit tests (`promtool test rules`); deploy/prometheus/prometheus.yml passes `promtool check config`; and every query
of deploy/grafana/dashboards/onboarding-gateway.json and of the alerts names only metrics the gateway exports, checked
against a scrape of a running sandbox that onboarded customers of every provider, delivered events and made a
call through the provider proxy (provider_proxy_requests_total exported, labelled by route template). Then a real
Prometheus (Debian's) scrapes that sandbox every second with the shipped alert rules, and runs every dashboard query:
each must be valid PromQL and every panel must show data. The panels are drawn from those answers into a picture
(Grafana itself does not run here), kept in artifacts/monitoring/dashboard.png.

    python3 scripts/monitoring_check.py --binary .build/debug/gateway [--picture docs/images/dashboard.png]
"""
import argparse
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklib import (  # noqa: E402 - the gateway process, tenants, the customers' driver, the report
    CHECKS, FIGURES, HOST, QUICK, ROOT, WRAPP, Counter, Driver, Fatal, Gateway, Process, call, cleanup_all, converge, create, free_port,
    kinds, provider_of, run_main, serve_in_background, spec,
)
import yaml  # noqa: E402
DASHBOARD = os.path.join(ROOT, "deploy/grafana/dashboards/onboarding-gateway.json")
ALERTS = os.path.join(ROOT, "deploy/prometheus/alerts.yml")
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "irate", "increase", "histogram_quantile", "offset",
    "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "vector", "bool", "le", "topk", "bottomk",
    "abs", "clamp_min", "clamp_max", "delta", "deriv", "time", "scalar", "absent",
}


def metric_names(expr):
    """The metric names an expression reads: its identifiers, less strings, label matchers, grouping labels, ranges,
    durations and PromQL's own words."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\boffset\s+\w+", "", text)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text)) - PROMQL_WORDS
    return {n for n in names if not re.fullmatch(r"\d+[smhdwy]?", n)}


def promtool(work):
    """promtool on the alerts (ALERTS, the shipped file unless --alerts names another), their unit tests and the
    Prometheus config, each as it would run in deploy/prometheus/: copies in `work`, the alerts as alerts.yml (the
    name the tests and the config load)."""
    folder = os.path.join(work, "promtool")
    os.makedirs(folder)
    shutil.copy(ALERTS, os.path.join(folder, "alerts.yml"))
    for name in ("alerts_test.yml", "prometheus.yml"):
        shutil.copy(os.path.join(ROOT, "deploy/prometheus", name), os.path.join(folder, name))
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"], ["check", "config", "prometheus.yml"]):
        result = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=folder)
        shown = os.path.relpath(ALERTS, ROOT) if args[2] == "alerts.yml" else f"deploy/prometheus/{args[2]}"
        CHECKS.check(f"promtool {' '.join(args[:2])} {shown}", result.returncode == 0, (result.stdout + result.stderr)[-1500:])


def events_receiver():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    return serve_in_background(Handler)


def monitored_gateway(binary, data_dir, events_port):
    """The sandbox, as the reliability check runs it, delivering its events to `events_port`."""
    return Gateway(binary, data_dir, name="monitored gateway", settings=dict(
        QUICK, GATEWAY_EVENTS_URL=f"http://{HOST}:{events_port}/events",
        GATEWAY_EVENTS_SECRET="whsec_" + "bW9uaXRvcmluZy1jaGVjay1vbmx5LW5vdC1hLXNlY3JldA=="))


def onboard(gateway):
    """Customers of every provider, new and existing, to active (webhooks, polls, events), one every half second
    while 15 % of the provider calls fail, and a refused create."""
    import random
    rng, used, counter = random.Random(5), set(), Counter()
    every, tenants = kinds(), []
    for i in range(4 * len(every)):
        provider, existing = every[i % len(every)]
        tenants.append(spec(provider, f"mon-{i}", "mon", rng, used, existing))
    for tenant in tenants:
        if tenant["existing"]:
            provider_of(tenant).make_existing(gateway, tenant)
    gateway.set_chaos(0.15, 5)
    for tenant in tenants:
        create(gateway, tenant, time.monotonic() + 60, counter)
        time.sleep(0.5)
    converged = converge(Driver(gateway, counter), [t for t in tenants if t.get("id")], time.monotonic() + 90, "monitoring")
    CHECKS.check("the sandbox run onboarded customers of every provider", converged)
    gateway.set_chaos(0, 5)
    gateway.api("POST", "/v1/tenants", b'{"provider": "nope"}')
    return tenants


def proxied_call(gateway, tenants):
    """One GET through the provider proxy for an active Wrapp tenant: then provider_proxy_requests_total is exported,
    labelled by provider, route template (never the provider path) and status."""
    wrapp = next((t for t in tenants if t["provider"] == WRAPP.id and t.get("id")
                  and (gateway.api("GET", f"/v1/tenants/{t['id']}").json or {}).get("state") == "active"), None)
    if wrapp is None:
        CHECKS.check("an active Wrapp tenant to call the provider proxy for", False)
        return
    answer = gateway.api("GET", f"/v1/tenants/{wrapp['id']}/provider/tenant_details")
    CHECKS.check("a GET tenant_details through the provider proxy answers 200", answer.status == 200, repr(answer))
    lines = [line for line in call(gateway.port, "GET", "/metrics").body.decode().splitlines()
             if line.startswith("provider_proxy_requests_total{")]
    labelled = [line for line in lines if 'provider="wrapp"' in line and 'status="200"' in line
                and 'route="/v1/tenants/{id}/provider/{path}"' in line]
    CHECKS.check("/metrics has provider_proxy_requests_total for it (provider wrapp, the route template, status 200), "
                 "and no provider path in any of its labels", labelled and not any("tenant_details" in line for line in lines),
                 "\n".join(lines) or "no provider_proxy_requests_total line")


def scrape(port):
    """Each exported metric with the label values seen: {name: {label: {values}}}."""
    text = call(port, "GET", "/metrics").body.decode()
    metrics = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            labels = metrics.setdefault(name, {})
            for key, value in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line.split("}")[0] if "{" in line else ""):
                labels.setdefault(key, set()).add(value)
    return metrics


def matchers(expr):
    """(metric, label, operator, value) of every selector's label matchers."""
    found = []
    for metric, body in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
        for label, operator, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', body):
            found.append((metric, label, operator, value))
    return found


def queries():
    dashboard = json.load(open(DASHBOARD))
    panels = [(p["title"], [t["expr"] for t in p.get("targets", [])]) for p in dashboard["panels"]]
    alerts = [(r["alert"], [r["expr"]]) for g in yaml.safe_load(open(ALERTS))["groups"] for r in g["rules"]]
    return panels, alerts


def prometheus_run(gateway_port, work):
    port = free_port()
    config = os.path.join(work, "prometheus.yml")
    shutil.copy(ALERTS, os.path.join(work, "alerts.yml"))
    with open(config, "w") as f:
        yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": ["alerts.yml"],
            "scrape_configs": [{"job_name": "onboarding-gateway", "static_configs": [{"targets": [f"{HOST}:{gateway_port}"]}]}],
        }, f)
    prometheus = Process("prometheus", ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work}/data",
                                        f"--web.listen-address={HOST}:{port}"], dict(os.environ), os.path.join(work, "prometheus.log"))
    prometheus.start(port, "/-/ready", limit=30)
    return prometheus, port


def prom(port, path, **params):
    url = f"http://{HOST}:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def wait_for_scrapes(port, limit=30):
    deadline = time.monotonic() + limit
    while True:
        try:
            if prom(port, "/api/v1/query", query='up{job="onboarding-gateway"} == 1')["data"]["result"]:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise Fatal(f"Prometheus did not scrape the gateway within {limit} s")
        time.sleep(0.5)


def draw(results, picture):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    columns = 3
    rows = (len(results) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(18, 4 * rows))
    figure.suptitle("Onboarding gateway: the dashboard's panels over a sandbox run (a real Prometheus, 1 s scrapes)")
    for axis, (title, series) in zip(axes.flat, results):
        axis.set_title(title, fontsize=11)
        for label, points in series[:8]:
            axis.plot([p[0] - series[0][1][0][0] for p in points], [float(p[1]) for p in points], label=label[:40])
        if series:
            axis.legend(fontsize=7, loc="upper left")
        axis.set_xlabel("seconds", fontsize=8)
    for axis in list(axes.flat)[len(results):]:
        axis.axis("off")
    figure.tight_layout()
    os.makedirs(os.path.dirname(picture) or ".", exist_ok=True)
    figure.savefig(picture, dpi=70)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--picture", default=os.path.join(ROOT, "artifacts/monitoring/dashboard.png"))
    parser.add_argument("--alerts", default=os.path.join(ROOT, "deploy/prometheus/alerts.yml"),
                        help="the alert rules to check (default deploy/prometheus/alerts.yml; the self-test's mutants)")
    args = parser.parse_args()
    global ALERTS
    ALERTS = os.path.abspath(args.alerts)
    began = time.monotonic()
    work = tempfile.mkdtemp(prefix="gw-monitoring-")
    promtool(work)
    panels, alerts = queries()
    receiver = events_receiver()
    gateway = monitored_gateway(os.path.abspath(args.binary), work, receiver.server_address[1])
    prometheus = None
    try:
        gateway.start()
        prometheus, prom_port = prometheus_run(gateway.port, work)
        wait_for_scrapes(prom_port)
        start = time.time()
        tenants = onboard(gateway)
        proxied_call(gateway, tenants)
        time.sleep(3)  # the deliveries of the last events
        metrics = scrape(gateway.port)
        exported = set(metrics)
        for title, exprs in panels + alerts:
            # Every label a selector names exists on that metric, and every value it asks for exactly was exported.
            wrong = [f"{m}{{{label}{op}\"{value}\"}}" for expr in exprs for m, label, op, value in matchers(expr)
                     if m in metrics and m != "up" and (label not in metrics[m] and label not in ("job", "instance")
                                                        or op == "=" and value not in metrics[m].get(label, ()))]
            CHECKS.check(f"'{title}' selects only labels and values the gateway exports", not wrong, str(wrong))
            read = set().union(*(metric_names(e) for e in exprs)) - {"up"}
            missing = sorted(n for n in read if n not in exported)
            # A panel reads at least one of the gateway's metrics; an alert may read only Prometheus's own `up`.
            CHECKS.check(f"'{title}' reads only exported metrics ({', '.join(sorted(read)) or 'up'})",
                         not missing and (read or (title, exprs) in alerts), f"not exported: {missing}")
        time.sleep(10)  # the panels' tail
        results = []
        for title, exprs in panels:
            series = []
            for expr in exprs:
                try:
                    answer = prom(prom_port, "/api/v1/query_range", query=expr, start=start, end=time.time(), step=1)
                except urllib.error.HTTPError as error:
                    answer = {"status": "error", "error": error.read().decode()[:300]}
                found = answer.get("data", {}).get("result", [])
                CHECKS.check(f"Prometheus runs '{title}' and it has data: {expr}",
                             answer.get("status") == "success" and bool(found), json.dumps(answer)[:300])
                for result in found:
                    labels = ",".join(f"{v}" for k, v in sorted(result["metric"].items()) if k not in ("job", "instance"))
                    series.append((labels or expr[:30], result["values"]))
            results.append((title, series))
        for title, exprs in alerts:
            try:
                answer = prom(prom_port, "/api/v1/query", query=exprs[0])
            except urllib.error.HTTPError as error:
                answer = {"status": "error", "error": error.read().decode()[:300]}
            CHECKS.check(f"Prometheus evaluates the alert '{title}'", answer.get("status") == "success", json.dumps(answer)[:300])
        rules = prom(prom_port, "/api/v1/rules")["data"]["groups"]
        loaded = {r["name"]: r.get("health") for g in rules for r in g["rules"]}
        CHECKS.check("Prometheus loaded every alert rule, all healthy",
                     set(loaded) == {a for a, _ in alerts} and set(loaded.values()) == {"ok"}, json.dumps(loaded))
        try:
            draw(results, args.picture)
            FIGURES.append(f"dashboard drawn to {os.path.relpath(args.picture, ROOT)}")
        except ImportError:
            FIGURES.append("matplotlib missing: no picture drawn")
        FIGURES.append(f"{len(panels)} panels and {len(alerts)} alerts over {len(exported)} exported metrics")
    except Fatal as error:
        CHECKS.check("the run completed", False, str(error))
    finally:
        if prometheus:
            prometheus.stop()
        gateway.stop()
        receiver.shutdown()
    return CHECKS.report("monitoring check", began, [gateway.log_path, os.path.join(work, "prometheus.log")], [work])


if __name__ == "__main__":
    run_main(main, cleanup_all)
