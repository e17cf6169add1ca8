import Foundation
import GRDB
import GatewayCore
import Providers
import Testing

@testable import GatewayStorage

/// Retention: what is pruned, what is kept, and that each call stays within its batch.
@Suite struct PruningTests {
    let store: SQLiteStore
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    var old: Double { now.timeIntervalSince1970 - 100 * 86_400 }
    var recent: Double { now.timeIntervalSince1970 - 86_400 }
    var cutoff: Date { now.addingTimeInterval(-90 * 86_400) }

    init() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-prune-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try SQLiteStore(
            path: directory.appendingPathComponent("gateway.sqlite").path, box: SecretBox(keys: [Data(repeating: 7, count: 32)]),
            migrations: try Migrations(folder: Migrations.locate(environment: [:]))
        )
        try await store.migrate()
        let old = self.old, recent = self.recent
        try await store.pool.write { db in
            try db.execute(sql: """
                INSERT INTO tenants (id, provider, external_id, state, profile, metadata, created_at, updated_at, state_changed_at)
                VALUES ('ten_1', 'wrapp', 'ext-1', 'active', '{}', '{}', 0, 0, 0)
                """)
            // Deliveries: finished long ago (delivered, failed), still pending although old, finished recently.
            let deliveries: [(String, Double, Double?)] = [
                ("delivered", old, old), ("failed", old, old), ("delivered", old, old), ("pending", old, nil), ("delivered", recent, recent),
            ]
            for (index, (status, created, finished)) in deliveries.enumerated() {
                try db.execute(
                    sql: "INSERT INTO tenant_events (id, tenant_id, type, source, created_at, tenant) VALUES (?, 'ten_1', 'tenant.created', 'api', ?, '{}')",
                    arguments: ["evt_\(index)", created]
                )
                try db.execute(
                    sql: "INSERT INTO deliveries (id, event_seq, tenant_id, status, created_at, finished_at) VALUES (?, ?, 'ten_1', ?, ?, ?)",
                    arguments: ["del_\(index)", db.lastInsertedRowID, status, created, finished]
                )
                try db.execute(
                    sql: "INSERT INTO delivery_attempts (delivery_id, at, status_code, duration_ms) VALUES (?, ?, 200, 5), (?, ?, 500, 5)",
                    arguments: ["del_\(index)", created, "del_\(index)", created]
                )
            }
            for at in [old, old, old, recent] {
                try db.execute(sql: "INSERT INTO audit_log (at, actor, action, tenant_id) VALUES (?, 'partner', 'credentials.read', 'ten_1')", arguments: [at])
            }
            // Webhooks: processed long ago, processed recently, and one never processed, however old (its job waits on it).
            let processedAt: [Double?] = [old, old, old, recent, nil]
            for (index, processed) in processedAt.enumerated() {
                try db.execute(
                    sql: "INSERT INTO webhook_inbox (tenant_id, payload_hash, payload_sealed, received_at, processed_at) VALUES ('ten_1', ?, '', ?, ?)",
                    arguments: [Data([UInt8(index)]), old, processed]
                )
            }
            try db.execute(sql: "INSERT INTO jobs (tenant_id, kind, inbox_id, run_at, created_at) VALUES ('ten_1', 'webhook', ?, ?, ?)", arguments: [db.lastInsertedRowID, old, old])
        }
    }

    func count(_ sql: String) async throws -> Int {
        try await store.pool.read { db in try Int.fetchOne(db, sql: sql) ?? 0 }
    }

    /// Calls `batch` until it answers less than `limit`, as the maintenance service does; returns every answer.
    func drain(limit: Int, _ batch: (Int) async throws -> Int) async throws -> [Int] {
        var answers: [Int] = []
        repeat { answers.append(try await batch(limit)) } while answers.last == limit
        return answers
    }

    @Test func finishedDeliveriesGoWithTheirAttemptsPendingOnesStay() async throws {
        #expect(try await drain(limit: 2) { try await store.pruneDeliveries(finishedBefore: cutoff, limit: $0) } == [2, 1])
        #expect(try await store.pool.read { try String.fetchAll($0, sql: "SELECT id FROM deliveries ORDER BY id") } == ["del_3", "del_4"])
        #expect(try await count("SELECT COUNT(*) FROM delivery_attempts") == 4, "attempts of pruned deliveries are gone")
        #expect(try await count("SELECT COUNT(*) FROM tenant_events") == 5, "the event history is kept")
        let readings = try await store.metricsReadings()
        #expect(readings.deliveries["pending"] == 1 && readings.deliveries["delivered"] == 1 && readings.deliveries["failed"] == 0)
    }

    @Test func oldAuditEntriesGo() async throws {
        #expect(try await drain(limit: 2) { try await store.pruneAuditEntries(before: cutoff, limit: $0) } == [2, 1])
        #expect(try await count("SELECT COUNT(*) FROM audit_log") == 1)
    }

    @Test func processedWebhooksGoUnprocessedOnesStay() async throws {
        #expect(try await drain(limit: 2) { try await store.pruneProcessedWebhooks(processedBefore: cutoff, limit: $0) } == [2, 1])
        #expect(try await count("SELECT COUNT(*) FROM webhook_inbox") == 2)
        #expect(try await count("SELECT COUNT(*) FROM webhook_inbox WHERE processed_at IS NULL") == 1)
        #expect(try await count("SELECT COUNT(*) FROM jobs") == 1, "the job of the unprocessed webhook is untouched")
    }

    @Test func idempotencyKeysGoByAge() async throws {
        let old = self.old, recent = self.recent
        try await store.pool.write { db in
            for (index, created) in [old, old, recent].enumerated() {
                try db.execute(
                    sql: "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ('k', ?, x'00', ?)", arguments: ["key-\(index)", created]
                )
            }
        }
        #expect(try await drain(limit: 1) { try await store.pruneIdempotencyKeys(createdBefore: cutoff, limit: $0) } == [1, 1, 0])
        #expect(try await count("SELECT COUNT(*) FROM idempotency_keys") == 1)
    }
}
