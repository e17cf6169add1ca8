import Foundation
import GatewayCore
import GatewayTesting
import HTTPTypes
import Providers
import Testing

/// Idempotency-Key: replay, reuse with another body, concurrent use, scoping and expiry.
@Suite struct IdempotencyTests {
    static let key = HTTPField.Name("Idempotency-Key")!
    static let replayed = HTTPField.Name("Idempotent-Replayed")!

    static func body(_ externalID: String, email: String = "maria@example.com") -> String {
        #"{"provider":"wrapp","external_id":"\#(externalID)","profile":{"email":"\#(email)","phone":"+302101234567"}}"#
    }

    @Test(arguments: TestDatabase.all) func theFirstResponseIsReplayed(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let first = try await h.call(.post, "/v1/tenants", json: Self.body("c1"), headers: [Self.key: "k-1"])
            #expect(first.status == 201)
            #expect(first.headers[Self.replayed] == nil)
            let again = try await h.call(.post, "/v1/tenants", json: Self.body("c1"), headers: [Self.key: "k-1"])
            #expect(again.status == 201, "the same status, not the natural key's 200")
            #expect(again.headers[Self.replayed] == "true")
            #expect(again.body == first.body)
            #expect(again.headers[.location] == first.headers[.location])
            #expect(await h.wrapp.calls["/external_login"] == 1, "one provider call")

            let reused = try await h.call(.post, "/v1/tenants", json: Self.body("c2"), headers: [Self.key: "k-1"])
            #expect(reused.status == 422)
            #expect(reused["code"] as? String == "idempotency_key_reused")
        }
    }

    @Test(arguments: TestDatabase.all) func refusalsAreReplayedToo(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let bad = #"{"provider":"wrapp","external_id":"c1","profile":{}}"#
            let first = try await h.call(.post, "/v1/tenants", json: bad, headers: [Self.key: "k-bad"])
            #expect(first.status == 422)
            let again = try await h.call(.post, "/v1/tenants", json: bad, headers: [Self.key: "k-bad"])
            #expect(again.status == 422 && again.headers[Self.replayed] == "true")
            #expect(again.headers[.contentType] == "application/problem+json")
        }
    }

    @Test(arguments: TestDatabase.all) func concurrentRequestsWithOneKeyMakeOneProviderCall(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            await h.wrapp.add(SimulatedFault(operation: "external_login", status: 200, style: .lateSuccess, delayMilliseconds: 400))
            async let a = h.callOnNewConnection(.post, "/v1/tenants", json: Self.body("c3"), headers: ["Idempotency-Key": "k-race"])
            try await Task.sleep(for: .milliseconds(100))
            async let b = h.callOnNewConnection(.post, "/v1/tenants", json: Self.body("c3"), headers: ["Idempotency-Key": "k-race"])
            let statuses = try await [a.status, b.status].sorted()
            #expect(statuses == [201, 409])
            let conflict = try await [a, b].first { $0.status == 409 }
            #expect(conflict?["code"] as? String == "idempotency_key_in_use")
            #expect(await h.wrapp.calls["/external_login"] == 1)
        }
    }

    /// A request that runs longer than `abandonedAfter` (30 s) keeps its key: its claim is renewed every 5 s, so a
    /// retry is told the first still runs instead of taking the key over and calling the provider a second time.
    /// (The gateway's clock is moved on by hand; the renewal runs on real time, so this takes about 12 s.) The test
    /// waits for what it needs rather than for fixed times: the claim made, then renewed at the moved clock (read
    /// through the store with a renewal that changes nothing); the provider answers 12 s after the call, far past
    /// the first renewal at 5 s even on a loaded machine.
    @Test(arguments: TestDatabase.all) func aLongRequestKeepsItsKeyByRenewingItsClaim(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database, environment: ["GATEWAY_PROVIDER_TIMEOUT_SECONDS": "40", "GATEWAY_CREATE_WAIT_SECONDS": "40"]) { h in
            await h.wrapp.setAnswerDelay(milliseconds: 12_000)
            // The partner key of GATEWAY_API_KEY, as IdempotencyMiddleware scopes its keys.
            let scope = "api_key:GATEWAY_API_KEY"
            let claimedAt = h.clock.now()
            /// Whether the running claim's time is `at` (a renewal from `at` to `at` is true exactly then, and writes nothing).
            @Sendable func claimed(at: Date) async throws -> Bool {
                try await h.store.renewIdempotencyKey(scope: scope, key: "k-slow", claimedAt: at, now: at)
            }
            async let first = h.callOnNewConnection(.post, "/v1/tenants", json: Self.body("slow"), headers: ["Idempotency-Key": "k-slow"])
            let claimedFirst = try await h.eventually(10) { try await claimed(at: claimedAt) }
            #expect(claimedFirst, "the first request claimed its key")
            h.clock.advance(31)
            let advanced = h.clock.now()
            let renewed = try await h.eventually(20) { try await claimed(at: advanced) }
            #expect(renewed, "the running request renewed its claim at the gateway's time now")
            let retry = try await h.callOnNewConnection(.post, "/v1/tenants", json: Self.body("slow"), headers: ["Idempotency-Key": "k-slow"])
            #expect(retry.status == 409 && retry["code"] as? String == "idempotency_key_in_use",
                    "31 s old by the gateway's clock, but renewed: still the first request's (\(retry.status))")
            let answer = try await first
            #expect(answer.status == 201)
            #expect(await h.wrapp.calls["/external_login"] == 1, "one provider call")
            let replay = try await h.call(.post, "/v1/tenants", json: Self.body("slow"), headers: [Self.key: "k-slow"])
            #expect(replay.status == 201 && replay.headers[Self.replayed] == "true" && replay.string("id") == answer.string("id"))
        }
    }

    @Test(arguments: TestDatabase.all) func keysBelongToTheAPIKeyThatSentThem(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let other = try await h.makeKey(scopes: ["tenants:read", "tenants:write"])
            #expect(try await h.call(.post, "/v1/tenants", json: Self.body("c4"), headers: [Self.key: "shared"]).status == 201)
            let fromOther = try await h.call(.post, "/v1/tenants", key: other, json: Self.body("c5"), headers: [Self.key: "shared"])
            #expect(fromOther.status == 201, "another API key's same Idempotency-Key is another key")
        }
    }

    @Test(arguments: TestDatabase.all) func keysExpireAfterADay(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            #expect(try await h.call(.post, "/v1/tenants", json: Self.body("c6"), headers: [Self.key: "k-old"]).status == 201)
            h.clock.advance(25 * 3600)
            let later = try await h.call(.post, "/v1/tenants", json: Self.body("c7"), headers: [Self.key: "k-old"])
            #expect(later.status == 201 && later.headers[Self.replayed] == nil)
            #expect(try await h.store.purgeIdempotencyKeys(createdBefore: h.clock.now().addingTimeInterval(-24 * 3600)) == 0)
            h.clock.advance(25 * 3600)
            #expect(try await h.store.purgeIdempotencyKeys(createdBefore: h.clock.now().addingTimeInterval(-24 * 3600)) == 1)
        }
    }

    @Test(arguments: TestDatabase.all) func aMalformedKeyIsRefused(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let long = try await h.call(.post, "/v1/tenants", json: Self.body("c8"), headers: [Self.key: String(repeating: "k", count: 256)])
            #expect(long.status == 422)
            #expect((long["errors"] as? [[String: Any]])?.first?["field"] as? String == "Idempotency-Key")
        }
    }
}

extension SandboxHarness {
    /// A partner key made through the admin API.
    func makeKey(scopes: [String], name: String = "test") async throws -> String {
        let scopesJSON = scopes.map { "\"\($0)\"" }.joined(separator: ",")
        let made = try await call(.post, "/admin/api-keys", key: gateway.config.adminToken, json: #"{"name":"\#(name)","scopes":[\#(scopesJSON)]}"#)
        #expect(made.status == 201)
        return try #require(made["key"] as? String)
    }
}
