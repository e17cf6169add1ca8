import Foundation
import GatewayCore
import GatewayServer
import GatewayTesting
import Testing

/// `/metrics` reads counters the database keeps (never a COUNT over growing tables): they stay equal to a real
/// count through a tenant's life, and the scrape shows them.
@Suite struct MetricsCountersTests {
    /// Every sample of a scrape, by name and labels: `tenants{provider="wrapp",state="active"}` → 1.
    static func samples(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }

    /// The counters beside a real COUNT(*) (what `/admin/stats` runs), zero rows left out.
    static func expectCountsMatch(_ h: SandboxHarness, _ comment: Comment) async throws {
        let now = h.clock.now()
        let readings = try await h.store.metricsReadings()
        let stats = try await h.store.operationsStats(now: now, stuckAfter: 86_400)
        let deliveries = try await h.store.deliveryStats(now: now)
        let tenants = readings.tenants.mapValues { $0.filter { $0.value != 0 } }.filter { !$0.value.isEmpty }
        #expect(tenants == stats.tenants, comment)
        #expect(readings.queuedWork.filter { $0.value != 0 } == stats.queuedWork, comment)
        #expect(readings.deliveries["pending", default: 0] == deliveries.pending, comment)
        #expect(readings.deliveries["delivered", default: 0] == deliveries.delivered, comment)
        #expect(readings.deliveries["failed", default: 0] == deliveries.failed, comment)
    }

    @Test func countersFollowCreatesStateChangesOffboardingAndDeliveries() async throws {
        try await EventDeliveryFlowTests.run(.sqlite) { h, receiver in
            let dispatcher = try #require(h.gateway.deliveries)
            let first = try #require(try await h.createWrapp("c1").string("id"))
            let second = try #require(try await h.createWrapp("c2").string("id"))
            _ = try await h.createMagni("co-1", taxID: "513495886")
            await h.magni.markExistingClient("500000000")
            _ = try await h.createMagni("co-2", taxID: "500000000")
            try await Self.expectCountsMatch(h, "after creates")

            await h.wrapp.completeOnboarding("c1")
            await h.step()
            #expect(try await h.tenant(first).string("state") == "active")
            try await Self.expectCountsMatch(h, "after a webhook")

            #expect(await dispatcher.runOnce() > 0)
            try await Self.expectCountsMatch(h, "after deliveries")

            await receiver.answer(500)
            #expect(try await h.call(.delete, "/v1/tenants/\(second)").status == 200)
            #expect(await dispatcher.runOnce() == 1)
            try await Self.expectCountsMatch(h, "after offboarding and a failed attempt")

            h.clock.advance(10)
            let scraped = Self.samples(try await h.call(.get, "/metrics", key: nil).text)
            #expect(scraped[#"tenants{provider="wrapp",state="active"}"#] == 1)
            #expect(scraped[#"tenants{provider="wrapp",state="offboarded"}"#] == 1)
            #expect(scraped[#"tenants{provider="wrapp",state="action_required"}"#] == 0)
            #expect(scraped[#"tenants{provider="magnifinance",state="active"}"#] == 1)
            #expect(scraped[#"tenants{provider="magnifinance",state="action_required"}"#] == 1)
            #expect(scraped[#"tenants{provider="magnifinance",state="failed"}"#] == 0)
            #expect(scraped["event_deliveries_pending"] == 1, "the offboarding event, waiting for its retry")
            #expect(abs((scraped["event_deliveries_oldest_pending_seconds"] ?? 0) - 10) < 0.01)
            let stats = try await h.store.operationsStats(now: h.clock.now(), stuckAfter: 86_400)
            for kind in ["submit", "check", "webhook"] {
                #expect(scraped["work_queued{kind=\"\(kind)\"}"] == Double(stats.queuedWork[kind] ?? 0), "\(kind)")
            }
            #expect(abs((scraped["work_oldest_due_seconds"] ?? -1) - (stats.oldestDueSeconds ?? 0)) < 0.01)
            #expect(scraped["tenants_stuck"] == 0, "nobody has waited a day yet")

            // A day on, the MagniFinance client who never approved is stuck, as /admin/stats counts it.
            h.clock.advance(86_400)
            let later = Self.samples(try await h.call(.get, "/metrics", key: nil).text)
            let stuck = try await h.store.operationsStats(now: h.clock.now(), stuckAfter: 86_400).stuckCount
            #expect(stuck == 1)
            #expect(later["tenants_stuck"] == Double(stuck))
        }
    }
}
