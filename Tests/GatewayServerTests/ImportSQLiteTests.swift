import Foundation
import GatewayCore
import GatewayServer
import GatewayStorage
import GatewayStoragePostgres
import GatewayTesting
import HTTPTypes
import Providers
import Testing

/// `gateway import-sqlite`: a single gateway's SQLite data moves to PostgreSQL and the gateway on PostgreSQL carries
/// on where it stopped: the same tenants, credentials, history and feed positions, keys, kept Idempotency-Key answers
/// and pending work; new rows come after the imported ones.
@Suite struct ImportSQLiteTests {
    struct Before: Sendable {
        var wrapp: String
        var magni: String
        var waiting: String
        var credentials: [String: Data]
        var feed: [String]
        var partnerKey: String
        var simulators: Gateway.Simulators
    }

    @Test(.enabled(if: TestDatabase.all.contains(.postgres), "needs GATEWAY_TEST_POSTGRES_URL (CI always sets it)"))
    func aSQLiteDeploymentMovesToPostgreSQLWithNothingLost() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-import-\(UUID().uuidString)")
        let clock = TestClock()
        let before = try await SandboxHarness.run(database: .sqlite, directory: directory, clock: clock) { h in
            let wrapp = try #require(try await h.call(.post, "/v1/tenants", json: IdempotencyTests.body("imp-w"), headers: [IdempotencyTests.key: "k-import"]).string("id"))
            #expect(await h.wrapp.completeOnboarding("imp-w") == 200)
            await h.step()
            let magni = try #require(try await h.createMagni("imp-m", taxID: "513495886").string("id"))
            await h.magni.markExistingClient("500000000")
            let waiting = try #require(try await h.createMagni("imp-c", taxID: "500000000").string("id"))
            var credentials: [String: Data] = [:]
            for id in [wrapp, magni] {
                #expect(try await h.tenant(id).string("state") == "active")
                let answer = try await h.call(.get, "/v1/tenants/\(id)/credentials")
                #expect(answer.status == 200)
                credentials[id] = answer.body
            }
            let feed = (try await h.call(.get, "/v1/events?limit=100").json["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(feed.count >= 6)
            return Before(
                wrapp: wrapp, magni: magni, waiting: waiting, credentials: credentials, feed: feed,
                partnerKey: try await h.makeKey(scopes: ["tenants:read"], name: "imported"), simulators: try #require(h.gateway.simulators)
            )
        }

        // The SQLite gateway has stopped; its file is at rest. The same data directory (and so the same sandbox
        // secrets: encryption key, partner key, admin token) with GATEWAY_DATABASE_URL set: a new schema.
        var environment = ["GATEWAY_DATA_DIR": directory.path, "GATEWAY_PORT": "0"]
        environment.merge(try SandboxHarness.postgresEnvironment(directory: directory)) { $1 }
        let config = try Gateway.prepare(GatewayConfig.load(environment: environment, sandbox: true))
        let sqlite = directory.appendingPathComponent("gateway.sqlite").path

        var wrongKey = config
        wrongKey.encryptionKeys = [Data(repeating: 7, count: 32)]
        await #expect(throws: SQLiteTableSource.Refusal.self, "a key that does not open the file's secrets is refused before anything is copied") {
            try await Gateway.importSQLite(wrongKey, from: sqlite)
        }
        // Batches of two rows: every table is read and written in several pieces.
        let copied = try await Gateway.importSQLite(config, from: sqlite, batchSize: 2)
        #expect(copied["tenants"] == 3 && copied["tenant_credentials"] == 2 && copied["tenant_events"] == before.feed.count, "\(copied)")
        #expect(copied["api_keys"] == 1 && (copied["idempotency_keys"] ?? 0) >= 1 && copied["gateway_secrets"] == 1, "\(copied)")
        await #expect(throws: PostgresStore.ImportRefusal.self, "a second import into the same schema is refused") {
            try await Gateway.importSQLite(config, from: sqlite)
        }

        try await SandboxHarness.run(database: .postgres, directory: directory, clock: clock, simulators: before.simulators) { h in
            for (id, body) in before.credentials {
                #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials").body == body, "credentials open with the same key")
            }
            let feed = (try await h.call(.get, "/v1/events?limit=100").json["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(feed == before.feed, "the same events in the same order")
            let replay = try await h.call(.post, "/v1/tenants", json: IdempotencyTests.body("imp-w"), headers: [IdempotencyTests.key: "k-import"])
            #expect(replay.status == 201 && replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true" && replay.string("id") == before.wrapp)
            #expect(try await h.call(.get, "/v1/tenants/\(before.magni)", key: before.partnerKey).status == 200, "partner keys made on SQLite work")

            // The poll queued on SQLite runs here and finishes the onboarding.
            await h.magni.approve("500000000")
            clock.advance(3600)
            #expect(await h.step() >= 1)
            #expect(try await h.tenant(before.waiting).string("state") == "active")
            // New rows come after the imported ones: the feed goes on from its last imported event.
            let last = try #require(before.feed.last)
            let next = try await h.call(.get, "/v1/events?after=\(last)&limit=100").json["data"] as? [[String: Any]] ?? []
            #expect(next.contains { ($0["type"] as? String) == "tenant.credentials_available" }, "\(next.count) events after the import")
            let readings = try await h.store.metricsReadings()
            #expect(readings.tenants["magnifinance"]?["active"] == 2 && readings.tenants["wrapp"]?["active"] == 1, "the counters count what was imported")
        }
    }
}
