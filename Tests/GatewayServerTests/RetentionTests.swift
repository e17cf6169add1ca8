import Foundation
import GatewayCore
import GatewayTesting
import Testing

@testable import GatewayServer

/// Housekeeping: what outlived the retention period goes, in batches; what is recent, and every tenant's history, stays.
@Suite struct RetentionTests {
    func deliveries(_ h: SandboxHarness, _ tenantID: String) async throws -> [[String: Any]] {
        try await h.call(.get, "/admin/deliveries?tenant_id=\(tenantID)&limit=100", key: h.gateway.config.adminToken).json["data"] as? [[String: Any]] ?? []
    }

    func audit(_ h: SandboxHarness, _ tenantID: String) async throws -> [[String: Any]] {
        try await h.call(.get, "/admin/audit?tenant_id=\(tenantID)&limit=100", key: h.gateway.config.adminToken).json["data"] as? [[String: Any]] ?? []
    }

    @Test func maintenancePrunesWhatOutlivedRetentionAndKeepsTheRest() async throws {
        try await EventDeliveryFlowTests.run(.sqlite) { h, _ in
            let dispatcher = try #require(h.gateway.deliveries)
            // Two days ago: a Wrapp customer onboarded (its webhook processed), its credentials read, its events delivered.
            let old = try #require(try await h.createWrapp("c-old").string("id"))
            await h.wrapp.completeOnboarding("c-old")
            await h.step()
            #expect(try await h.call(.get, "/v1/tenants/\(old)/credentials").status == 200)
            _ = await dispatcher.runOnce()
            let oldDeliveries = try await deliveries(h, old).count
            let oldAudit = try await audit(h, old).count
            #expect(oldDeliveries > 0 && oldAudit > 0)

            h.clock.advance(2 * 86_400)
            let recent = try #require(try await h.createMagni("co-1", taxID: "513495886").string("id"))
            _ = await dispatcher.runOnce()
            let recentDeliveries = try await deliveries(h, recent).count

            let maintenance = MaintenanceService(
                store: h.store, retention: RetentionSettings(days: 1), clock: h.clock, logger: h.logs.logger(), batchSize: 2
            )
            let pruned = await maintenance.runOnce()
            #expect(pruned["deliveries"] == oldDeliveries, "in batches of 2, to the end")
            #expect((pruned["audit_entries"] ?? 0) >= oldAudit)
            #expect((pruned["webhooks"] ?? 0) >= 1, "the processed webhook")
            #expect(try await deliveries(h, old).isEmpty)
            #expect(try await audit(h, old).isEmpty)
            #expect(try await deliveries(h, recent).count == recentDeliveries, "recent deliveries are kept")
            #expect(try await h.events(old).count >= 3, "a tenant's history is not pruned")
            #expect(try await h.tenant(old).string("state") == "active")
            #expect(h.logs.text.contains("old records pruned"))
            #expect(await maintenance.runOnce().values.allSatisfy { $0 == 0 }, "nothing left to prune")
        }
    }
}
