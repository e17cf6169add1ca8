import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// Ledgerly through the whole HTTP API where the kit does not go, and the kit seen failing on Ledgerlys with defects.
@Suite("Ledgerly, the test-only provider")
struct LedgerlyTests {
    @Test("a customer whose webhook never came types the key in; it is checked against Ledgerly first")
    func typedCredentials() async throws {
        try await SandboxHarness.run(modules: TestProviders.modules) { h in
            let created = try await h.call(.post, "/v1/tenants", json: #"{"provider":"ledgerly","external_id":"lg-typed","profile":{"email":"lg@example.com"}}"#)
            #expect(created.status == 201 && created.string("state") == "action_required")
            #expect(created.string("next_action.type") == "redirect_to_url")
            let id = try #require(created.string("id"))
            let simulator = try #require(h.gateway.simulators?.first(LedgerlySimulator.self))
            let (signup, _) = try #require(await simulator.complete("lg-typed", sendsWebhook: false))

            let refreshed = try await h.call(.post, "/v1/tenants/\(id)/refresh")
            #expect(refreshed.string("state") == "action_required" && refreshed.string("next_action.type") == "provide_credentials")

            let unknown = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"account_id":"x","api_token":"y","wrapp_user_id":"1"}"#)
            #expect(unknown.status == 422 && unknown.string("code") == "validation_failed")
            let wrong = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"account_id":"\#(signup.accountID ?? "")","api_token":"lg-not-the-token"}"#)
            #expect(wrong.status == 422 && wrong.string("code") == "credentials_rejected")
            #expect(try await h.call(.get, "/v1/tenants/\(id)").value("credentials_available") as? Bool == false, "nothing kept")

            let right = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"provider":"ledgerly","account_id":"\#(signup.accountID ?? "")","api_token":"\#(signup.token ?? "")"}"#)
            #expect(right.status == 200 && right.string("state") == "active")
            let credentials = try await h.call(.get, "/v1/tenants/\(id)/credentials")
            #expect(credentials.json as NSDictionary == ["provider": "ledgerly", "account_id": signup.accountID ?? "", "api_token": signup.token ?? ""] as NSDictionary)
            #expect(!h.logs.text.contains(signup.token ?? "?"), "the token is never logged")
        }
    }

    @Test("the create check, the list filter, the admin provider list and the metrics know Ledgerly from the registry alone")
    func registryReachesEverySurface() async throws {
        try await SandboxHarness.run(modules: TestProviders.modules) { h in
            _ = try await h.call(.post, "/v1/tenants", json: #"{"provider":"ledgerly","external_id":"lg-list","profile":{"email":"lg@example.com"}}"#)
            #expect(try await h.call(.get, "/v1/tenants?provider=ledgerly").json["data"].map { ($0 as? [Any])?.count } == 1)
            let refused = try await h.call(.post, "/v1/tenants", json: #"{"provider":"nosuch","external_id":"x","profile":{}}"#)
            let registered = TestProviders.modules.map(\.kind.rawValue).sorted().joined(separator: ", ")
            #expect(refused.status == 422 && refused.text.contains("provider is one of: \(registered)."), "\(refused.text)")
            let admin = try await h.call(.get, "/admin/providers", key: h.gateway.config.adminToken)
            #expect(admin.text.contains("\"ledgerly\""))
            let metrics = try await h.call(.get, "/metrics", key: nil)
            #expect(metrics.text.contains("provider=\"ledgerly\""))
        }
    }

    @Test("the kit fails a Ledgerly that posts again after a lost outcome, or takes a 429 for a refusal")
    func kitCatchesDefects() async throws {
        for (flaw, expected) in [(LedgerlyAdapter.Flaw.noReconcile, "lost outcome"), (.throttleIsRefusal, "429")] {
            var flawed = ConformanceSubject.ledgerly
            flawed.module = LedgerlyModule(flaws: [flaw])
            let subject = flawed
            let modules = ProviderModules.shipped + [subject.module]
            try await SandboxHarness.run(modules: modules) { h in
                var failures = await ProviderConformance.faults(subject, in: h)
                failures += await ProviderConformance.lostOutcome(subject, in: h)
                #expect(failures.contains { $0.contains(expected) }, "\(flaw): \(failures)")
            }
        }
    }
}
