import Foundation
import GatewayCore
import GatewayTesting
import HTTPTypes
import Logging
import Providers
import Testing
import Synchronization
@testable import GatewayServer

/// One request id through everything: every line a request causes carries its id, service-level lines included;
/// work the worker does later carries the id of the request that queued it; each request gets one access log line
/// with its route template (never a secret path), status, duration and client; problem bodies name the same id.
@Suite struct RequestIDLogTests {
    static let requestID = HTTPField.Name("X-Request-ID")!

    @Test(arguments: TestDatabase.all) func oneRequestIDFollowsACustomerFromTheCallToTheWorkItQueued(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            // Wrapp fails the first call: the create answers 202 and the worker makes the call later.
            await h.wrapp.add(SimulatedFault(operation: "external_login", status: 502, style: .html))
            let created = try await h.call(.post, "/v1/tenants", json: IdempotencyTests.body("rid-1"), headers: [Self.requestID: "req-create-1"])
            #expect(created.status == 202)
            let tenantID = try #require(created.string("id"))

            let beforeRetry = h.logs.entries.count
            await h.advance(10)
            #expect(try await h.tenant(tenantID).string("state") == "action_required")
            let retryLines = h.logs.entries[beforeRetry...].filter { $0.metadata["tenant.id"] == tenantID }
            #expect(!retryLines.isEmpty, "the worker logged the retry")
            #expect(retryLines.allSatisfy { $0.metadata["request.id"] == "req-create-1" },
                    "the worker's lines carry the id of the request that queued the work: \(retryLines.map { "\($0.message) \($0.metadata["request.id"] ?? "-")" })")

            // Wrapp's webhook is a request of its own; the work it queues carries its id.
            #expect(await h.wrapp.completeOnboarding("rid-1") == 200)
            let token = try await h.webhookPath("rid-1").split(separator: "/").last.map(String.init) ?? ""
            let hook = try #require(h.logs.entries.last { $0.message == "request" && $0.metadata["http.route"] == "/webhooks/wrapp/{token}" })
            #expect(!(hook.metadata["http.route"] ?? "").contains(token), "the access log never shows the webhook token")
            let hookID = try #require(hook.metadata["request.id"])
            let beforeWebhook = h.logs.entries.count
            await h.step()
            #expect(try await h.tenant(tenantID).string("state") == "active")
            let webhookLines = h.logs.entries[beforeWebhook...].filter { $0.metadata["tenant.id"] == tenantID }
            #expect(!webhookLines.isEmpty && webhookLines.allSatisfy { $0.metadata["request.id"] == hookID })

            _ = try await h.call(.get, "/v1/tenants/\(tenantID)", headers: [Self.requestID: "req-get-1"])
            let bad = try await h.call(.post, "/v1/tenants", json: #"{"provider":"wrapp"}"#, headers: [Self.requestID: "req-bad-1"])
            #expect(bad.status == 422 && bad["request_id"] as? String == "req-bad-1" && bad.headers[Self.requestID] == "req-bad-1")

            // One access line per request, at info, with the route template.
            for (id, method, status) in [("req-create-1", "POST", "202"), ("req-get-1", "GET", "200"), ("req-bad-1", "POST", "422")] {
                let lines = h.logs.entries.filter { $0.message == "request" && $0.metadata["request.id"] == id }
                #expect(lines.count == 1, "\(id): \(lines.count) access lines")
                guard let line = lines.first else { continue }
                #expect(line.level == .info && line.metadata["http.method"] == method && line.metadata["http.status"] == status)
                #expect(line.metadata["http.route"]?.contains("tenants") == true && line.metadata["http.route"]?.contains(tenantID) == false,
                        "a template, not the path: \(line.metadata["http.route"] ?? "-")")
                #expect(Double(line.metadata["duration_ms"] ?? "") != nil && line.metadata["client.ip"] == "127.0.0.1")
            }
            // Every line about a tenant was written for some request: none escapes without an id.
            let orphans = h.logs.entries.filter { $0.metadata["tenant.id"] != nil && ($0.metadata["request.id"] ?? "").isEmpty }
            #expect(orphans.isEmpty, "\(orphans.map(\.message))")
        }
    }

    /// Creates that run together: SQLite commits their writes in one batch, built in whichever task started it. Each
    /// retry the worker makes later must still carry its own create's id, not a neighbour's (nor none).
    @Test(arguments: TestDatabase.all) func concurrentCreatesKeepTheirOwnIDsInTheWorkTheyQueue(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            await h.wrapp.add(SimulatedFault(operation: "external_login", status: 502, style: .html, times: 8))
            let ids = try await withThrowingTaskGroup(of: (String, String?).self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let answer = try await h.callOnNewConnection(.post, "/v1/tenants", json: IdempotencyTests.body("many-\(index)"), headers: ["X-Request-ID": "req-many-\(index)"])
                        return ("req-many-\(index)", answer.string("id"))
                    }
                }
                var all: [String: String] = [:]
                for try await (requestID, tenantID) in group { all[try #require(tenantID)] = requestID }
                return all
            }
            #expect(ids.count == 8)
            let before = h.logs.entries.count
            await h.advance(10)
            for (tenantID, requestID) in ids {
                let lines = h.logs.entries[before...].filter { $0.metadata["tenant.id"] == tenantID }
                #expect(!lines.isEmpty && lines.allSatisfy { $0.metadata["request.id"] == requestID },
                        "\(tenantID): \(lines.map { $0.metadata["request.id"] ?? "-" }) for \(requestID)")
            }
        }
    }

    @Test func aRequestIDIsTakenOnlyWhenItIsPlain() async throws {
        try await SandboxHarness.run { h in
            for (sent, kept) in [("abc-123_X.y:z", true), ("has space", false), (String(repeating: "a", count: 129), false), ("é", false)] {
                let answer = try await h.call(.get, "/healthz", key: nil, headers: [Self.requestID: sent])
                #expect((answer.headers[Self.requestID] == sent) == kept, "\(sent) -> \(answer.headers[Self.requestID] ?? "-")")
            }
        }
    }

    @Test func unmatchedPathsAreLoggedWithTheirSecretsMasked() {
        let cases = [
            ("/webhooks/wrapp/s3cr3tTokenValue", "/webhooks/wrapp/***"),
            ("/webhooks/s3cr3tTokenValue", "/webhooks/***"),
            ("/gateway/WebHooks/wrapp/s3cr3t", "/gateway/webhooks/wrapp/***"),
            ("/%77ebhooks/wrapp/s3cr3t", "/webhooks/wrapp/***"),
            ("/onboard/s3cr3t/more", "/onboard/***"),
            ("/v1/nothing/here", "/v1/nothing/here"),
            ("/v1/%0Aforged%20line", "/v1/_"),
        ]
        for (path, logged) in cases {
            #expect(RequestScopeMiddleware.unmatched(path, providers: ["wrapp", "magnifinance"]) == logged, "\(path)")
        }
    }

    @Test func theJSONHandlerWritesTheRequestOfTheTaskThatLogs() async {
        let lines = Mutex<[String]>([])
        let logger = Logger(label: "t") { JSONLogHandler(label: $0, level: .info, write: { line in lines.withLock { $0.append(line) } }) }
        RequestScope.$requestID.withValue("req-json-1") { logger.info("inside") }
        logger.info("outside")
        let written = lines.withLock { $0 }.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:] }
        #expect(written.count == 2)
        #expect(written.first?["request.id"] as? String == "req-json-1")
        #expect(written.last?["request.id"] == nil)
    }
}
