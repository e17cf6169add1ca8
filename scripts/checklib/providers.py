"""The sandbox's providers, described once. The checks that test generic behaviour (creates, idempotency, kill -9,
outages, replicas, traces, metrics) iterate over PROVIDERS; only checks of one provider's own quirks name it.

Each provider says: its `id` (as the API spells it) and its simulated API under /sandbox/<id>/ (`sandbox_path`);
how to make a valid create body for a unique customer, new or one who already was the provider's (`create_body`,
`make_existing`: the sandbox test helper to call before such a create); how its customers reach active through the
sandbox's test helpers (`customer_credentials`: what a customer asked for credentials types in, `approve`: what
approves a customer waiting for approval; a login page is pressed by the driver whatever the provider); which
settings point a gateway at a simulator of it (`simulator_settings`, `base_url_setting`, `base_url`); and what its
simulator's call records (`/_control/calls`) must show (`concurrency_record`, `partner_paths`, `check_calls`).

Not every simulator has the test controls under /sandbox/<id>/_control/: `chaos` says whether it takes random faults
(`/_control/chaos`), `call_records` whether it keeps call records (`/_control/calls`). The checks leave a provider
without them out of what needs them (gateway.SimulatorControls, invariants.check_provider_calls) and say so; a
provider without chaos has scripted faults (`fault_script`) put on its simulator through the public faults helper
(POST /sandbox/test-helpers/<id>/faults) where a check asks for random ones.

Adding a provider to the sandbox means adding one class here and its entry in PROVIDERS.
"""
import secrets
import urllib.parse

from .net import call


def nif(seven_digits):
    """A valid Portuguese company NIF: 5, the seven digits given, and the mod-11 check digit."""
    digits = [5] + [int(c) for c in seven_digits]
    total = sum(d * (9 - i) for i, d in enumerate(digits))
    check = 11 - total % 11
    return "".join(map(str, digits)) + str(0 if check >= 10 else check)


def random_nif(rng, used):
    """A valid company NIF not in `used` (which it joins), its digits drawn from `rng`."""
    while True:
        text = nif("".join(str(rng.randrange(10)) for _ in range(7)))
        if text not in used:
            used.add(text)
            return text


class Provider:
    id = name = None
    kind_prefix = None           # tenant kinds are "<kind_prefix>_new" and "<kind_prefix>_existing"
    customer = "customer"        # what one customer is called in a check's name ("company")
    settings_prefix = None       # the prefix of its settings (kept out of a gateway's environment unless set)
    base_url_setting = None      # where a gateway finds the provider's API
    concurrency_record = None    # the field of /_control/calls: most calls in flight for one customer
    partner_paths = None         # the simulator paths that are partner-API calls (None: every path it counts)
    chaos = True                 # its simulator takes random faults (POST /_control/chaos)
    call_records = True          # its simulator keeps call records (GET /_control/calls)
    fault_script = ()            # without chaos: faults (bodies of POST /sandbox/test-helpers/<id>/faults) instead

    @property
    def sandbox_path(self):
        """Its simulated API, on the sandbox gateway or on `gateway simulate`."""
        return f"/sandbox/{self.id}"

    @property
    def helpers_path(self):
        """Its sandbox test helpers, on the sandbox gateway or on `gateway simulate`."""
        return f"/sandbox/test-helpers/{self.id}"

    def base_url(self, root):
        """Its `base_url_setting` for a simulator served at `root` (http://host:port)."""
        return root + self.sandbox_path

    def kind(self, existing=False):
        return f"{self.kind_prefix}_{'existing' if existing else 'new'}"

    def create_body(self, external_id, existing=False, rng=None, used=None):
        """(the POST /v1/tenants body, what the tenant record keeps beside it, e.g. the tax id)."""
        raise NotImplementedError

    def make_existing(self, gateway, tenant):
        """Before the create of a customer who already was the provider's: the test helper's answer (None when the
        body alone says so)."""

    def customer_credentials(self, gateway, tenant):
        """The PUT /v1/tenants/{id}/credentials body the customer types in (None: not known yet)."""

    def approve(self, gateway, tenant):
        """Approves a customer waiting for the provider's approval; True when the helper did."""
        return False

    def compare_credentials(self, gateway, tenant, credentials):
        """(compared, problem): the credentials the gateway stores against the simulator's record of the customer."""
        return False, f"{tenant['external_id']}: no way to compare {self.name} credentials"

    def simulator_settings(self):
        """Fresh credentials that `gateway simulate` and the gateways it serves share (environment settings)."""
        return {}

    def check_secrets(self, settings):
        """What compare_credentials needs of `settings`, as a gateway's secrets (the sandbox's file has the same)."""
        return {}

    def check_calls(self, checks, tenants, record, label):
        """Assertions on the simulator's call records of this provider's `tenants`, beyond one call at a time."""

    def partner_calls(self, record):
        return sum(n for path, n in (record.get("calls") or {}).items()
                   if self.partner_paths is None or path in self.partner_paths)


