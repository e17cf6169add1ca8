import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// Wrapp end to end through the real application: API → external_login → login page → webhook → /login → active.
@Suite struct WrappOnboardingTests {
    @Test(arguments: TestDatabase.all) func aNewCustomerGoesFromPostToActive(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let created = try await h.createWrapp("cust-1")
            #expect(created.status == 201)
            #expect(created.string("state") == "action_required")
            #expect(created.string("next_action.type") == "redirect_to_url")
            #expect(created.string("provider_status") == "login_url_issued")
            #expect(created.headers[.contentType] == "application/json")
            let id = try #require(created.string("id"))
            #expect(id.hasPrefix("ten_"))

            // The customer presses the sandbox login page's button: Wrapp posts the user-created webhook to us.
            let loginURL = try #require(created.string("next_action.url"))
            let page = try await h.call(.get, try #require(URL(string: loginURL)?.path), key: nil)
            #expect(page.status == 200 && page.text.contains("<button"))
            #expect(await h.wrapp.completeOnboarding("cust-1") == 200)
            #expect(try await h.tenant(id).string("state") == "action_required", "nothing changes before the inbox is processed")
            await h.step()

            let active = try await h.tenant(id)
            #expect(active.string("state") == "active")
            #expect(active["credentials_available"] as? Bool == true)
            #expect(active.value("next_action") is NSNull)
            let user = try #require(await h.wrapp.user("cust-1"))
            let credentials = try await h.call(.get, "/v1/tenants/\(id)/credentials")
            #expect(credentials.json["api_key"] as? String == user.apiKey)
            #expect(credentials.json["wrapp_user_id"] as? String == user.wrappUserID)
            #expect(credentials.json["provider"] as? String == "wrapp")
            #expect(credentials.headers[.cacheControl] == "no-store")

            #expect(transitions(try await h.events(id)) == [
                "tenant.created:->pending@api",
                "tenant.state_changed:pending>action_required@api",
                "tenant.state_changed:action_required>active@webhook",
                "tenant.credentials_available:->active@webhook",
            ])
            let audit = try await h.store.auditEntries(tenantID: id)
            #expect(audit.map(\.action) == ["credentials.read"])
            #expect(audit.first?.actor == "api_key:GATEWAY_API_KEY")

