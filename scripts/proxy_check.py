#!/usr/bin/env python3
"""The gateway behind a real nginx on loopback: the API and a provider webhook work through the proxy, the client's
real address is believed through the trusted proxy, and a forged X-Forwarded-For from an untrusted peer is ignored.

The gateway trusts only 127.0.0.2, the address nginx connects from (proxy_bind). Clients connect from 127.0.0.3
(through nginx) or 127.0.0.1 (straight to the gateway, untrusted)."""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


gateway_port, proxy_port = free_port(), free_port()
work = tempfile.mkdtemp(prefix="gw-proxy-")
public_url = f"http://127.0.0.1:{proxy_port}"
conf = os.path.join(work, "nginx.conf")
open(conf, "w").write(f"""
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{}}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_pass http://127.0.0.1:{gateway_port};
            proxy_bind 127.0.0.2;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
}}
""")

binary = subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=root, text=True).strip() + "/gateway"
env = dict(os.environ, GATEWAY_DATA_DIR=os.path.join(work, "data"), GATEWAY_PORT=str(gateway_port), GATEWAY_PUBLIC_URL=public_url,
           GATEWAY_TRUSTED_PROXIES="127.0.0.2/32", GATEWAY_WORKER_INTERVAL_SECONDS="0.1", LOG_LEVEL="warning")
gateway = subprocess.Popen([binary, "serve", "--sandbox"], env=env, stdout=open(os.path.join(work, "gateway.log"), "w"), stderr=subprocess.STDOUT)
nginx = subprocess.Popen(["nginx", "-c", conf, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def call(method, path, body=None, key=None, via_proxy=True, source="127.0.0.3", headers=None):
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
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data.decode(errors="replace")


failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


try:
    for _ in range(100):
        try:
            if call("GET", "/readyz")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    secrets = json.load(open(os.path.join(work, "data", "sandbox-secrets.json")))
    key, admin = secrets["api_key"], secrets["admin_token"]

    status, tenant = call("POST", "/v1/tenants", {"provider": "wrapp", "external_id": "proxy-1",
                                                   "profile": {"email": "maria@example.com", "phone": "+302101234567"}}, key)
    check(status == 201 and tenant["state"] == "action_required", "POST /v1/tenants through nginx answers 201")
    login = tenant["next_action"]["url"]
    check(login.startswith(public_url), "generated URLs come from GATEWAY_PUBLIC_URL")
    check(tenant["next_action"]["onboarding_link"].startswith(public_url + "/onboard/"), "onboarding links too")
    # The customer completes the sandbox login page through the proxy; Wrapp's webhook comes back through it too.
    status, _ = call("POST", login.removeprefix(public_url) + "/complete")
    check(status == 200, "the sandbox login page works through nginx")
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
finally:
    nginx.terminate()
    gateway.terminate()
    gateway.wait(timeout=30)

if failures:
    print(open(os.path.join(work, "error.log")).read()[-2000:], file=sys.stderr)
    sys.exit(1)