class Wrapp(Provider):
    """A customer logs in on Wrapp's page (Wrapp's webhook brings the key) or, with an account made before (an
    email starting `existing`), types in the user id and key Wrapp shows."""
    id, name, kind_prefix = "wrapp", "Wrapp", "wrapp"
    settings_prefix, base_url_setting = "WRAPP_", "WRAPP_BASE_URL"
    concurrency_record = "max_concurrent_per_user"
    partner_paths = ("/external_login", "/embedded_check_user", "/login")

    def create_body(self, external_id, existing=False, rng=None, used=None):
        email = f"existing.{external_id}@example.com" if existing else f"{external_id}@example.com"
        return {"provider": self.id, "external_id": external_id, "profile": {"email": email, "phone": "+302101234567"}}, {}

    def user(self, gateway, tenant):
        return gateway.control("GET", f"{self.sandbox_path}/_control/users/" + urllib.parse.quote(tenant["external_id"], safe=""))

    def customer_credentials(self, gateway, tenant):
        user = self.user(gateway, tenant)
        if user.status != 200 or not isinstance(user.json, dict):
            return None
        return {"wrapp_user_id": user.json["wrapp_user_id"], "api_key": user.json["api_key"]}

    def compare_credentials(self, gateway, tenant, credentials):
        user = self.user(gateway, tenant)
        if user.status != 200 or not isinstance(user.json, dict):
            return False, f"{tenant['external_id']}: the simulator has no such user ({user!r})"
        if credentials.get("api_key") != user.json.get("api_key") or str(credentials.get("wrapp_user_id")) != user.json.get("wrapp_user_id"):
            return True, f"{tenant['external_id']}: stored wrapp_user_id/api_key are not the simulator's for this customer"
        return True, None

    def simulator_settings(self):
        return {"WRAPP_PARTNER_API_KEY": "wrapp-partner-" + secrets.token_hex(12)}


