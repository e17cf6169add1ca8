#!/usr/bin/env python3
"""A partner developer's first day, automated: generates a Python client from docs/openapi.yaml with
openapi-python-client (any warning fails the check), then drives a sandbox gateway only through that client.

    python3 scripts/client_check.py --binary .build/debug/gateway

Through the generated code: a new Wrapp customer (login completed with the test helper, key by webhook), a Wrapp
customer who already had an account (credentials supplied), a new MagniFinance company and an existing client
(approved with the test helper), a new InvoiceXpress company (an account made at once) and one that already used
InvoiceXpress (account name and key typed in), each driven to `active`; credentials read as typed objects of the
right variant, InvoiceXpress's compared with the simulator's account (test helper); credentials ready to use, with a
key made through the admin API that has `tokens:issue` and `provider:proxy` but not `credentials:read` (a Wrapp access
token, a call through the provider proxy, the long-lived credentials refused);
a lapsed subscription; a provider fault and what the partner sees of it; a validation error parsed as a typed
problem; the event feed read to its end; an offboarding.
"""
import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timezone

from checklib import Checks, Gateway, call, log, nif as company_nif, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "onboarding_gateway_client"
expect = Checks()




def generate(into):
    """The client, as a partner would make it: no config, the spec as it is."""
    result = subprocess.run(
        ["openapi-python-client", "generate", "--path", os.path.join(ROOT, "docs/openapi.yaml"), "--meta", "none",
         "--output-path", os.path.join(into, PACKAGE)],
        capture_output=True, text=True, cwd=into,
    )
    output = result.stdout + result.stderr
    warned = "warning" in output.lower() or "unable to" in output.lower() or "cannot" in output.lower()
    if result.returncode != 0 or warned:
        log(output)
    expect(result.returncode == 0, "openapi-python-client generates a client")
    expect(not warned, "the generator prints no warning")
    return result.returncode == 0




