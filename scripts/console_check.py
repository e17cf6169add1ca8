#!/usr/bin/env python3
"""The admin console in a real browser: Debian's headless chromium through chromium-driver and selenium, against a
sandbox gateway whose events endpoint always fails (so there are failed deliveries to redeliver).

    python3 scripts/console_check.py --binary .build/debug/gateway [--screenshots artifacts/console]

Signs in, finds a tenant by email, opens it, refreshes it, offboards another (typed confirmation), redelivers a
failed delivery, makes a key (used once through the API) and revokes it, reads the audit log, signs out. Checks
over plain HTTP that a request without the session, a form without the CSRF token and a guessing client are
refused, and that every page carries the security headers. Saves a screenshot of every page at desktop and phone
width (docs/console.md shows them).
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler

from checklib import Checks, Gateway, log, serve_in_background, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
expect = Checks()





class Failing(BaseHTTPRequestHandler):
    """The partner's events endpoint, down: every delivery fails."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(500)
        self.end_headers()
        self.wfile.write(b"receiver down (console check)")

    def log_message(self, *args):
        pass


class HTTP:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(headers or {})
        data = None
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        connection.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return response.status, response.headers, parsed, raw.decode("utf-8", "replace")



def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--screenshots", default=os.path.join(ROOT, "artifacts", "console"))
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    work = tempfile.mkdtemp(prefix="gw-console-")
    os.makedirs(args.screenshots, exist_ok=True)
    receiver = serve_in_background(Failing)
    log_path = os.path.join(work, "gateway.log")
    gateway = Gateway(os.path.abspath(args.binary), os.path.join(work, "data"), log_path=log_path, settings=dict(
        LOG_LEVEL="info", GATEWAY_EVENTS_URL=f"http://127.0.0.1:{receiver.server_address[1]}/events",
        GATEWAY_EVENTS_SECRET="whsec_" + base64.b64encode(os.urandom(32)).decode(),
        GATEWAY_EVENTS_RETRY_SCHEDULE="0.2,0.2", GATEWAY_WORKER_INTERVAL_SECONDS="0.2",
    ))
    port = gateway.port
    base = f"http://127.0.0.1:{port}"
    driver = None
    admin = key = None
    try:
        api = HTTP(port)
        if not gateway.start_or_fail(expect, "the gateway is ready", ready_within=30):
            return expect.report("console check")
        key, admin = gateway.secrets["api_key"], gateway.secrets["admin_token"]
        partner = {"Authorization": f"Bearer {key}"}

        # Tenants to look at: an active Wrapp customer, one to offboard, a MagniFinance company.
        run = uuid.uuid4().hex[:6]
        maria = api.call("POST", "/v1/tenants", {"provider": "wrapp", "external_id": f"maria-{run}",
                                                 "profile": {"email": f"maria.{run}@example.com", "phone": "+302101234567"}}, partner)[2]
        api.call("POST", f"/sandbox/test-helpers/wrapp/customers/maria-{run}/complete-login")
        leaving = api.call("POST", "/v1/tenants", {"provider": "wrapp", "external_id": f"leaving-{run}",
                                                   "profile": {"email": f"nikos.{run}@example.com", "phone": "+302101234568"}}, partner)[2]
        api.call("POST", "/v1/tenants", {"provider": "magnifinance", "external_id": f"co-{run}",
                                         "profile": {"email": "ana@example.pt", "company": {"tax_id": "513495886", "country": "PT"}}}, partner)
        admin_headers = {"Authorization": f"Bearer {admin}"}
        failed = wait_for(expect, "a failed delivery (the receiver answers 500)", lambda: (
            api.call("GET", "/admin/deliveries?status=failed", headers=admin_headers)[2] or {}).get("data"))
        wait_for(expect, "maria is active", lambda: api.call("GET", f"/v1/tenants/{maria['id']}", headers=partner)[2]["state"] == "active")

        # Plain HTTP: what the console refuses, and the headers it always sends.
        status, headers, _, _ = api.call("GET", "/console/tenants")
        expect(status == 303 and headers.get("Location") == "/console/sign-in", "no session: a page redirects to sign-in")
        status, _, _, _ = api.call("POST", f"/console/tenants/{maria['id']}/refresh", "confirm=yes")
        expect(status == 403, "no session: an action is refused (403)")
        status, headers, _, text = api.call("POST", "/console/sign-in", "token=" + urllib.parse.quote(admin))
        cookie = (headers.get("Set-Cookie") or "")
        expect(status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
               and "Secure" not in cookie, "sign-in sets an HttpOnly, SameSite=Strict cookie (not Secure over plain HTTP)")
        session = {"Cookie": cookie.split(";")[0]}
        status, headers, _, page = api.call("GET", f"/console/tenants/{maria['id']}", headers=session)
        csp = headers.get("Content-Security-Policy") or ""
        expect(status == 200 and "default-src 'none'" in csp and "script-src" not in csp and headers.get("X-Frame-Options") == "DENY"
               and headers.get("Cache-Control") == "no-store", "pages carry a strict CSP, X-Frame-Options DENY, no-store")
        expect("<script" not in page.lower() and not re.search(r"<[^>]+\son[a-z]+\s*=", page, re.IGNORECASE),
               "no script and no inline event handlers in a page")
        status, _, _, _ = api.call("POST", f"/console/tenants/{maria['id']}/refresh", "confirm=yes", session)
        expect(status == 403, "a form without the CSRF token is refused (403)")
        status, _, _, _ = api.call("POST", f"/console/tenants/{maria['id']}/refresh", "confirm=yes&csrf=forged", session)
        expect(status == 403, "a form with a wrong CSRF token is refused (403)")
        api_key_answer = api.call("GET", "/console", headers={"Authorization": f"Bearer {admin}"})
        expect(api_key_answer[0] == 303, "the admin token as a bearer header is not a console session")

        # The browser.
        options = Options()
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
            options.add_argument(flag)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium:
            options.binary_location = chromium
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(30)
        shots = []

        def shoot(name):
            for label, size in (("desktop", (1280, 900)), ("phone", (390, 844))):
                driver.set_window_size(*size)
                height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
                driver.set_window_size(size[0], max(size[1], height))
                path = os.path.join(args.screenshots, f"{name}-{label}.png")
                driver.save_screenshot(path)
                shots.append(path)
            driver.set_window_size(1280, 900)

        def text():
            return driver.find_element(By.TAG_NAME, "body").text

        def press(button):
            """Clicks a submit button and waits for the next page."""
            old = driver.find_element(By.TAG_NAME, "html")
            button.click()

            def replaced(_):
                try:
                    old.is_enabled()
                    return False
                except StaleElementReferenceException:
                    return True
                except WebDriverException:
                    return False  # the browser is between pages: ask again

            WebDriverWait(driver, 20).until(replaced)

        driver.get(base + "/console")
        expect(driver.current_url.endswith("/console/sign-in"), "the browser is sent to sign-in")
        shoot("sign-in")
        driver.find_element(By.NAME, "token").send_keys("not-the-token")
        press(driver.find_element(By.CSS_SELECTOR, "form button"))
        expect("not the admin token" in text(), "a wrong token is refused with a message")
        driver.find_element(By.NAME, "token").send_keys(admin)
        press(driver.find_element(By.CSS_SELECTOR, "form button"))
        expect(driver.current_url.rstrip("/").endswith("/console") and "Tenants by provider and state" in text(), "signed in: the overview")
        newest = api.call("GET", "/admin/deliveries?status=failed&limit=1", headers=admin_headers)[2]["data"][0]["id"]
        expect("Failed deliveries" in text() and newest in text(), "the overview lists the newest failed delivery")
        shoot("overview")

        driver.get(base + "/console/tenants")
        driver.find_element(By.NAME, "q").send_keys(f"maria.{run}@example.com")
        press(driver.find_element(By.CSS_SELECTOR, "form.search button"))
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        expect(len(rows) == 1 and f"maria-{run}" in rows[0].text, "search by email finds the one tenant")
        shoot("tenants")
        press(rows[0].find_element(By.TAG_NAME, "a"))
        expect(maria["id"] in driver.current_url and "History" in text() and "tenant.credentials_available" in text(),
               "the tenant page shows its history")
        expect("stored (never shown here)" in text() and "sandbox-api-key" not in driver.page_source, "credentials are never shown")
        refresh = driver.find_element(By.CSS_SELECTOR, f"form[action='/console/tenants/{maria['id']}/refresh']")
        refresh.find_element(By.NAME, "confirm").click()
        press(refresh.find_element(By.TAG_NAME, "button"))
        expect("The provider was asked" in text(), "refresh: done, with a notice")
        shoot("tenant")

        driver.get(base + f"/console/tenants/{leaving['id']}")
        offboard = driver.find_element(By.CSS_SELECTOR, f"form[action='/console/tenants/{leaving['id']}/offboard']")
        offboard.find_element(By.NAME, "confirm_external_id").send_keys("wrong")
        press(offboard.find_element(By.TAG_NAME, "button"))
        expect("Type the tenant's external id exactly" in text(), "offboarding refuses a mistyped confirmation")
        driver.get(base + f"/console/tenants/{leaving['id']}")
        offboard = driver.find_element(By.CSS_SELECTOR, f"form[action='/console/tenants/{leaving['id']}/offboard']")
        offboard.find_element(By.NAME, "confirm_external_id").send_keys(f"leaving-{run}")
        press(offboard.find_element(By.TAG_NAME, "button"))
        expect("was offboarded" in text(), "offboard with the typed external id")
        expect(api.call("GET", f"/v1/tenants/{leaving['id']}", headers=partner)[2]["state"] == "offboarded", "the API sees it offboarded")

        driver.get(base + "/console/deliveries?status=failed")
        shoot("deliveries")
        row = driver.find_element(By.XPATH, f"//tr[td[contains(., '{failed[0]['id']}')]]")
        press(row.find_element(By.TAG_NAME, "button"))
        expect("queued again" in text(), "redeliver a failed delivery")
        redelivered = api.call("GET", f"/admin/deliveries/{failed[0]['id']}", headers=admin_headers)[2]
        expect(redelivered["status"] in ("pending", "failed") and len(redelivered["attempts"]) > len(failed[0]["attempts"])
               or redelivered["status"] == "pending", "the delivery went back to the queue")

        driver.get(base + "/console/api-keys")
        driver.find_element(By.NAME, "name").send_keys(f"console-{run}")
        driver.find_element(By.CSS_SELECTOR, "input[name=scopes][value='tenants:read']").click()
        press(driver.find_element(By.CSS_SELECTOR, "form.stack button"))
        made = driver.find_element(By.CSS_SELECTOR, "input.copy").get_attribute("value")
        expect(bool(made) and "not shown again" in text(), "a new key is shown once")
        expect(api.call("GET", "/v1/tenants", headers={"Authorization": f"Bearer {made}"})[0] == 200, "the new key works on the API")
        shoot("api-keys")
        driver.get(base + "/console/api-keys")
        expect(made not in driver.page_source, "the key is not shown again")
        row = driver.find_element(By.XPATH, f"//tr[td[contains(., 'console-{run}')]]")
        row.find_element(By.NAME, "confirm").click()
        press(row.find_element(By.TAG_NAME, "button"))
        expect(api.call("GET", "/v1/tenants", headers={"Authorization": f"Bearer {made}"})[0] == 401, "revoked: the key no longer works")

        driver.get(base + "/console/audit")
        log_text = text()
        expect(all(action in log_text for action in ("console.signed_in", "tenant.polled", "tenant.offboarded", "delivery.redelivered",
                                                     "api_key.created", "api_key.revoked", "console.sign_in_failed")),
               "the audit log has every console action")
        shoot("audit")
        entries = api.call("GET", "/admin/audit?limit=100", headers=admin_headers)[2]["data"]
        by_console = [e for e in entries if e["actor"] == "console"]
        expect(by_console and all(e["details"].get("ip") == "127.0.0.1" for e in by_console), "console actions are audited as console, with the address")

        press(driver.find_element(By.CSS_SELECTOR, "form[action='/console/sign-out'] button"))
        expect(driver.current_url.endswith("/console/sign-in"), "signed out")
        driver.get(base + "/console/tenants")
        expect(driver.current_url.endswith("/console/sign-in"), "after sign-out the console asks to sign in again")
        status, _, _, _ = api.call("GET", "/console", headers=session)
        expect(status == 200, "another session is not ended by this sign-out")

        # Guessing: the browser's wrong token was the first failure; four more, then even the right one waits.
        statuses = [api.call("POST", "/console/sign-in", "token=guess" + str(n))[0] for n in range(5)]
        status, headers, _, _ = api.call("POST", "/console/sign-in", "token=" + urllib.parse.quote(admin))
        expect(statuses == [401] * 4 + [429] and status == 429 and int(headers.get("Retry-After", "0")) > 0,
               f"sign-in attempts are rate limited: 429 with Retry-After after five failures ({statuses + [status]})")
        log(f"{len(shots)} screenshots in {args.screenshots}")
    finally:
        if driver:
            driver.quit()
        gateway.stop()
        receiver.shutdown()
    # The sandbox banner prints both on purpose (plain lines); no log line may carry them.
    lines = [line for line in open(log_path) if line.startswith("{")]
    leaked = [s for s in (admin, key) if s and any(s in line for line in lines)]
    expect(bool(lines) and not leaked, "the admin token and the partner key appear in no log line")
    errors = [line for line in open(log_path) if '"level":"critical"' in line]
    expect(not errors, "no critical log line")
    if expect.failed:
        log(f"(kept in {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return expect.report("console check")



if __name__ == "__main__":
    sys.exit(main())
