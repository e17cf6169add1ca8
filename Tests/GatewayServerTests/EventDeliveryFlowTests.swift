import Crypto
import Foundation
import GatewayCore
import GatewayServer
import GatewayTesting
import Testing

/// Outbound events from a running gateway to a real receiver on loopback.
@Suite struct EventDeliveryFlowTests {
    static let secret = "whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()

    static func run(_ database: TestDatabase, directory: URL? = nil, clock: TestClock = TestClock(), _ body: @Sendable (SandboxHarness, EventReceiver) async throws -> Void) async throws {
        try await EventReceiver.run { receiver, url in
            try await SandboxHarness.run(database: database, directory: directory, clock: clock, environment: ["GATEWAY_EVENTS_URL": url, "GATEWAY_EVENTS_SECRET": secret]) { h in
                try await body(h, receiver)
            }
        }
    }

    /// Verifies a delivery the way a receiver would, with the shared secret.
    static func verify(_ received: EventReceiver.Received) -> Bool {
        guard let timestamp = received.headers["webhook-timestamp"], let signature = received.headers["webhook-signature"] else { return false }
        let key = SymmetricKey(data: Data(base64Encoded: String(secret.dropFirst(6)))!)
        var content = Data("\(received.webhookID).\(timestamp).".utf8)
        content.append(received.body)
        let expected = "v1," + Data(HMAC<SHA256>.authenticationCode(for: content, using: key)).base64EncodedString()
        return signature.split(separator: " ").contains { String($0) == expected }
    }