class MagniFinance(Provider):
    """A new company is granted at once (one AddPartner); an existing client (marked by the test helper) waits for
    its approval."""
    id, name, kind_prefix, customer = "magnifinance", "MagniFinance", "mf", "company"
    settings_prefix, base_url_setting = "MAGNIFINANCE_", "MAGNIFINANCE_BASE_URL"
    concurrency_record = "max_concurrent_per_tax_id"
    OWNER_EMAIL = "ippn-owner@sandbox.invalid"  # what compare_credentials asks the simulator with

    def create_body(self, external_id, existing=False, rng=None, used=None):
        tax_id = random_nif(rng, used)
        return {"provider": self.id, "external_id": external_id, "profile": {
            "email": f"{external_id}@example.pt", "contact_name": "Ana Sousa",
            "company": {"tax_id": tax_id, "legal_name": f"Fiabilidade {external_id} Lda", "country": "PT", "post_code": "1000-001"},
        }}, {"tax_id": tax_id}

    def make_existing(self, gateway, tenant):
        return gateway.control("POST", f"{self.sandbox_path}/_control/clients", {"tax_id": tenant["tax_id"]})

    def approve(self, gateway, tenant):
        return gateway.control("POST", f"{self.sandbox_path}/_control/approve", {"tax_id": tenant["tax_id"]}).status == 200

    def compare_credentials(self, gateway, tenant, credentials):
        tokens = sorted(t.get("token") for t in credentials.get("access_tokens") or [])
        if not tokens:
            return False, f"{tenant['external_id']}: no access tokens"
        owner = gateway.secrets or {}
        found = call(gateway.sim_port, "GET", f"{self.sandbox_path}/partner/accessTokens?partnerTaxId=" + tenant["tax_id"],
                     headers={"Email": self.OWNER_EMAIL, "Token": owner.get("magnifinance_token", ""),
                              "Password": owner.get("magnifinance_password", "")})
        if found.status != 200 or not isinstance(found.json, dict) or not isinstance(found.json.get("Object"), list):
            return False, f"{tenant['external_id']}: the simulator's token lookup answered {found!r}, nothing to compare with"
        if tokens != sorted(t.get("AccessToken") for t in found.json["Object"]):
            return True, f"{tenant['external_id']}: stored access tokens are not the simulator's"
        return True, None

    def simulator_settings(self):
        return {"MAGNIFINANCE_EMAIL": self.OWNER_EMAIL, "MAGNIFINANCE_TOKEN": "ippn-token-" + secrets.token_hex(12),
                "MAGNIFINANCE_PASSWORD": "ippn-pw-" + secrets.token_hex(12)}

    def check_secrets(self, settings):
        return {"magnifinance_token": settings["MAGNIFINANCE_TOKEN"], "magnifinance_password": settings["MAGNIFINANCE_PASSWORD"]}

    def check_calls(self, checks, tenants, record, label):
        """One AddPartner per company registered at once, over the whole run: none seen fails, and so does a second
        (a gateway repeating a call whose outcome it did not learn)."""
        new_companies = [t for t in tenants if not t.get("existing")]
        add_partner = record.get("add_partner") or {}
        wrong = {t["tax_id"]: add_partner.get(t["tax_id"], 0) for t in new_companies if add_partner.get(t["tax_id"], 0) != 1}
        seen = sum(add_partner.get(t["tax_id"], 0) for t in new_companies)
        checks.check(f"{label}: each new MagniFinance company got exactly one AddPartner", new_companies and not wrong,
                     f"AddPartner calls per tax id that are not 1 (0: never seen, 2+: repeated): {wrong}" if wrong else
                     f"{len(new_companies)} companies, {seen} AddPartner calls seen" if new_companies else "no new company to check")


