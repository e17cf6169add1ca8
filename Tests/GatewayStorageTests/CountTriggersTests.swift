import Foundation
import GRDB
import GatewayCore
import Providers
import Testing

@testable import GatewayStorage

/// The counters `/metrics` reads (migration 0003): seeded from the rows already there, then kept equal to a real
/// COUNT(*) by triggers through every kind of write.
@Suite struct CountTriggersTests {
    let store: SQLiteStore
    let all: Migrations

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-counts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        all = try Migrations(folder: Migrations.locate(environment: [:]))
        store = try SQLiteStore(
            path: directory.appendingPathComponent("gateway.sqlite").path, box: SecretBox(keys: [Data(repeating: 7, count: 32)]),
            migrations: all
        )
    }

    func write(_ sql: String, _ arguments: StatementArguments = []) async throws {
        try await store.pool.write { db in try db.execute(sql: sql, arguments: arguments) }
    }

    func insertTenant(_ id: String, _ provider: String, _ state: String) async throws {
        try await write(
            """
            INSERT INTO tenants (id, provider, external_id, state, profile, metadata, created_at, updated_at, state_changed_at)
            VALUES (?, ?, ?, ?, '{}', '{}', 0, 0, 0)
            """,
            [id, provider, "ext-" + id, state]
        )
    }

    func insertEventAndDelivery(_ tenantID: String, _ id: String, status: String, createdAt: Double) async throws {
        try await store.pool.write { db in
            try db.execute(
                sql: "INSERT INTO tenant_events (id, tenant_id, type, source, created_at, tenant) VALUES (?, ?, 'tenant.created', 'api', ?, '{}')",
                arguments: [id, tenantID, createdAt]
            )
            try db.execute(
                sql: "INSERT INTO deliveries (id, event_seq, tenant_id, status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: ["del_" + id, db.lastInsertedRowID, tenantID, status, createdAt, createdAt]
            )
        }
    }

    /// The readings without zero rows, beside what COUNT(*) says.
    func expectCountsMatch(_ comment: Comment) async throws {
        let readings = try await store.metricsReadings()
        let counted = try await store.pool.read { db in
            var tenants: [String: [String: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT provider, state, COUNT(*) AS n FROM tenants GROUP BY provider, state") {
                tenants[row["provider"], default: [:]][row["state"]] = row["n"]
            }
            let jobs = try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT kind, COUNT(*) AS n FROM jobs GROUP BY kind").map {
                ($0["kind"] as String, $0["n"] as Int)
            })
            let deliveries = try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status").map {
                ($0["status"] as String, $0["n"] as Int)
            })
            return (tenants: tenants, jobs: jobs, deliveries: deliveries)
        }
        let tenants = readings.tenants.mapValues { $0.filter { $0.value != 0 } }.filter { !$0.value.isEmpty }
        #expect(tenants == counted.tenants, comment)
        #expect(readings.queuedWork.filter { $0.value != 0 } == counted.jobs, comment)
        #expect(readings.deliveries.filter { $0.value != 0 } == counted.deliveries, comment)
        #expect(readings.tenants.values.flatMap(\.values).allSatisfy { $0 >= 0 }, comment)
    }

    @Test func theCountersStartFromTheRowsAlreadyThere() async throws {
        // A database from before 0003, with data in it, then upgraded.
        try await Migrations(files: all.files.filter { $0.version < 3 }).apply(to: store.pool)
        try await insertTenant("ten_1", "wrapp", "active")
        try await insertTenant("ten_2", "wrapp", "active")
        try await insertTenant("ten_3", "magnifinance", "action_required")
        try await write("INSERT INTO jobs (tenant_id, kind, run_at, created_at) VALUES ('ten_3', 'check', 50, 0)")
        try await insertEventAndDelivery("ten_1", "evt_1", status: "delivered", createdAt: 10)
        try await insertEventAndDelivery("ten_2", "evt_2", status: "pending", createdAt: 20)
        try await store.migrate()

        let readings = try await store.metricsReadings()
        #expect(readings.tenants["wrapp"]?["active"] == 2 && readings.tenants["magnifinance"]?["action_required"] == 1)
        #expect(readings.queuedWork == ["check": 1])
        #expect(readings.deliveries == ["delivered": 1, "pending": 1])
        #expect(readings.earliestWorkAt == Date(timeIntervalSince1970: 50))
        #expect(readings.oldestPendingDeliveryAt == Date(timeIntervalSince1970: 20))
        try await expectCountsMatch("seeded")
    }

    @Test func triggersKeepTheCountersExact() async throws {
        try await store.migrate()
        try await expectCountsMatch("empty")
        for (index, provider) in ["wrapp", "wrapp", "magnifinance", "wrapp"].enumerated() {
            try await insertTenant("ten_\(index)", provider, "pending")
        }
        try await write("INSERT INTO jobs (tenant_id, kind, run_at, created_at) SELECT id, 'submit', 100, 0 FROM tenants")
        try await expectCountsMatch("created")

        // State changes, and writes that name state without changing it or do not name it at all (leases).
        try await write("UPDATE tenants SET state = 'action_required', updated_at = 1 WHERE id IN ('ten_0', 'ten_1')")
        try await write("UPDATE tenants SET state = 'action_required' WHERE id = 'ten_0'")
        try await write("UPDATE tenants SET updated_at = 2 WHERE id = 'ten_2'")
        try await write("UPDATE tenants SET state = 'active' WHERE id = 'ten_2'")
        // Work rescheduled the way the store does it: delete, then insert.
        try await write("DELETE FROM jobs WHERE tenant_id IN ('ten_0', 'ten_1', 'ten_2')")
        try await write("INSERT INTO jobs (tenant_id, kind, run_at, created_at) VALUES ('ten_0', 'check', 30, 0), ('ten_1', 'check', 40, 0)")
        try await expectCountsMatch("after state changes")

        // Offboarding: a tombstone, its work gone.
        try await write("UPDATE tenants SET state = 'offboarded' WHERE id = 'ten_1'")
        try await write("DELETE FROM jobs WHERE tenant_id = 'ten_1'")
        try await expectCountsMatch("after offboarding")

        // Deliveries: created pending, delivered, failed, queued again, pruned.
        try await insertEventAndDelivery("ten_0", "evt_a", status: "pending", createdAt: 5)
        try await insertEventAndDelivery("ten_0", "evt_b", status: "pending", createdAt: 6)
        try await insertEventAndDelivery("ten_2", "evt_c", status: "pending", createdAt: 7)
        try await write("UPDATE deliveries SET status = 'delivered', finished_at = 10 WHERE id = 'del_evt_a'")
        try await write("UPDATE deliveries SET status = 'failed', finished_at = 10 WHERE id = 'del_evt_b'")
        try await write("UPDATE deliveries SET attempts = attempts + 1 WHERE id = 'del_evt_c'")
        try await expectCountsMatch("after deliveries")
        #expect(try await store.metricsReadings().oldestPendingDeliveryAt == Date(timeIntervalSince1970: 7))
        try await write("UPDATE deliveries SET status = 'pending', finished_at = NULL WHERE id = 'del_evt_b'")
        try await write("DELETE FROM deliveries WHERE id = 'del_evt_a'")
        try await expectCountsMatch("after redelivery and pruning")

        // Rows removed by ON DELETE CASCADE count too: a deleted tenant takes its jobs, events and their deliveries.
        try await write("DELETE FROM tenants WHERE id = 'ten_0'")
        try await expectCountsMatch("after a cascade")
        let readings = try await store.metricsReadings()
        #expect(readings.earliestWorkAt == Date(timeIntervalSince1970: 100), "ten_3's submit is the only work left")
        #expect(readings.deliveries["pending"] == 1 && readings.deliveries["failed"] == 0)
    }
}
