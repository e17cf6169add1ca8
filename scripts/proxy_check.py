#!/usr/bin/env python3
"""The gateway behind a real nginx on loopback, running the shipped deploy/nginx.conf: the API and a provider webhook
work through the proxy, the sandbox is not exposed, the client's real address is believed through the trusted proxy,
a forged X-Forwarded-For from an untrusted peer is ignored, and the access log names secret paths (webhook tokens,
onboarding links) without their secrets.

The config is deploy/nginx.conf with only what a test must change: loopback addresses and ports, files under a
temporary directory, proxy_bind, and a second, test-only access log of raw request URIs (to learn the webhook token
Wrapp was given, so the masked log can be searched for it). The gateway trusts only 127.0.0.2, the address nginx
connects from (proxy_bind). Clients connect from 127.0.0.3 (through nginx) or 127.0.0.1 (straight to the gateway,
untrusted).

    python3 scripts/proxy_check.py [--binary .build/debug/gateway]
    python3 scripts/proxy_check.py --mutant onboard-404     # self-test: nginx answers 404 on /onboard/; must fail
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklib import Checks, Gateway, Process, free_port  # noqa: E402

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--binary", help="the built gateway (default: swift build --show-bin-path)/gateway")
parser.add_argument("--mutant", choices=("onboard-404",),
                    help="self-test: a proxy config that answers 404 on the onboarding links; the check must fail")
args = parser.parse_args()

gateway_port, proxy_port = free_port(), free_port()
work = tempfile.mkdtemp(prefix="gw-proxy-")
public_url = f"http://127.0.0.1:{proxy_port}"
conf = os.path.join(work, "nginx.conf")
shipped = open(os.path.join(root, "deploy", "nginx.conf")).read()


def swap(text, old, new):
    """Replaces `old` exactly once, so a change to the shipped file that this script no longer matches fails loudly."""
    if text.count(old) != 1:
        sys.exit(f"deploy/nginx.conf changed: expected exactly one {old!r}")
    return text.replace(old, new)


derived = shipped
derived = swap(derived, "events {}", f"daemon off;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\nevents {{}}")
derived = swap(derived, "http {", f"""http {{
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    log_format raw_uri '$request_uri';
    access_log {work}/raw.log raw_uri;""")
derived = swap(derived, "access_log /var/log/nginx/access.log masked;", f"access_log {work}/access.log masked;")
derived = swap(derived, "server gateway:8080;", f"server 127.0.0.1:{gateway_port};")
derived = swap(derived, "listen 80;", f"listen 127.0.0.1:{proxy_port};")
derived = swap(derived, "proxy_pass http://gateway;", "proxy_pass http://gateway;\n            proxy_bind 127.0.0.2;")
if args.mutant == "onboard-404":
    # A proxy config that does not pass the onboarding links on: the customer's emailed link is a 404.
    derived = swap(derived, "location /sandbox/ {", "location /onboard/ {\n            return 404;\n        }\n\n        location /sandbox/ {")
    print("MUTANT onboard-404: nginx answers 404 on /onboard/")
open(conf, "w").write(derived)
test = subprocess.run(["nginx", "-t", "-c", conf, "-p", work], capture_output=True, text=True)
if test.returncode != 0:
    sys.exit("nginx refuses the config derived from deploy/nginx.conf:\n" + test.stderr)

binary = os.path.abspath(args.binary) if args.binary else (
    subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=root, text=True).strip() + "/gateway")
gateway = Gateway(binary, os.path.join(work, "data"), gateway_port, log_path=os.path.join(work, "gateway.log"), settings=dict(
    GATEWAY_PUBLIC_URL=public_url, GATEWAY_TRUSTED_PROXIES="127.0.0.2/32", GATEWAY_WORKER_INTERVAL_SECONDS="0.1",
    LOG_LEVEL="warning"))
nginx = Process("nginx", ["nginx", "-c", conf, "-p", work], dict(os.environ), os.path.join(work, "nginx.out"))


def call(method, path, body=None, key=None, via_proxy=True, source="127.0.0.3", headers=None, answer_headers=None):
    """(status, JSON or text); `answer_headers`, a dict, receives the response's headers (lower-case names)."""
    port = proxy_port if via_proxy else gateway_port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=(source, 0))
    all_headers = dict(headers or {})
    if key:
        all_headers["Authorization"] = f"Bearer {key}"
    if body is not None:
        all_headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    connection.request(method, path, body=body, headers=all_headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    if answer_headers is not None:
        answer_headers.update({k.lower(): v for k, v in response.getheaders()})
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data.decode(errors="replace")


check = Checks()


try:
    # The gateway, then nginx in front of it: ready when /readyz answers 200 through it.
    if not (gateway.start_or_fail(check, "the gateway is ready") and nginx.start_or_fail(check, "nginx is ready", proxy_port)):
        sys.exit(check.report("proxy check"))
    key, admin = gateway.key, gateway.secrets["admin_token"]

    status, tenant = call("POST", "/v1/tenants", {"provider": "wrapp", "external_id": "proxy-1",
                                                   "profile": {"email": "maria@example.com", "phone": "+302101234567"}}, key)
    check(status == 201 and tenant["state"] == "action_required", "POST /v1/tenants through nginx answers 201")
    login = tenant["next_action"]["url"]
    link = tenant["next_action"]["onboarding_link"]
    check(login.startswith(public_url), "generated URLs come from GATEWAY_PUBLIC_URL")
    check(link.startswith(public_url + "/onboard/"), "onboarding links too")
    # The customer follows the onboarding link through the proxy: for a tenant waiting for its customer's Wrapp login
    # the gateway answers 302 to a fresh login page of the (simulated) Wrapp, built from GATEWAY_PUBLIC_URL
    # (OnboardController). Anything else — a 404 from the proxy, an error page — is a broken link in the email.
    headers = {}
    status, _ = call("GET", link.removeprefix(public_url) + "?utm_source=mail", answer_headers=headers)
    location = headers.get("location", "")
    check(status == 302 and location.startswith(public_url + "/sandbox/wrapp/"),
          f"the onboarding link answers through nginx with 302 to Wrapp's login page ({status}, Location {location!r})")
    # The simulated providers are not served through the shipped proxy config; the customer completes the sandbox
    # login page on the gateway itself, and the simulated Wrapp posts its webhook to the public URL, through nginx.
    status, _ = call("GET", login.removeprefix(public_url))
    check(status == 404, f"the sandbox is not reachable through nginx ({status})")
    status, _ = call("POST", login.removeprefix(public_url) + "/complete", via_proxy=False, source="127.0.0.1")
    check(status == 200, "the sandbox login page completes")
    for _ in range(50):
        status, current = call("GET", f"/v1/tenants/{tenant['id']}", key=key)
        if current.get("state") == "active":
            break
        time.sleep(0.2)
    check(current.get("state") == "active", "the webhook reached the gateway through nginx and the tenant is active")

    status, _ = call("GET", f"/v1/tenants/{tenant['id']}/credentials", key=key)
    status, _ = call("GET", f"/v1/tenants/{tenant['id']}/credentials", key=key, headers={"X-Forwarded-For": "203.0.113.9"})
    status, _ = call("GET", f"/v1/tenants/{tenant['id']}/credentials", key=key, via_proxy=False, source="127.0.0.1",
                     headers={"X-Forwarded-For": "203.0.113.9"})
    status, audit = call("GET", f"/admin/audit?tenant_id={tenant['id']}&limit=3", key=admin)
    ips = [entry["details"].get("ip") for entry in reversed(audit["data"])]
    check(ips[0] == "127.0.0.3", f"through the trusted proxy the client's real address is recorded ({ips[0]})")
    check(ips[1] == "127.0.0.3", f"a forged X-Forwarded-For sent through the proxy is not believed ({ips[1]})")
    check(ips[2] == "127.0.0.1", f"a forged X-Forwarded-For from an untrusted peer is ignored ({ips[2]})")

    # The access log: routes, never their secrets. nginx writes a request's line once it is answered.
    raw, masked = "", ""
    for _ in range(50):
        raw, masked = open(os.path.join(work, "raw.log")).read(), open(os.path.join(work, "access.log")).read()
        if "/webhooks/wrapp/" in raw and "/onboard/" in raw:
            break
        time.sleep(0.1)
    hooks = [line.strip() for line in raw.splitlines() if line.startswith("/webhooks/wrapp/")]
    check(len(hooks) >= 1, f"Wrapp's webhook went through nginx ({len(hooks)})")
    webhook_token = hooks[0].removeprefix("/webhooks/wrapp/").split("?")[0] if hooks else "(no webhook)"
    link_token = link.removeprefix(public_url + "/onboard/").split("?")[0]
    check(len(webhook_token) >= 16 and len(link_token) >= 16, "both secrets are known to the check")
    check("/webhooks/wrapp/*** " in masked, "the access log names the webhook route")
    check("/onboard/***" in masked, "the access log names the onboarding route")
    check(webhook_token not in masked, "the access log holds no webhook token")
    check(link_token not in masked, "the access log holds no onboarding link")
    check("utm_source" not in masked and "/onboard/***?*** " in masked, "nor query strings")
    check(f"/v1/tenants/{tenant['id']}/credentials " in masked, "other paths are logged as they are")
finally:
    nginx.stop()
    gateway.stop(limit=30)

if check.failed:
    for name in ("error.log", "access.log"):
        path = os.path.join(work, name)
        if os.path.exists(path):
            print(f"----- {path} -----\n" + open(path).read()[-3000:], file=sys.stderr)
check.report("proxy check")