class InvoiceXpress(Provider):
    """A new company gets an account of its own at once (active, with the account's name and key); a company that
    already used InvoiceXpress (the test helper opens an account holding its fiscal id before the create) is asked
    for credentials and types in the account name and key the helper answered.

    Its simulator has no random faults (setChaos does nothing) and no /_control endpoints at all (`/_control` would
    be an account's name): `chaos` and `call_records` are False, so no check asks it for chaos or call records, and
    none can assert on its calls (one create per fiscal id is the simulator's own rule: a second answers "already
    used"). Where a check asks for random faults, `fault_script` goes through the public faults helper instead: only
    faults answered before the operation, so none makes an account whose key the gateway would not learn."""
    id, name, kind_prefix, customer = "invoicexpress", "InvoiceXpress", "ix", "company"
    settings_prefix, base_url_setting = "INVOICEXPRESS_", "INVOICEXPRESS_BASE_URL"
    chaos = call_records = False
    fault_script = (
        {"operation": "accounts/create", "status": 500, "times": 2},
        {"operation": "accounts/create", "status": 502, "style": "html", "times": 2},
        {"operation": "accounts/create", "status": 200, "style": "garbage", "times": 1},
        {"operation": "accounts/create", "status": 429, "retry_after": 1, "times": 1},
        {"operation": "accounts/create", "status": 500, "style": "reset", "times": 1},
        {"operation": "clients", "status": 503, "times": 2},
        {"operation": "clients", "status": 500, "style": "reset", "times": 1},
    )

    def base_url(self, root):
        # A template: each account lives under its own name, as at {name}.app.invoicexpress.com.
        return root + self.sandbox_path + "/{account}"

    def create_body(self, external_id, existing=False, rng=None, used=None):
        tax_id = random_nif(rng, used)
        return {"provider": self.id, "external_id": external_id, "profile": {
            "email": f"{external_id}@example.pt", "contact_name": "Rui Costa",
            "company": {"tax_id": tax_id, "legal_name": f"Fiabilidade {external_id} Lda", "country": "PT"},
        }}, {"tax_id": tax_id}

    def account(self, gateway, name):
        return gateway.control("GET", f"{self.helpers_path}/accounts/" + urllib.parse.quote(name, safe=""))

    def make_existing(self, gateway, tenant):
        answer = gateway.control("POST", f"{self.helpers_path}/fiscal-ids/{tenant['tax_id']}/existing-user")
        if answer.status == 200 and isinstance(answer.json, dict):
            tenant["account"] = {"account_name": answer.json.get("account_name"), "api_key": answer.json.get("api_key")}
        return answer

    def customer_credentials(self, gateway, tenant):
        """An existing user types in what the helper answered. A new company asked for credentials (the outcome of
        the gateway's create was lost, so it answered "already used" when asked again) types in the account the
        partner's create made, as InvoiceXpress's welcome email names it."""
        if tenant.get("account"):
            return dict(tenant["account"])
        name = self.find_account(gateway, tenant)
        if name is None:
            return None
        answer = self.account(gateway, name)
        if answer.status != 200 or not isinstance(answer.json, dict):
            return None
        return {"account_name": name, "api_key": answer.json["api_key"]}

    def find_account(self, gateway, tenant):
        """The name of the account that holds the tenant's fiscal id (the one the partner's create made, whose
        outcome a kill hid), as the sandbox's helper answers it, or None. A name found is kept."""
        if tenant.get("account_name"):
            return tenant["account_name"]
        answer = gateway.control("GET", f"{self.helpers_path}/fiscal-ids/{tenant['tax_id']}")
        if answer.status == 200 and isinstance(answer.json, dict) and answer.json.get("fiscal_id") == tenant["tax_id"]:
            tenant["account_name"] = answer.json["account_name"]
            return tenant["account_name"]
        return None

    def compare_credentials(self, gateway, tenant, credentials):
        name = credentials.get("account_name")
        if not isinstance(name, str) or not name:
            return False, f"{tenant['external_id']}: stored InvoiceXpress credentials without an account_name ({sorted(credentials)})"
        found = self.account(gateway, name)
        if found.status != 200 or not isinstance(found.json, dict):
            return False, f"{tenant['external_id']}: the simulator has no account {name} ({found!r})"
        record = found.json
        wrong = [what for what, ok in (
            ("api_key", credentials.get("api_key") == record.get("api_key")),
            ("account_name", record.get("account_name") == name),
            ("the fiscal id", record.get("fiscal_id") == tenant.get("tax_id")),
            ("account_url", credentials.get("account_url") == f"https://{name}.app.invoicexpress.com"),
            ("provider", credentials.get("provider") == self.id),
        ) if not ok]
        if wrong:
            return True, f"{tenant['external_id']}: stored {', '.join(wrong)} not the simulator's account {name}"
        return True, None

    def simulator_settings(self):
        return {"INVOICEXPRESS_ACCOUNT_NAME": "ix-partner-" + secrets.token_hex(4),
                "INVOICEXPRESS_API_KEY": "ix-partner-" + secrets.token_hex(12)}

    def check_secrets(self, settings):
        return {"invoicexpress_api_key": settings["INVOICEXPRESS_API_KEY"]}


WRAPP, MAGNIFINANCE, INVOICEXPRESS = Wrapp(), MagniFinance(), InvoiceXpress()
# Every provider of the sandbox, in the order its simulators' seeds are given.
PROVIDERS = (WRAPP, MAGNIFINANCE, INVOICEXPRESS)
PROVIDER_BY_ID = {p.id: p for p in PROVIDERS}


def kinds():
    """Every (provider, existing customer?) pair: the customers a generic check makes of each provider."""
    return [(p, existing) for p in PROVIDERS for existing in (False, True)]