def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="gw-client-")
    if not generate(work):
        return expect.report("client check")
    sys.path.insert(0, work)
    client_module = importlib.import_module(PACKAGE)
    from onboarding_gateway_client import AuthenticatedClient, Client
    from onboarding_gateway_client.api.admin import create_api_key
    from onboarding_gateway_client.api.events import list_events, list_tenant_events
    from onboarding_gateway_client.api.sandbox import (
        approve_sandbox_magni_finance_partnership, clear_sandbox_provider_faults, complete_sandbox_wrapp_login,
        get_sandbox_invoice_xpress_account, get_sandbox_magni_finance_company, get_sandbox_wrapp_customer,
        inject_sandbox_provider_fault, make_sandbox_invoice_xpress_existing_user, mark_sandbox_magni_finance_existing_client,
        mark_sandbox_wrapp_customer_pre_existing, set_sandbox_wrapp_subscription,
    )
    from onboarding_gateway_client.api.tenants import (
        create_tenant, get_credentials, get_tenant, issue_access_token, offboard_tenant, refresh_tenant, supply_credentials,
    )
    from onboarding_gateway_client.models import (
        AccessToken, ApiKey, Company, CreateApiKey, CreateTenant, EventType, InvoiceXpressCredentials,
        MagniFinanceCredentials, NextActionType, Problem, Profile, Provider, SandboxFault, SandboxFaultStyle,
        SandboxInvoiceXpressAccount, SandboxOperation, SandboxPartnership, SandboxSubscription, Scope, SupplyCredentials,
        Tenant, TenantState, WrappCredentials,
    )
    log(f"generated {client_module.__name__} in {work}")

    data = os.path.join(work, "data")
    os.makedirs(data)
    gateway = Gateway(os.path.abspath(args.binary), data, settings={"LOG_LEVEL": "info"},
                      log_path=os.path.join(work, "gateway.log"))
    base = f"http://127.0.0.1:{gateway.port}"
    try:
        if not gateway.start_or_fail(expect, "the gateway is ready", ready_within=30):
            return expect.report("client check")
        probe = Client(base_url=base)
        from onboarding_gateway_client.api.public import ready
        if not wait_for(expect, "the gateway is ready", lambda: ready.sync_detailed(client=probe).status_code == 200):
            return expect.report("client check")
        partner = AuthenticatedClient(base_url=base, token=gateway.key, timeout=30)
        helpers = Client(base_url=base, timeout=30)

        def create(body):
            answer = create_tenant.sync_detailed(client=partner, body=body, idempotency_key=str(uuid.uuid4()))
            expect(isinstance(answer.parsed, Tenant), f"create {body.external_id}: a typed Tenant ({answer.status_code})")
            return answer

        def tenant(tenant_id):
            return get_tenant.sync(tenant_id, client=partner)

        def settles(tenant_id, state, refresh=False):
            def probe_state():
                if refresh:
                    refresh_tenant.sync_detailed(tenant_id, client=partner)
                current = tenant(tenant_id)
                return current if current.state == state else None
            return wait_for(expect, f"{tenant_id} becomes {state.value}", probe_state)

        run = uuid.uuid4().hex[:8]

        # 1. A new Wrapp customer: login by the test helper, key by webhook.
        wrapp_id = f"wrapp-new-{run}"
        created = create(CreateTenant(provider=Provider.WRAPP, external_id=wrapp_id,
                                      profile=Profile(email="maria@example.com", phone="+302101234567")))
        new_wrapp = created.parsed
        expect(created.status_code == 201 and new_wrapp.state == TenantState.ACTION_REQUIRED
               and new_wrapp.next_action.type_ == NextActionType.REDIRECT_TO_URL,
               "Wrapp: 201, action_required, redirect_to_url")
        login = complete_sandbox_wrapp_login.sync(wrapp_id, client=helpers)
        expect(login.webhook_status == 200, "test helper: the login sent Wrapp's webhook, answered 200")
        settles(new_wrapp.id, TenantState.ACTIVE)
        credentials = get_credentials.sync(new_wrapp.id, client=partner)
        expect(isinstance(credentials, WrappCredentials) and credentials.api_key == login.api_key
               and credentials.wrapp_user_id == login.wrapp_user_id, "Wrapp credentials: a WrappCredentials with the customer's key")

        # 1b. Credentials ready to use. A key for the partner's invoicing service, made through the admin API, may issue
        # access tokens and call through the provider proxy but not read the long-lived credentials. A Wrapp tenant
        # onboarded like the one above: its token through the generated client, a proxied Wrapp call in plain HTTP
        # (the generated client encodes every `/` of the {path} parameter, so a provider path of several segments
        # cannot go through it), and its credentials refused to that key.
        admin = AuthenticatedClient(base_url=base, token=gateway.secrets["admin_token"], timeout=30)
        scopes = [Scope.TENANTSREAD, Scope.TOKENSISSUE, Scope.PROVIDERPROXY]
        made = create_api_key.sync_detailed(client=admin, body=CreateApiKey(name=f"invoicing-{run}", scopes=scopes))
        issued_key = made.parsed.key if isinstance(made.parsed, ApiKey) and isinstance(made.parsed.key, str) else None
        if not expect(made.status_code == 201 and bool(issued_key) and sorted(made.parsed.scopes) == sorted(scopes),
                      "admin API: a key with tenants:read, tokens:issue and provider:proxy (201, the key shown once)"):
            log(f"      answered {made.status_code}: {made.content[:300]!r}")
        invoicing = AuthenticatedClient(base_url=base, token=issued_key or "", timeout=30)
        linked_id = f"wrapp-tokens-{run}"
        linked = create(CreateTenant(provider=Provider.WRAPP, external_id=linked_id,
                                     profile=Profile(email="giorgos@example.com", phone="+302101234570"))).parsed
        complete_sandbox_wrapp_login.sync(linked_id, client=helpers)
        settles(linked.id, TenantState.ACTIVE)

        answered = issue_access_token.sync_detailed(linked.id, client=invoicing)
        token = answered.parsed
        authorization = (token.use.headers.additional_properties.get("Authorization") or "") if isinstance(token, AccessToken) else ""
        if not expect(answered.status_code == 200 and isinstance(token, AccessToken) and token.provider == Provider.WRAPP
                      and bool(token.token) and isinstance(token.expires_at, datetime)
                      and token.expires_at > datetime.now(timezone.utc) and "{token}" in authorization,
                      "access token (tokens:issue): a typed AccessToken for wrapp, a token, expires_at in the future, "
                      "use.headers.Authorization a template with {token}"):
            log(f"      answered {answered.status_code}: {answered.content[:300]!r}")
        expect(answered.headers.get("cache-control") == "no-store", "access token: answered with Cache-Control: no-store",
               f"Cache-Control: {answered.headers.get('cache-control')!r}")

        proxied = call(gateway.port, "GET", f"/v1/tenants/{linked.id}/provider/tenant_details",
                       headers={"Authorization": f"Bearer {issued_key}"}, timeout=30)
        details = proxied.json if isinstance(proxied.json, dict) else {}
        expect(proxied.status == 200 and details.get("partner_user_id") == linked_id,
               "provider proxy (provider:proxy): GET …/provider/tenant_details answers 200 from Wrapp, naming the "
               "tenant's external_id as partner_user_id", "" if proxied.status == 200 else f"answered {proxied!r}")

        refused = get_credentials.sync_detailed(linked.id, client=invoicing)
        expect(refused.status_code == 403 and isinstance(refused.parsed, Problem) and refused.parsed.code == "forbidden",
               "GET …/credentials with that key (no credentials:read): 403 forbidden, a typed Problem",
               f"answered {refused.status_code}")

        # 2. A Wrapp customer who already had an account: no webhook; the app supplies what the customer types in.
        existing_id = f"wrapp-existing-{run}"
        marked = mark_sandbox_wrapp_customer_pre_existing.sync(existing_id, client=helpers)
        expect(marked.pre_existing, "test helper: customer marked pre-existing")
        old = create(CreateTenant(provider=Provider.WRAPP, external_id=existing_id,
                                  profile=Profile(email="nikos@example.com", phone="+302101234568"))).parsed
        done = complete_sandbox_wrapp_login.sync(existing_id, client=helpers)
        expect(done.webhook_status is None, "a pre-existing customer's login sends no webhook")
        waiting = settles(old.id, TenantState.ACTION_REQUIRED, refresh=True)
        wait_for(expect, "next_action provide_credentials", lambda: (t := tenant(old.id)).next_action is not None
                 and t.next_action.type_ == NextActionType.PROVIDE_CREDENTIALS or None, limit=15)
        customer = get_sandbox_wrapp_customer.sync(existing_id, client=helpers)
        supplied = supply_credentials.sync(old.id, client=partner, idempotency_key=str(uuid.uuid4()),
                                           body=SupplyCredentials(wrapp_user_id=customer.wrapp_user_id, api_key=customer.api_key))
        expect(waiting is not None and isinstance(supplied, Tenant) and supplied.state == TenantState.ACTIVE,
               "supplied credentials: active")

        # 3. A new MagniFinance company: granted at once.
        company = create(CreateTenant(provider=Provider.MAGNIFINANCE, external_id=f"mf-new-{run}", profile=Profile(
            email="ana@example.pt", contact_name="Ana Sousa",
            company=Company(tax_id=nif(run, 1), legal_name="Exemplo Lda", country="PT", post_code="1000-001")))).parsed
        settles(company.id, TenantState.ACTIVE)
        tokens = get_credentials.sync(company.id, client=partner)
        expect(isinstance(tokens, MagniFinanceCredentials) and len(tokens.access_tokens) > 0 and tokens.access_tokens[0].token,
               "MagniFinance credentials: a MagniFinanceCredentials with access tokens")

        # 4. An existing MagniFinance client: waits for the approval email, approved by the test helper.
        client_tax_id = nif(run, 2)
        mark_sandbox_magni_finance_existing_client.sync(client_tax_id, client=helpers)
        approval = create(CreateTenant(provider=Provider.MAGNIFINANCE, external_id=f"mf-client-{run}", profile=Profile(
            email="rui@example.pt", company=Company(tax_id=client_tax_id, country="PT")))).parsed
        expect(approval.state == TenantState.ACTION_REQUIRED and approval.next_action.type_ == NextActionType.AWAIT_APPROVAL,
               "existing client: action_required, await_approval")
        state = get_sandbox_magni_finance_company.sync(client_tax_id, client=helpers)
        expect(state.partnership == SandboxPartnership.REQUESTED and state.add_partner_calls == 1, "one AddPartner, partnership requested")
        approve_sandbox_magni_finance_partnership.sync(client_tax_id, client=helpers)
        settles(approval.id, TenantState.ACTIVE, refresh=True)
        expect(isinstance(get_credentials.sync(approval.id, client=partner), MagniFinanceCredentials), "approved client: tokens")

        # 4b. A new InvoiceXpress company: an account of its own at once, its name and key the typed credentials, the
        # same the simulated InvoiceXpress holds for that account.
        account_created = create(CreateTenant(provider=Provider.INVOICEXPRESS, external_id=f"ix-new-{run}", profile=Profile(
            email="rui@example.pt", contact_name="Rui Costa",
            company=Company(tax_id=nif(run, 3), legal_name="Exemplo Dois Lda", country="PT"))))
        ix_new = account_created.parsed
        expect(account_created.status_code == 201 and ix_new.state == TenantState.ACTIVE and ix_new.credentials_available,
               "InvoiceXpress: 201, active at once, credentials_available")
        ix_credentials = get_credentials.sync(ix_new.id, client=partner)
        expect(isinstance(ix_credentials, InvoiceXpressCredentials) and ix_credentials.provider == "invoicexpress"
               and bool(ix_credentials.account_name) and bool(ix_credentials.api_key)
               and ix_credentials.account_url == f"https://{ix_credentials.account_name}.app.invoicexpress.com",
               "InvoiceXpress credentials: an InvoiceXpressCredentials (provider invoicexpress) with account_name, "
               "account_url and api_key")
        if isinstance(ix_credentials, InvoiceXpressCredentials):
            account = get_sandbox_invoice_xpress_account.sync(ix_credentials.account_name, client=helpers)
            expect(isinstance(account, SandboxInvoiceXpressAccount) and account.account_name == ix_credentials.account_name
                   and account.api_key == ix_credentials.api_key and account.fiscal_id == nif(run, 3)
                   and account.created_by_partner, "InvoiceXpress credentials: the simulator's account (test helper) "
                   "has that name, that key and the company's fiscal id")

        # 4c. A company that already uses InvoiceXpress: asked for credentials, types in its account name and key.
        ix_tax_id = nif(run, 4)
        existing_user = make_sandbox_invoice_xpress_existing_user.sync(ix_tax_id, client=helpers)
        expect(isinstance(existing_user, SandboxInvoiceXpressAccount) and not existing_user.created_by_partner,
               "test helper: an existing InvoiceXpress user holds the fiscal id")
        ix_old = create(CreateTenant(provider=Provider.INVOICEXPRESS, external_id=f"ix-existing-{run}", profile=Profile(
            email="joana@example.pt", contact_name="Joana Lima",
            company=Company(tax_id=ix_tax_id, legal_name="Exemplo Tres Lda", country="PT")))).parsed
        expect(ix_old.state == TenantState.ACTION_REQUIRED and ix_old.next_action.type_ == NextActionType.PROVIDE_CREDENTIALS
               and ix_old.provider_status == "account_exists",
               "existing InvoiceXpress user: action_required, provide_credentials, provider_status account_exists")
        typed_in = supply_credentials.sync(ix_old.id, client=partner, idempotency_key=str(uuid.uuid4()), body=SupplyCredentials(
            account_name=existing_user.account_name, api_key=existing_user.api_key))
        expect(isinstance(typed_in, Tenant) and typed_in.state == TenantState.ACTIVE, "typed-in account name and key: active")
        kept = get_credentials.sync(ix_old.id, client=partner)
        expect(isinstance(kept, InvoiceXpressCredentials) and kept.provider == "invoicexpress"
               and kept.account_name == existing_user.account_name and kept.api_key == existing_user.api_key,
               "InvoiceXpress credentials: the account name and key typed in, as an InvoiceXpressCredentials")

        # 5. A lapsed Wrapp subscription suspends the tenant.
        set_sandbox_wrapp_subscription.sync(wrapp_id, client=helpers, body=SandboxSubscription(active=False))
        settles(new_wrapp.id, TenantState.SUSPENDED, refresh=True)

        # 6. Wrapp is down: the create is accepted (202, pending, last_error), and completes once Wrapp is back.
        inject_sandbox_provider_fault.sync(Provider.WRAPP, client=helpers, body=SandboxFault(
            operation=SandboxOperation.EXTERNAL_LOGIN, status=502, style=SandboxFaultStyle.HTML, times=1000))
        outage = create(CreateTenant(provider=Provider.WRAPP, external_id=f"wrapp-outage-{run}",
                                     profile=Profile(email="eleni@example.com", phone="+302101234569")))
        expect(outage.status_code == 202 and outage.parsed.state == TenantState.PENDING and outage.parsed.last_error is not None
               and outage.parsed.last_error.code == "provider_unavailable", "provider down: 202, pending, last_error provider_unavailable")
        cleared = clear_sandbox_provider_faults.sync(Provider.WRAPP, client=helpers)
        expect(cleared.pending == 0, "test helper: faults cleared")
        wait_for(expect, "the pending tenant is submitted once Wrapp is back",
                 lambda: tenant(outage.parsed.id).state == TenantState.ACTION_REQUIRED, limit=60)

        # 7. A validation error, as a typed problem.
        invalid = create_tenant.sync_detailed(client=partner, body=CreateTenant(
            provider=Provider.MAGNIFINANCE, external_id=f"mf-bad-{run}", profile=Profile(company=Company(tax_id="123456780", country="PT"))))
        problem = invalid.parsed
        if not expect(invalid.status_code == 422 and isinstance(problem, Problem) and problem.code == "validation_failed"
                      and [e.field for e in problem.errors] == ["profile.company.tax_id"],
                      "a wrong NIF: 422, a typed Problem naming profile.company.tax_id"):
            log(f"      answered {invalid.status_code}: {invalid.content[:300]!r}")

        # 8. The event feed, read to its end.
        seen, after, pages = [], None, 0
        while True:
            page = list_events.sync(client=partner, limit=5, **({"after": after} if after else {}))
            pages += 1
            seen += page.data
            if page.next_cursor is None or not page.data:
                break
            after = page.next_cursor
        available = {e.data.tenant.id for e in seen if e.type_ == EventType.TENANT_CREDENTIALS_AVAILABLE}
        expect({new_wrapp.id, old.id, company.id, approval.id, ix_new.id, ix_old.id} <= available,
               f"the feed ({len(seen)} events in {pages} pages) has credentials_available for all six")
        expect(len({e.id for e in seen}) == len(seen), "no event twice in the feed")
        history = list_tenant_events.sync(new_wrapp.id, client=partner)
        expect([e.type_ for e in history.data][:1] == [EventType.TENANT_CREATED], "a tenant's history starts with tenant.created")

        # 9. Offboarding erases; credentials are gone.
        gone = offboard_tenant.sync(company.id, client=partner, idempotency_key=str(uuid.uuid4()))
        expect(isinstance(gone, Tenant) and gone.state == TenantState.OFFBOARDED, "offboarded")
        after_offboarding = get_credentials.sync_detailed(company.id, client=partner)
        expect(after_offboarding.status_code == 404 and isinstance(after_offboarding.parsed, Problem),
               "no credentials after offboarding (404, a typed Problem)")
    finally:
        gateway.stop()
    errors = [line for line in open(os.path.join(work, "gateway.log")) if '"level":"error"' in line or '"level":"critical"' in line]
    expect(not errors, "the gateway logged no error" + (f": {errors[:3]}" if errors else ""))
    if expect.failed:
        log(f"(kept in {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return expect.report("client check")


def nif(run, n):
    """A valid Portuguese NIF (check digit), different for each run and n."""
    return company_nif("".join(str(int(c, 16) % 10) for c in run[:6]) + str(n % 10))



if __name__ == "__main__":
    sys.exit(main())
