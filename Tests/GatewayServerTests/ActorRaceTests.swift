import Foundation
import GatewayCore
import GatewayTesting
import HTTPTypes
import Providers
import Testing

/// Where the gateway's own actors meet on one tenant: API calls, the worker, webhooks and offboarding. Each test is
/// a race of issue 8 that undid another actor's work before tenants had one owner at a time.
@Suite struct ActorRaceTests {
    /// 1. Erasure undone: a refresh whose provider answer arrives after the tenant was offboarded must not bring
    /// the credentials back.
    @Test(arguments: TestDatabase.all) func aLateAnswerCannotUndoAnOffboarding(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database, worker: true) { h in
            await h.magni.markExistingClient("500000000")
            let id = try #require(try await h.createMagni("co-late", taxID: "500000000").string("id"))
            #expect(try await h.tenant(id).string("next_action.type") == "await_approval")
            await h.magni.approve("500000000")
            // The access-token call answers after 1.5 s (within the 2 s timeout): the refresh holds the tenant.
            await h.magni.add(SimulatedFault(operation: "partner/accessTokens", status: 200, style: .lateSuccess, delayMilliseconds: 1500))
            let asked = await h.magni.calls["partner/accessTokens"] ?? 0
            let refresh = Task { try await h.callOnNewConnection(.post, "/v1/tenants/\(id)/refresh") }
            // Offboard only once the refresh's call has reached the provider, so the answer is truly in flight.
            #expect(await h.eventually(5) { (await h.magni.calls["partner/accessTokens"] ?? 0) > asked })
            try await Task.sleep(for: .milliseconds(200))
            let deleted = try await h.call(.delete, "/v1/tenants/\(id)")
            #expect(deleted.status == 200, "offboarding waits for nobody")
            #expect(deleted.string("state") == "offboarded")
            let refreshed = try await refresh.value
            #expect(refreshed.string("state") == "offboarded", "the late answer was discarded: \(refreshed.text)")

            let credentials = try await h.call(.get, "/v1/tenants/\(id)/credentials")
            #expect(credentials.status == 404, "the erased tenant's tokens came back: \(credentials.text)")
            let tenant = try await h.tenant(id)
            #expect(tenant.string("state") == "offboarded" && tenant["credentials_available"] as? Bool == false)
            #expect(transitions(try await h.events(id)).last == "tenant.offboarded:action_required>offboarded@api")
            #expect(h.logs.text.contains("provider answer discarded"), "the late answer reached the commit and was fenced out")
        }
    }

    /// 2. Key swapped: a webhook naming this customer with another valid Wrapp account's key is never taken, for an
    /// active tenant (its key is not replaced) nor for one still waiting on its customer's login.
    @Test(arguments: TestDatabase.all) func anotherAccountsKeyIsNeverTaken(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let victim = try #require(try await h.createWrapp("victim", email: "victim@example.com").string("id"))
            let other = try #require(try await h.createWrapp("other", email: "other@example.com").string("id"))
            let waiting = try #require(try await h.createWrapp("waiting", email: "waiting@example.com").string("id"))
            await h.wrapp.completeOnboarding("victim")
            await h.wrapp.completeOnboarding("other")
            await h.step()
            let victimKey = try #require(await h.wrapp.user("victim")?.apiKey)
            let stranger = try #require(await h.wrapp.user("other"))
            #expect(try await h.tenant(victim).string("state") == "active")
            #expect(try await h.tenant(other).string("state") == "active")

            let forged = { (partnerUserID: String) in
                #"{"partner_user_id":"\#(partnerUserID)","wrapp_user_id":"\#(stranger.wrappUserID)","api_key":"\#(stranger.apiKey)"}"#
            }
            #expect(try await h.call(.post, try await h.webhookPath("victim"), key: nil, json: forged("victim")).status == 200)
            #expect(try await h.call(.post, try await h.webhookPath("waiting"), key: nil, json: forged("waiting")).status == 200)
            await h.step()

            let kept = try await h.call(.get, "/v1/tenants/\(victim)/credentials")
            #expect(kept.json["api_key"] as? String == victimKey, "an active tenant's key was replaced by a webhook")
            #expect(try await h.store.auditEntries(tenantID: victim).map(\.action).contains("webhook.credentials_ignored"))
            let notYet = try await h.tenant(waiting)
            #expect(notYet["credentials_available"] as? Bool == false, "another account's key was taken for a waiting customer")
            #expect(try await h.call(.get, "/v1/tenants/\(waiting)/credentials").status == 404)

            // The real customer logs in: their own key arrives and is the one kept; the forged one is refused.
            await h.wrapp.completeOnboarding("waiting")
            await h.advance(3600)
            await h.advance(3600)
            let own = try #require(await h.wrapp.user("waiting")?.apiKey)
            #expect(try await h.tenant(waiting).string("state") == "active")
            #expect(try await h.call(.get, "/v1/tenants/\(waiting)/credentials").json["api_key"] as? String == own)
            let actions = try await h.store.auditEntries(tenantID: waiting).map(\.action)
            #expect(actions.contains("webhook.credentials_ignored") || actions.contains("webhook.credentials_rejected"), "\(actions)")
            #expect(try await h.store.queued(tenantID: waiting).allSatisfy { $0.kind != .webhook }, "the forged webhook was settled")
        }
    }

    /// 3. Tenant stranded: the company MagniFinance was asked about cannot be swapped under a waiting tenant.
    @Test(arguments: TestDatabase.all) func aSubmittedCompanyIsFrozen(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            await h.magni.markExistingClient("500000000")
            let id = try #require(try await h.createMagni("co-frozen", taxID: "500000000").string("id"))
            let patch = try await h.call(.patch, "/v1/tenants/\(id)", json: #"{"profile":{"company":{"tax_id":"513495886"}}}"#)
            #expect(patch.status == 409, "\(patch.text)")
            #expect(patch["code"] as? String == "profile_frozen")
            #expect((patch["errors"] as? [[String: Any]])?.first?["field"] as? String == "profile.company.tax_id")
            let after = try await h.tenant(id)
            #expect(after.string("profile.company.tax_id") == "500000000")
            // Metadata is the partner's own and stays editable.
            #expect(try await h.call(.patch, "/v1/tenants/\(id)", json: #"{"metadata":{"plan":"gold"}}"#).status == 200)
        }
    }

    /// 4. A genuine key thrown away: Wrapp's `/login` answering an unreadable 200 is "unknown", not "refused"; the
    /// webhook stays queued and the key is verified again.
    @Test(arguments: TestDatabase.all) func anUnreadableLoginAnswerKeepsTheWebhookQueued(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let id = try #require(try await h.createWrapp("cust-garbled").string("id"))
            // Twice: the verification repeats one transient failure at once.
            await h.wrapp.add(SimulatedFault(operation: "login", status: 200, style: .garbage, times: 2))
            #expect(await h.wrapp.completeOnboarding("cust-garbled") == 200)
            await h.step()
            let waiting = try await h.tenant(id)
            #expect(waiting["credentials_available"] as? Bool == false)
            #expect(try await h.store.queued(tenantID: id).contains { $0.kind == .webhook }, "the webhook is still queued")
            #expect(try await !h.store.auditEntries(tenantID: id).map(\.action).contains("webhook.credentials_rejected"))

            await h.advance(120)
            let active = try await h.tenant(id)
            #expect(active.string("state") == "active", "\(h.logs.text.suffix(2000))")
            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials").json["api_key"] as? String == (await h.wrapp.user("cust-garbled")?.apiKey))
        }
    }

    /// 5. Refresh, retry, admin poll and the worker's job for one tenant never call its provider at once: each waits
    /// for the lease or answers 202 with the work queued, and the webhook's key ends up kept and available.
    @Test(arguments: TestDatabase.all) func oneProviderConversationPerTenantAtATime(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database, environment: ["GATEWAY_ADMIN_TOKEN": String(repeating: "a", count: 32)]) { h in
            let id = try #require(try await h.createWrapp("cust-busy").string("id"))
            #expect(await h.wrapp.completeOnboarding("cust-busy") == 200)
            // Every embedded_check_user answers after 0.6 s, so the webhook's conversation is long.
            await h.wrapp.add(SimulatedFault(operation: "embedded_check_user", status: 200, style: .lateSuccess, times: 100, delayMilliseconds: 600))
            // The worker claims the webhook first (taking the tenant's lease); the API calls then meet it.
            let claimed = await h.gateway.service.claimDueWork(limit: 10)
            #expect(claimed.map(\.kind) == [.webhook])
            let worker = Task { for item in claimed { await h.gateway.service.run(item) } }
            try await Task.sleep(for: .milliseconds(100))
            let admin = ["Authorization": "Bearer " + String(repeating: "a", count: 32)]
            async let refresh1 = h.callOnNewConnection(.post, "/v1/tenants/\(id)/refresh")
            async let refresh2 = h.callOnNewConnection(.post, "/v1/tenants/\(id)/refresh")
            async let poll = h.callOnNewConnectionAs(admin, .post, "/admin/tenants/\(id)/poll")
            let answers = try await [refresh1, refresh2, poll]
            _ = await worker.value
            for answer in answers { #expect([200, 202].contains(answer.status), "\(answer.text)") }
            let calls = try await h.call(.get, "/sandbox/wrapp/_control/calls", key: nil)
            #expect(calls.json["max_concurrent_per_user"] as? Int == 1, "two conversations overlapped: \(calls.text)")
            let tenant = try await h.tenant(id)
            #expect(tenant.string("state") == "active")
            #expect(tenant["credentials_available"] as? Bool == true, "the key is stored and shown as available")
        }
    }
}

extension SandboxHarness {
    /// One call on its own connection with the given headers replacing the partner key.
    func callOnNewConnectionAs(_ headers: [String: String], _ method: HTTPRequest.Method, _ path: String) async throws -> HTTPResult {
        try await callOnNewConnection(method, path, headers: headers)
    }
}