    @Test(arguments: TestDatabase.all) func everyEventReachesTheReceiverSignedAndInOrder(_ database: TestDatabase) async throws {
        try await Self.run(database) { h, receiver in
            let id = try #require(try await h.createWrapp("c1").string("id"))
            await h.wrapp.completeOnboarding("c1")
            await h.step()
            let dispatcher = try #require(h.gateway.deliveries)
            #expect(await dispatcher.runOnce() == 4)
            let received = await receiver.received
            #expect(received.map { $0.json["type"] as? String } == [
                "tenant.created", "tenant.state_changed", "tenant.state_changed", "tenant.credentials_available",
            ])
            #expect(received.allSatisfy(Self.verify))
            let apiKey = try #require(await h.wrapp.user("c1")?.apiKey)
            #expect(received.allSatisfy { !String(decoding: $0.body, as: UTF8.self).contains(apiKey) }, "events never hold credentials")
            let feed = try await h.call(.get, "/v1/tenants/\(id)/events").json["data"] as? [[String: Any]] ?? []
            #expect(received.map(\.webhookID) == feed.compactMap { $0["id"] as? String }, "webhook-id is the event id")
            #expect(await dispatcher.runOnce() == 0, "nothing is sent twice")
        }
    }

    @Test(arguments: TestDatabase.all) func aFailingReceiverGetsTheEventLaterWithTheSameID(_ database: TestDatabase) async throws {
        try await Self.run(database) { h, receiver in
            let dispatcher = try #require(h.gateway.deliveries)
            let id = try #require(try await h.createMagni("co-1", taxID: "513495886").string("id"))
            #expect(await dispatcher.runOnce() == 3)
            await receiver.answer(500, 503)
            #expect(try await h.call(.delete, "/v1/tenants/\(id)").status == 200)
            #expect(await dispatcher.runOnce() == 1)
            h.clock.advance(6)
            #expect(await dispatcher.runOnce() == 1)
            h.clock.advance(6)
            #expect(await dispatcher.runOnce() == 0, "the second failure waits about 5 minutes")
            h.clock.advance(330)
            #expect(await dispatcher.runOnce() == 1)
            let received = await receiver.received
            let offboarded = received.filter { $0.json["type"] as? String == "tenant.offboarded" }
            #expect(offboarded.count == 3 && Set(offboarded.map(\.webhookID)).count == 1, "the same webhook-id on every attempt")
            #expect(offboarded.allSatisfy(Self.verify))
            let admin = h.gateway.config.adminToken
            let listed = try await h.call(.get, "/admin/deliveries?tenant_id=\(id)", key: admin).json["data"] as? [[String: Any]] ?? []
            let retried = try #require(listed.first { $0["event_type"] as? String == "tenant.offboarded" })
            let attempts = retried["attempts"] as? [[String: Any]] ?? []
            #expect(attempts.map { $0["status_code"] as? Int } == [500, 503, 200])
            #expect(attempts.allSatisfy { $0["duration_ms"] is Double })
            let stats = try await h.call(.get, "/admin/events-endpoint", key: admin)
            #expect(stats["pending"] as? Int == 0 && stats["delivered"] as? Int == 4)
        }
    }

    @Test(arguments: TestDatabase.all) func goneDisablesTheEndpointUntilAnOperatorEnablesIt(_ database: TestDatabase) async throws {
        try await Self.run(database) { h, receiver in
            let dispatcher = try #require(h.gateway.deliveries)
            await receiver.answer(410)
            _ = try await h.createMagni("co-1", taxID: "513495886")
            await dispatcher.runOnce()
            #expect(await receiver.received.count == 1)
            h.clock.advance(3600)
            #expect(await dispatcher.runOnce() == 0, "paused")
            let admin = h.gateway.config.adminToken
            let state = try await h.call(.get, "/admin/events-endpoint", key: admin)
            #expect(state["enabled"] as? Bool == false && state["pending"] as? Int == 3)
            let enabled = try await h.call(.post, "/admin/events-endpoint/enable", key: admin)
            #expect(enabled["enabled"] as? Bool == true)
            h.clock.advance(-3599)
            #expect(await dispatcher.runOnce() == 3, "the events held back by the 410 went back to the queue at once, not after their lease")
            #expect(await receiver.received.count == 4)
        }
    }

    @Test(arguments: TestDatabase.all) func aDeliveryInterruptedByACrashIsSentAfterTheRestart(_ database: TestDatabase) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-events-\(UUID().uuidString)")
        let clock = TestClock()
        try await EventReceiver.run { receiver, url in
            let environment = ["GATEWAY_EVENTS_URL": url, "GATEWAY_EVENTS_SECRET": Self.secret]
            try await SandboxHarness.run(database: database, directory: directory, clock: clock, environment: environment) { h in
                _ = try await h.createMagni("co-1", taxID: "513495886")
                // A worker claims the events and dies before sending them.
                let claimed = try await h.store.claimDueDeliveries(now: clock.now(), limit: 10, leaseUntil: clock.now().addingTimeInterval(60))
                #expect(claimed.count == 3)
            }
            clock.advance(61)
            try await SandboxHarness.run(database: database, directory: directory, clock: clock, environment: environment) { h in
                #expect(await h.gateway.deliveries?.runOnce() == 3)
            }
            #expect(await receiver.received.count == 3)
        }
    }

    @Test(arguments: TestDatabase.all) func failedDeliveriesCanBeSentAgain(_ database: TestDatabase) async throws {
        try await Self.run(database) { h, receiver in
            let dispatcher = try #require(h.gateway.deliveries)
            await receiver.answer(500, 500, 500, 500, 500, 500, 500, 500)
            _ = try await h.createWrapp("c1")
            await dispatcher.runOnce(limit: 1)
            for _ in 0..<7 {
                h.clock.advance(40_000)
                await dispatcher.runOnce(limit: 1)
            }
            let admin = h.gateway.config.adminToken
            let failed = try await h.call(.get, "/admin/deliveries?status=failed", key: admin).json["data"] as? [[String: Any]] ?? []
            #expect(failed.count == 1)
            #expect((failed.first?["attempts"] as? [Any])?.count == 8)
            let id = try #require(failed.first?["id"] as? String)
            let again = try await h.call(.post, "/admin/deliveries/\(id)/redeliver", key: admin)
            #expect(again.status == 202 && again["status"] as? String == "pending")
            #expect(try await h.call(.post, "/admin/deliveries/\(id)/redeliver", key: admin).status == 409)
            await dispatcher.runOnce()
            let delivered = try await h.call(.get, "/admin/deliveries/\(id)", key: admin)
            #expect(delivered["status"] as? String == "delivered")
            for bad in ["yesterday", "2024-01-01T12:99:00Z", "2024-02-30T00:00:00Z", "2024-01-01"] {
                #expect(try await h.call(.post, "/admin/deliveries/redeliver-failed", key: admin, json: #"{"since":"\#(bad)"}"#).status == 422, "\(bad)")
            }
            #expect(try await h.call(.options, "/admin/deliveries/redeliver-failed", key: admin).headers[.allow] == "POST")
            let all = try await h.call(.post, "/admin/deliveries/redeliver-failed", key: admin, json: #"{"since":"2000-01-01T00:00:00Z"}"#)
            #expect(all["requeued"] as? Int == 0)
            let fractional = try await h.call(.post, "/admin/deliveries/redeliver-failed", key: admin, json: #"{"since":"2000-01-01T00:00:00.250+02:00"}"#)
            #expect(fractional.status == 202, "fractional seconds and offsets are RFC 3339 too")
        }
    }
}
