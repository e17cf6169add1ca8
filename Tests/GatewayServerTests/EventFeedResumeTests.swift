import Foundation
import GatewayTesting
import HTTPTypes
import Testing

/// `GET /v1/events?after=`: a consumer resumes from the id of the last event it processed, as from a cursor.
@Suite struct EventFeedResumeTests {
    func ids(_ result: HTTPResult) -> [String] {
        (result["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    @Test func aConsumerResumesAfterTheLastEventItProcessed() async throws {
        try await SandboxHarness.run { h in
            _ = try await h.createWrapp("cust-1")
            _ = try await h.createMagni("co-1", taxID: "513495886")
            _ = try await h.createWrapp("cust-2")
            let all = ids(try await h.call(.get, "/v1/events?limit=100"))
            try #require(all.count >= 5 && all.allSatisfy { $0.hasPrefix("evt_") })

            for index in [0, 2, all.count - 2] {
                let resumed = try await h.call(.get, "/v1/events?limit=100&after=\(all[index])")
                #expect(resumed.status == 200)
                #expect(ids(resumed) == Array(all[(index + 1)...]), "after \(all[index])")
            }
            let atTheEnd = try await h.call(.get, "/v1/events?after=\(try #require(all.last))")
            #expect(atTheEnd.status == 200 && ids(atTheEnd).isEmpty && atTheEnd.value("next_cursor") is NSNull)

            // Resuming by id and paging on by cursor meet without a gap or a repeat.
            let first = try await h.call(.get, "/v1/events?limit=2&after=\(all[0])")
            #expect(ids(first) == Array(all[1...2]))
            let cursor = try #require(first["next_cursor"] as? String)
            #expect(ids(try await h.call(.get, "/v1/events?limit=100&after=\(cursor)")) == Array(all[3...]))
        }
    }

    @Test func anUnknownEventIDIsAFieldError() async throws {
        try await SandboxHarness.run { h in
            _ = try await h.createWrapp("cust-1")
            let unknown = try await h.call(.get, "/v1/events?after=evt_01JDB3W9Z8Q6V4C2N7K5M3P1RX")
            #expect(unknown.status == 422)
            #expect(unknown.headers[.contentType] == "application/problem+json")
            #expect(unknown["code"] as? String == "validation_failed")
            let error = try #require((unknown["errors"] as? [[String: Any]])?.first)
            #expect(error["field"] as? String == "after" && error["code"] as? String == "unknown_event")

            let garbage = try await h.call(.get, "/v1/events?after=garbage")
            #expect(garbage.status == 422)
            let garbageError = try #require((garbage["errors"] as? [[String: Any]])?.first)
            #expect(garbageError["field"] as? String == "after", "the error names the parameter that was sent")
        }
    }
}
