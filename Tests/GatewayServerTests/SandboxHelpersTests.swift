import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// The documented test helpers under `/sandbox/test-helpers/…`: each does what the customer or the provider would,
/// and the gateway learns of it the way it would in production.
@Suite struct SandboxHelpersTests {
    @Test func aPreExistingWrappCustomerIsAskedForCredentialsAndSuppliesThem() async throws {
        try await SandboxHarness.run { h in
            let marked = try await h.call(.post, "/sandbox/test-helpers/wrapp/customers/cust-old/pre-existing", key: nil)
            #expect(marked.status == 200)
            #expect(marked.json["pre_existing"] as? Bool == true)
            #expect(marked.json["email"] is NSNull, "no email before the tenant's first external_login")

            let id = try #require(try await h.createWrapp("cust-old", email: "old@example.com").string("id"))
            let login = try await h.call(.post, "/sandbox/test-helpers/wrapp/customers/cust-old/complete-login", key: nil)
            #expect(login.status == 200)
            #expect(login.json["webhook_status"] is NSNull, "Wrapp sends no webhook for an account that existed")
            #expect(login.json["email"] as? String == "old@example.com")
            #expect(login.json["logged_in"] as? Bool == true)

            let refreshed = try await h.call(.post, "/v1/tenants/\(id)/refresh")
            #expect(refreshed.string("next_action.type") == "provide_credentials")
            let customer = try await h.call(.get, "/sandbox/test-helpers/wrapp/customers/cust-old", key: nil)
            let userID = try #require(customer.string("wrapp_user_id"))
            let apiKey = try #require(customer.string("api_key"))
            let supplied = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"wrapp_user_id":"\#(userID)","api_key":"\#(apiKey)"}"#)
            #expect(supplied.status == 200)
            #expect(supplied.string("state") == "active")
        }
    }

    @Test func aNewWrappLoginSendsTheWebhookAndALapseSuspends() async throws {
        try await SandboxHarness.run { h in
            let id = try #require(try await h.createWrapp("cust-new").string("id"))
            let login = try await h.call(.post, "/sandbox/test-helpers/wrapp/customers/cust-new/complete-login", key: nil)
            #expect(login.json["webhook_status"] as? Int == 200)
            await h.step()
            #expect(try await h.tenant(id).string("state") == "active")

            let lapsed = try await h.call(.put, "/sandbox/test-helpers/wrapp/customers/cust-new/subscription", key: nil, json: #"{"active":false}"#)
            #expect(lapsed.json["subscription_active"] as? Bool == false)
            #expect(try await h.call(.post, "/v1/tenants/\(id)/refresh").string("state") == "suspended")
        }
    }

    @Test func anExistingMagniFinanceClientWaitsForTheApproval() async throws {
        try await SandboxHarness.run { h in
            let marked = try await h.call(.post, "/sandbox/test-helpers/magnifinance/companies/513495886/existing-client", key: nil)
            #expect(marked.json["existing_client"] as? Bool == true)
            #expect(marked.json["partnership"] as? String == "none")
            let id = try #require(try await h.createMagni("co-1", taxID: "513495886").string("id"))
            let company = try await h.call(.get, "/sandbox/test-helpers/magnifinance/companies/513495886", key: nil)
            #expect(company.json["partnership"] as? String == "requested")
            #expect(company.json["add_partner_calls"] as? Int == 1)
            let late = try await h.call(.post, "/sandbox/test-helpers/magnifinance/companies/513495886/existing-client", key: nil)
            #expect(late.status == 409, "too late once the partnership was asked for")

            let approved = try await h.call(.post, "/sandbox/test-helpers/magnifinance/companies/513495886/approve", key: nil)
            #expect(approved.json["partnership"] as? String == "granted")
            #expect(try await h.call(.post, "/v1/tenants/\(id)/refresh").string("state") == "active")
        }
    }

    @Test func anInjectedFaultIsWhatThePartnerSeesUntilCleared() async throws {
        try await SandboxHarness.run { h in
            let injected = try await h.call(
                .post, "/sandbox/test-helpers/wrapp/faults", key: nil,
                json: #"{"operation":"external_login","status":502,"style":"html","times":1000}"#
            )
            #expect(injected.status == 200)
            #expect(injected.json["pending"] as? Int == 1000)
            let created = try await h.createWrapp("cust-down")
            #expect(created.status == 202)
            #expect(created.string("state") == "pending")
            #expect(created.string("last_error.code") == "provider_unavailable")

            let cleared = try await h.call(.delete, "/sandbox/test-helpers/wrapp/faults", key: nil)
            #expect(cleared.json["pending"] as? Int == 0)
            await h.advance(120)
            #expect(try await h.tenant(try #require(created.string("id"))).string("state") == "action_required")
        }
    }

    @Test func helpersRefuseWhatCannotHappenPrecisely() async throws {
        try await SandboxHarness.run { h in
            let unknown = try await h.call(.post, "/sandbox/test-helpers/wrapp/customers/nobody/complete-login", key: nil)
            #expect(unknown.status == 404)
            #expect(unknown.json["code"] as? String == "not_found")

            _ = try await h.call(.post, "/sandbox/test-helpers/wrapp/customers/early/pre-existing", key: nil)
            let beforeTenant = try await h.call(.post, "/sandbox/test-helpers/wrapp/customers/early/complete-login", key: nil)
            #expect(beforeTenant.status == 409, "a login needs the tenant's external_login first")
            let noLogin = try await h.call(.put, "/sandbox/test-helpers/wrapp/customers/early/subscription", key: nil, json: #"{"active":true}"#)
            #expect(noLogin.status == 409)

            let bad = try await h.call(
                .post, "/sandbox/test-helpers/magnifinance/faults", key: nil,
                json: #"{"operation":"login","status":true,"times":0,"delay_ms":null,"colour":"red"}"#
            )
            #expect(bad.status == 422)
            let fields = Set((bad.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
            #expect(fields == ["operation", "status", "times", "delay_ms", "colour"])
            #expect(await h.magni.pendingFaults == 0, "a refused fault changes nothing")

            #expect(try await h.call(.post, "/sandbox/test-helpers/ippn/faults", key: nil, json: #"{"operation":"partner","status":500}"#).status == 404)
            #expect(try await h.call(.post, "/sandbox/test-helpers/magnifinance/companies/12x/approve", key: nil).status == 422)
            #expect(try await h.call(.post, "/sandbox/test-helpers/magnifinance/companies/513495886/approve", key: nil).status == 404)
            let notBoolean = try await h.call(.put, "/sandbox/test-helpers/wrapp/customers/early/subscription", key: nil, json: #"{"active":1}"#)
            #expect(notBoolean.status == 422)
        }
    }
}
