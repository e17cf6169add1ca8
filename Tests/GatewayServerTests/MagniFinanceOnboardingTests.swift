import Foundation
import GatewayCore
import GatewayTesting
import Testing

/// MagniFinance end to end: AddPartner, then polling GetPartnerAccessTokens until access is granted.
@Suite struct MagniFinanceOnboardingTests {
    @Test(arguments: TestDatabase.all) func aNewCompanyIsActiveAtOnce(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let created = try await h.createMagni("co-1", taxID: "513495886")
            #expect(created.status == 201)
            #expect(created.string("state") == "active")
            #expect(created.string("provider_status") == "access_granted")
            let id = try #require(created.string("id"))
            let credentials = try await h.call(.get, "/v1/tenants/\(id)/credentials")
            let tokens = try #require(credentials["access_tokens"] as? [[String: Any]])
            #expect(tokens.count == 1 && (tokens[0]["token"] as? String)?.hasPrefix("sandbox-token-") == true)
            #expect(tokens[0]["description"] as? String == "Token 1")
            // Nothing left but the daily credential check (a company can withdraw the partnership).
            let queued = try await h.store.queued(tenantID: id)
            #expect(queued.count == 1 && queued[0].kind == .check)
            #expect(queued.first.map { $0.runAt.timeIntervalSince(h.clock.now()) > 0.7 * 86_400 } == true)
        }
    }

    @Test(arguments: TestDatabase.all) func anExistingClientWaitsForApprovalThenBecomesActive(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            await h.magni.markExistingClient("500000000")
            let created = try await h.createMagni("co-2", taxID: "500000000")
            #expect(created.status == 201)
            #expect(created.string("state") == "action_required")
            #expect(created.string("next_action.type") == "await_approval")
            let id = try #require(created.string("id"))

            #expect(await h.advance(20) == 0, "the first poll comes about 30 s later")
            #expect(await h.advance(20) == 1)
            #expect(try await h.tenant(id).string("state") == "action_required")
            let next = try #require(try await h.store.queued(tenantID: id).first)
            #expect(next.runAt.timeIntervalSince(h.clock.now()) > 45, "polling backs off")

            await h.magni.approve("500000000")
            let refreshed = try await h.call(.post, "/v1/tenants/\(id)/refresh")
            #expect(refreshed.status == 200)
            #expect(refreshed.string("state") == "active")
            #expect(transitions(try await h.events(id)).suffix(2) == [
                "tenant.state_changed:action_required>active@api", "tenant.credentials_available:->active@api",
            ])
            #expect(await h.magni.addPartnerCalls["500000000"] == 1)
        }
    }

    @Test(arguments: TestDatabase.all) func aRefusalByMagniFinanceFailsTheTenantWithOurFieldNames(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            await h.magni.add(SimulatedFaultFactory.taxIDRefused)
            let created = try await h.createMagni("co-3", taxID: "513495886")
            #expect(created.status == 201)
            #expect(created.string("state") == "failed")
            #expect(created.string("last_error.code") == "provider_rejected")
            let errors = try #require(created.value("last_error.errors") as? [[String: Any]])
            #expect(errors.first?["field"] as? String == "profile")
            let id = try #require(created.string("id"))
            let retried = try await h.call(.post, "/v1/tenants/\(id)/retry")
            #expect(retried.status == 200)
            #expect(retried.string("state") == "active")
            #expect(try await h.call(.post, "/v1/tenants/\(id)/retry").status == 409, "only a failed tenant is retried")
        }
    }
}

import Providers

enum SimulatedFaultFactory {
    /// MagniFinance refuses AddPartner with a validation error envelope (HTTP 400).
    static let taxIDRefused = SimulatedFault(operation: "partner", status: 400, style: .envelopeError)
}
