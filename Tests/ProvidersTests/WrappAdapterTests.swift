import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// The Wrapp adapter against the Wrapp simulator, in every variant `providers.md` lists.
@Suite struct WrappAdapterTests {
    @Test func externalLoginGivesALoginURL() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            let answer = await adapters.wrapp.submit(Adapters.wrappTenant("cust-1"), previousAttempts: 0)
            let action = try #require(answer.finding.nextAction)
            #expect(action.type == .redirectToURL)
            #expect(action.url?.contains("/sandbox/wrapp/login/") == true)
            #expect(await adapters.wrappSimulator.user("cust-1")?.webhookEndpoint == "http://127.0.0.1:9/webhooks/wrapp/unused")
            // Safe to repeat: a fresh URL each time.
            let again = await adapters.wrapp.submit(Adapters.wrappTenant("cust-1"), previousAttempts: 1)
            #expect(again.finding.nextAction?.url != action.url)
        }
    }

    @Test func aWrongPartnerKeyIsNotTheCustomersFault() async throws {
        try await SandboxHarness.run { harness in
            let answer = try await Adapters(harness, wrappKey: "wrong").wrapp.submit(Adapters.wrappTenant(), previousAttempts: 0)
            #expect(answer.finding.isUnavailable)
        }
    }

    @Test func theHTML500ForBadCompanyDataIsTransient() async throws {
        try await SandboxHarness.run { harness in
            let answer = try await Adapters(harness).wrapp.submit(Adapters.wrappTenant(email: "fail500@example.com"), previousAttempts: 0)
            guard case .unavailable(let reason, _) = answer.finding else { Issue.record("expected unavailable, got \(answer.finding)"); return }
            #expect(reason.contains("HTML"))
        }
    }

    @Test("every error body shape", arguments: [SimulatedFault.Style.message, .error, .errorsMessage, .errorsString, .html, .garbage])
    func errorBodies(_ style: SimulatedFault.Style) async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            await adapters.wrappSimulator.add(SimulatedFault(operation: "external_login", status: 503, style: style))
            #expect(await adapters.wrapp.submit(Adapters.wrappTenant(), previousAttempts: 0).finding.isUnavailable)
            await adapters.wrappSimulator.add(SimulatedFault(operation: "external_login", status: 200, style: .garbage))
            #expect(await adapters.wrapp.submit(Adapters.wrappTenant(), previousAttempts: 0).finding.isUnavailable, "a 200 without login_url")
        }
    }

    @Test func aRefusalOfTheDataIsFinalAndNamedByOurFields() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            var tenant = Adapters.wrappTenant()
            tenant.profile.phone = nil
            let error = try #require(await adapters.wrapp.submit(tenant, previousAttempts: 0).finding.rejection)
            #expect(error.errors.map(\.field) == ["profile.phone"])
            #expect(!error.errors.contains { $0.message.contains("blank") }, "provider text is not echoed")
        }
    }

    @Test func rateLimitsHonourRetryAfter() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            await adapters.wrappSimulator.add(SimulatedFault(operation: "external_login", status: 429, retryAfter: 7))
            #expect(await adapters.wrapp.submit(Adapters.wrappTenant(), previousAttempts: 0).finding.retryAfter == 7)
        }
    }

    @Test func aSlowAnswerTimesOut() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness, timeout: 0.3)
            // The answer would come after 5 s; the call gives up at 0.3 s. The bound sits far from both, so a loaded
            // machine does not decide the outcome.
            await adapters.wrappSimulator.add(SimulatedFault(operation: "embedded_check_user", status: 200, delayMilliseconds: 5000))
            let started = Date()
            guard case .unavailable(let reason, _) = await adapters.wrapp.check(Adapters.wrappTenant()).finding else {
                Issue.record("expected a timeout"); return
            }
            #expect(reason.contains("in time"))
            #expect(Date().timeIntervalSince(started) < 4, "gave up at its timeout, not when the provider answered")
        }
    }

    @Test("an unknown user means not created yet", arguments: WrappSimulator.UnknownUserStyle.allCases)
    func unknownUser(_ style: WrappSimulator.UnknownUserStyle) async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            await adapters.wrappSimulator.setUnknownUserStyle(style)
            #expect(await adapters.wrapp.check(Adapters.wrappTenant("never-seen")).finding.isWaiting)
        }
    }

    @Test func statusFollowsTheUserAndSubscription() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            let login = await adapters.wrapp.submit(Adapters.wrappTenant("cust-2"), previousAttempts: 0).finding.nextAction
            await adapters.wrappSimulator.completeOnboarding("cust-2")

            let noKey = await adapters.wrapp.check(Adapters.wrappTenant("cust-2")).finding
            #expect(noKey.nextAction == NextAction(type: .provideCredentials))
            let ready = await adapters.wrapp.check(Adapters.wrappTenant("cust-2", hasCredentials: true)).finding
            #expect(ready == .ready(providerStatus: "subscription_active"))

            // Not usable, reported as the fact it is: what that means (a lapse, or an onboarding to finish at a login
            // URL) is the state machine's, whatever state the tenant is in. The adapter is never told the state.
            await adapters.wrappSimulator.setSubscription("cust-2", active: false)
            let lapsed = await adapters.wrapp.check(Adapters.wrappTenant("cust-2", hasCredentials: true)).finding
            #expect(lapsed == .lapsed(providerStatus: "subscription_inactive"))
            #expect(login?.type == .redirectToURL)
        }
    }

    @Test func onlyGenuineAPIKeysPassLogin() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            _ = await adapters.wrapp.submit(Adapters.wrappTenant("cust-3"), previousAttempts: 0)
            await adapters.wrappSimulator.completeOnboarding("cust-3")
            let user = try #require(await adapters.wrappSimulator.user("cust-3"))
            let tenant = Adapters.wrappTenant("cust-3")
            #expect(await adapters.wrapp.verify(.wrapp(wrappUserID: user.wrappUserID, apiKey: user.apiKey), for: tenant) == .valid)
            guard case .invalid = await adapters.wrapp.verify(.wrapp(wrappUserID: user.wrappUserID, apiKey: "forged"), for: tenant) else {
                Issue.record("a forged key must be invalid"); return
            }
            let genuine = ProviderCredentials.wrapp(wrappUserID: user.wrappUserID, apiKey: user.apiKey)
            await adapters.wrappSimulator.add(SimulatedFault(operation: "login", status: 502, style: .html, times: 2))
            guard case .unavailable = await adapters.wrapp.verify(genuine, for: tenant) else {
                Issue.record("a 502 proves nothing either way"); return
            }
        }
    }

    /// The proof takes three reads in one go; one transient failure among them is tried again at once, so a flaky
    /// Wrapp does not hold a genuine key back for another backoff round. A second one, or a 429, waits.
    @Test func verificationTriesOneTransientFailureAgainAtOnce() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            _ = await adapters.wrapp.submit(Adapters.wrappTenant("cust-4"), previousAttempts: 0)
            await adapters.wrappSimulator.completeOnboarding("cust-4")
            let user = try #require(await adapters.wrappSimulator.user("cust-4"))
            let tenant = Adapters.wrappTenant("cust-4")
            let genuine = ProviderCredentials.wrapp(wrappUserID: user.wrappUserID, apiKey: user.apiKey)
            let simulator = adapters.wrappSimulator
            func calls() async -> Int { await simulator.calls.values.reduce(0, +) }

            for operation in ["embedded_check_user", "login"] {
                await simulator.add(SimulatedFault(operation: operation, status: 500))
                let before = await calls()
                #expect(await adapters.wrapp.verify(genuine, for: tenant) == .valid, "one 500 on \(operation) is tried again")
                #expect(await calls() - before == 4, "three reads and one repeat")
            }

            await simulator.add(SimulatedFault(operation: "embedded_check_user", status: 503, style: .garbage))
            await simulator.add(SimulatedFault(operation: "login", status: 502, style: .html))
            let before = await calls()
            guard case .unavailable = await adapters.wrapp.verify(genuine, for: tenant) else {
                Issue.record("only one repeat per verification"); return
            }
            #expect(await calls() - before == 3)

            await simulator.add(SimulatedFault(operation: "login", status: 429))
            let beforeLimited = await calls()
            guard case .unavailable = await adapters.wrapp.verify(genuine, for: tenant) else {
                Issue.record("a 429 is not repeated at once"); return
            }
            #expect(await calls() - beforeLimited == 2)

            // A refusal is final at once, never repeated.
            let beforeForged = await calls()
            guard case .invalid = await adapters.wrapp.verify(.wrapp(wrappUserID: user.wrappUserID, apiKey: "forged"), for: tenant) else {
                Issue.record("a forged key must be invalid"); return
            }
            #expect(await calls() - beforeForged == 2)
        }
    }

    @Test func webhookPayloads() throws {
        let adapter = WrappAdapter(configuration: .init(baseURL: { "http://unused" }, partnerAPIKey: "k"), http: .live(timeout: 1))
        let full = adapter.interpretWebhook(Data(#"{"wrapp_user_id":"u1","partner_user_id":"p1","api_key":"k1","email":"x@y.gr"}"#.utf8))
        #expect(full == WebhookNotice(externalID: "p1", credentials: .wrapp(wrappUserID: "u1", apiKey: "k1")))
        let numericID = adapter.interpretWebhook(Data(#"{"wrapp_user_id":42,"partner_user_id":"p1","api_key":"k1"}"#.utf8))
        #expect(numericID?.credentials == .wrapp(wrappUserID: "42", apiKey: "k1"))
        #expect(adapter.interpretWebhook(Data(#"{"partner_user_id":"p1"}"#.utf8)) == WebhookNotice(externalID: "p1", credentials: nil))
        for malformed in [#"{"api_key":"k1"}"#, #"{"partner_user_id":"p1","api_key":"k1"}"#, "[1]", "not json", #"{"partner_user_id":""}"#] {
            #expect(adapter.interpretWebhook(Data(malformed.utf8)) == nil, "\(malformed)")
        }
    }
}