            // No secret in plaintext: not in the database files, not in the logs, not in any event.
            let webhookToken = try await h.webhookPath("cust-1").split(separator: "/").last.map(String.init) ?? "?"
            let secrets = [user.apiKey, webhookToken, h.apiKey, try #require(h.gateway.config.providers[.wrapp]?.values["partner_api_key"])]
            let bytes = try await h.databaseBytes()
            for secret in secrets {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "a secret is stored in plaintext")
                #expect(!h.logs.text.contains(secret), "a secret was logged")
            }
            let eventsText = try await h.call(.get, "/v1/events").text
            #expect(!eventsText.contains(user.apiKey))
        }
    }

    @Test(arguments: TestDatabase.all) func aCustomerWhoAlreadyHadWrappSuppliesTheKeyByHand(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let id = try #require(try await h.createWrapp("cust-2", email: "existing.maria@example.com").string("id"))
            #expect(await h.wrapp.completeOnboarding("cust-2") == nil, "no webhook for an existing Wrapp user")
            #expect(await h.advance(40) == 1)
            let waiting = try await h.tenant(id)
            #expect(waiting.string("state") == "action_required")
            #expect(waiting.string("next_action.type") == "provide_credentials")

            let user = try #require(await h.wrapp.user("cust-2"))
            let forged = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"wrapp_user_id":"\#(user.wrappUserID)","api_key":"guessed"}"#)
            #expect(forged.status == 422)
            #expect(forged["code"] as? String == "credentials_rejected")
            #expect(try await h.tenant(id).string("state") == "action_required")

            let missing = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"api_key":""}"#)
            #expect(missing.status == 422)
            #expect(Set((missing["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }) == ["wrapp_user_id", "api_key"])

            let supplied = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"wrapp_user_id":"\#(user.wrappUserID)","api_key":"\#(user.apiKey)"}"#)
            #expect(supplied.status == 200)
            #expect(supplied.string("state") == "active", "\(h.logs.text)")
            #expect(try await h.store.auditEntries(tenantID: id).map(\.action) == ["credentials.rejected", "credentials.supplied"])
        }
    }

    /// The adapter reports only "not usable" (it is never told the tenant's state); the state machine makes it an
    /// onboarding to finish, and the service asks Wrapp for the login URL the customer needs.
    @Test func aSuppliedKeyWithoutASubscriptionSendsTheCustomerToAFreshLoginURL() async throws {
        try await SandboxHarness.run { h in
            let id = try #require(try await h.createWrapp("cust-unpaid", email: "existing.unpaid@example.com").string("id"))
            #expect(await h.wrapp.completeOnboarding("cust-unpaid") == nil, "an existing user: no webhook")
            #expect(await h.advance(40) == 1)
            let user = try #require(await h.wrapp.user("cust-unpaid"))
            await h.wrapp.setSubscription("cust-unpaid", active: false)
            let logins = await h.wrapp.calls["/external_login"] ?? 0

            let supplied = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"wrapp_user_id":"\#(user.wrappUserID)","api_key":"\#(user.apiKey)"}"#)
            #expect(supplied.status == 200, "\(supplied.text)")
            #expect(supplied.string("state") == "action_required" && supplied.string("provider_status") == "subscription_inactive")
            #expect(supplied.string("next_action.type") == "redirect_to_url" && supplied.string("next_action.url")?.contains("/sandbox/wrapp/login/") == true)
            #expect(supplied.value("credentials_available") as? Bool == true)
            #expect(await h.wrapp.calls["/external_login"] == logins + 1, "one fresh login URL")

            // The link they have is reused while they have not paid; once they have, the tenant is active.
            let again = try await h.call(.post, "/v1/tenants/\(id)/refresh")
            #expect(again.string("next_action.url") == supplied.string("next_action.url"))
            #expect(await h.wrapp.calls["/external_login"] == logins + 1, "no second login URL")
            await h.wrapp.setSubscription("cust-unpaid", active: true)
            #expect(try await h.call(.post, "/v1/tenants/\(id)/refresh").string("state") == "active")
            await h.wrapp.setSubscription("cust-unpaid", active: false)
            let lapsed = try await h.call(.post, "/v1/tenants/\(id)/refresh")
            #expect(lapsed.string("state") == "suspended", "once onboarded, the same fact is a lapse")
            #expect(await h.wrapp.calls["/external_login"] == logins + 1, "no login URL for a lapse")
        }
    }

    @Test(arguments: TestDatabase.all) func webhookForgeriesChangeNothing(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let id = try #require(try await h.createWrapp("cust-3").string("id"))
            let path = try await h.webhookPath("cust-3")
            #expect(path.hasPrefix("/webhooks/wrapp/"))
            #expect((path.split(separator: "/").last?.count ?? 0) >= 22, "at least 128 bits of token")

            let unknown = try await h.call(.post, "/webhooks/wrapp/not-a-token", key: nil, json: #"{"partner_user_id":"cust-3"}"#)
            #expect(unknown.status == 404)
            #expect(unknown.headers[.contentType] == "application/problem+json")
            #expect(try await h.call(.post, path, key: nil, json: "{not json").status == 400)
            #expect(try await h.call(.post, path, key: nil, json: #"{"hello":"world"}"#).status == 400)
            let huge = #"{"partner_user_id":"cust-3","pad":""# + String(repeating: "x", count: 70_000) + #""}"#
            #expect(try await h.call(.post, path, key: nil, json: huge).status == 413)

            let otherCustomer = try await h.call(.post, path, key: nil, json: #"{"partner_user_id":"someone-else","wrapp_user_id":"u","api_key":"k"}"#)
            #expect(otherCustomer.status == 422)
            #expect(try await h.store.auditEntries(tenantID: id).map(\.action) == ["webhook.rejected"])

            // Right customer, invented key: stored and answered 200, but never kept. Before the customer logged in, Wrapp
            // knows no email to bind a key to, so it waits; once they have, /login with their email refuses it.
            let forged = #"{"partner_user_id":"cust-3","wrapp_user_id":"u-1","api_key":"invented"}"#
            #expect(try await h.call(.post, path, key: nil, json: forged).status == 200)
            let repeated = try await h.call(.post, path, key: nil, json: forged)
            #expect(repeated.status == 200 && repeated["duplicate"] as? Bool == true)
            #expect(await h.step() == 1, "the repeat queued nothing")
            let after = try await h.tenant(id)
            #expect(after.string("state") == "action_required")
            #expect(after["credentials_available"] as? Bool == false)
            #expect(try await h.store.queued(tenantID: id).contains { $0.kind == .webhook }, "unverifiable yet: kept queued")
            let early = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"wrapp_user_id":"u-1","api_key":"invented"}"#)
            #expect(early.status == 409 && early["code"] as? String == "provider_user_unknown", "Wrapp answered clearly: not a 503")
            await h.wrapp.setSubscription("cust-3", active: false)
            await h.wrapp.logIn("cust-3")
            #expect(await h.advance(60) == 1)
            #expect(try await h.store.auditEntries(tenantID: id).map(\.action) == ["webhook.rejected", "webhook.credentials_rejected"])
            #expect(try await h.tenant(id)["credentials_available"] as? Bool == false)
            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials").status == 404)
        }
    }

    /// Webhooks that bring no key only say "ask Wrapp again": one check answers every such webhook of the tenant
    /// stored before it was asked. A key is still verified on its own. (Each used to cost a check of its own, so a
    /// flood of one webhook URL used up the provider rate that every customer's onboarding shares.)
    @Test(arguments: TestDatabase.all) func aBurstOfWebhooksCostsOneStatusCheck(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let id = try #require(try await h.createWrapp("burst-1").string("id"))
            let path = try await h.webhookPath("burst-1")
            for n in 0..<10 {
                #expect(try await h.call(.post, path, key: nil, json: #"{"partner_user_id":"burst-1","event":"changed","seq":"\#(n)"}"#).status == 200)
            }
            let keyed = #"{"partner_user_id":"burst-1","wrapp_user_id":"u-9","api_key":"invented"}"#
            #expect(try await h.call(.post, path, key: nil, json: keyed).status == 200)
            #expect(try await h.store.queued(tenantID: id).filter { $0.kind == .webhook }.count == 11)

            let checksBefore = await h.wrapp.calls["/embedded_check_user"] ?? 0
            #expect(await h.step() == 1, "one item per tenant at a time")
            #expect(await h.wrapp.calls["/embedded_check_user"] == checksBefore + 1, "one check for the ten")
            let left = try await h.store.queued(tenantID: id).filter { $0.kind == .webhook }
            #expect(left.count == 1, "the ten without a key are finished; the one with a key waits for its own turn")
            #expect(h.logs.entries.contains { $0.message == "queued webhooks answered by one check" && $0.metadata["webhooks"] == "10" })
        }
    }

    /// A check that did not reach Wrapp answers nothing: only its own webhook is finished, the others wait.
    @Test func aCheckThatFailedFinishesNoOtherWebhook() async throws {
        try await SandboxHarness.run { h in
            let id = try #require(try await h.createWrapp("burst-2").string("id"))
            let path = try await h.webhookPath("burst-2")
            for n in 0..<5 {
                #expect(try await h.call(.post, path, key: nil, json: #"{"partner_user_id":"burst-2","event":"changed","seq":"\#(n)"}"#).status == 200)
            }
            await h.wrapp.add(SimulatedFault(operation: "embedded_check_user", status: 503, style: .html))
            #expect(await h.step() == 1)
            #expect(await h.wrapp.faultsInjected >= 1, "the check failed")
            #expect(try await h.store.queued(tenantID: id).filter { $0.kind == .webhook }.count == 4, "the other four are still queued")
            #expect(!h.logs.entries.contains { $0.message == "queued webhooks answered by one check" })
        }
    }

    @Test(arguments: TestDatabase.all) func aLapsedSubscriptionSuspendsAndReturns(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let id = try #require(try await h.createWrapp("cust-4").string("id"))
            await h.wrapp.completeOnboarding("cust-4")
            await h.step()
            #expect(try await h.tenant(id).string("state") == "active", "\(h.logs.text)")
            #expect(try await h.store.queued(tenantID: id).first?.kind == .check, "active Wrapp tenants are re-checked")

            await h.wrapp.setSubscription("cust-4", active: false)
            #expect(await h.advance(3600) == 0, "not re-checked within the hour")
            #expect(await h.advance(86_400 * 1.25) == 1)
            #expect(try await h.tenant(id).string("state") == "suspended")

            await h.wrapp.setSubscription("cust-4", active: true)
            await h.advance(40)
            #expect(try await h.tenant(id).string("state") == "active")
            #expect(transitions(try await h.events(id)).suffix(2) == [
                "tenant.state_changed:active>suspended@poll", "tenant.state_changed:suspended>active@poll",
            ])
        }
    }
}
