import Foundation
import GatewayCore
import GatewayServer
import GatewayTesting
import Providers
import Testing

/// A restart on the same database loses nothing and resumes every piece of pending work.
@Suite struct RestartTests {
    @Test func pendingWorkSurvivesARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-restart-\(UUID().uuidString)")
        let clock = TestClock()
        struct Before: Sendable { var pending: String; var awaiting: String; var webhooked: String; var simulators: Gateway.Simulators }

        let before = try await SandboxHarness.run(directory: directory, clock: clock) { h in
            // 1. Wrapp is down: the tenant stays pending with a retry queued.
            await h.wrapp.add(SimulatedFault(operation: "external_login", status: 502, style: .html))
            let pending = try #require(try await h.createWrapp("cust-pending").string("id"))
            // 2. A MagniFinance client has not approved yet: a poll is queued.
            await h.magni.markExistingClient("500000000")
            let awaiting = try #require(try await h.createMagni("co-wait", taxID: "500000000").string("id"))
            // 3. A webhook arrived and was stored, but the process stops before it is processed.
            let webhooked = try #require(try await h.createWrapp("cust-hooked").string("id"))
            #expect(await h.wrapp.completeOnboarding("cust-hooked") == 200)
            return Before(pending: pending, awaiting: awaiting, webhooked: webhooked, simulators: try #require(h.gateway.simulators))
        }

        clock.advance(60)
        try await SandboxHarness.run(directory: directory, clock: clock, simulators: before.simulators) { h in
            await h.magni.approve("500000000")
            // The three pieces of work above, one per tenant: the webhooked tenant's own status check waits behind its
            // webhook (one conversation per tenant), whose answer then replaces it.
            #expect(await h.step() == 3)
            #expect(await h.step() == 0)
            #expect(try await h.tenant(before.pending).string("state") == "action_required")
            #expect(try await h.tenant(before.awaiting).string("state") == "active")
            #expect(try await h.tenant(before.webhooked).string("state") == "active")
            let events = try await h.call(.get, "/v1/events?limit=100").json["data"] as? [Any]
            #expect(events?.count == 10, "3 created and 2 transitions before the restart, 5 after it")
        }
    }
}
