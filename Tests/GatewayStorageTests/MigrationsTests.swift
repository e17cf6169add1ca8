import Foundation
import GRDB
import Testing

@testable import GatewayStorage

@Suite struct MigrationsTests {
    func temporaryDatabase() throws -> DatabasePool {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gw-mig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return try DatabasePool(path: dir.appendingPathComponent("db.sqlite").path)
    }

    @Test func theShippedMigrationsApplyOnceAndAreFoundFromTheSourceTree() async throws {
        let migrations = try Migrations(folder: Migrations.locate(environment: [:]))
        #expect(migrations.files.first?.version == 1)
        let pool = try temporaryDatabase()
        #expect(try await migrations.apply(to: pool) == migrations.files.map(\.version))
        #expect(try await migrations.apply(to: pool).isEmpty)
        #expect(try await migrations.isApplied(in: pool))
        let tables = try await pool.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        for table in ["tenants", "tenant_events", "jobs", "webhook_inbox", "audit_log", "tenant_credentials"] {
            #expect(tables.contains(table))
        }
    }

    @Test func aMigrationEditedAfterItWasAppliedIsRefused() async throws {
        let pool = try temporaryDatabase()
        try await Migrations(files: [.init(version: 1, name: "a", sql: "CREATE TABLE a (x)")]).apply(to: pool)
        let edited = Migrations(files: [.init(version: 1, name: "a", sql: "CREATE TABLE a (x, y)")])
        await #expect(throws: Migrations.Failure.self) { try await edited.apply(to: pool) }
        #expect(try await !edited.isApplied(in: pool))
    }

    @Test func aFailingMigrationLeavesNothingHalfDone() async throws {
        let pool = try temporaryDatabase()
        let broken = Migrations(files: [
            .init(version: 1, name: "ok", sql: "CREATE TABLE a (x)"),
            .init(version: 2, name: "broken", sql: "CREATE TABLE b (x); INSERT INTO nope VALUES (1)"),
        ])
        await #expect(throws: (any Error).self) { try await broken.apply(to: pool) }
        let tables = try await pool.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        #expect(tables.contains("a") && !tables.contains("b"))
        let versions = try await pool.read { try Int.fetchAll($0, sql: "SELECT version FROM schema_migrations") }
        #expect(versions == [1])
    }

    /// Migration 0009: active tenants that had no queued work (their provider's readiness could not lapse) get a first
    /// credential check, spread over the next day rather than all at once; others keep what they had.
    @Test func activeTenantsGetAFirstCredentialCheckSpreadOverADay() async throws {
        let shipped = try Migrations(folder: Migrations.locate(environment: [:]))
        let pool = try temporaryDatabase()
        try await Migrations(files: shipped.files.filter { $0.version < 9 }).apply(to: pool)
        let now = Date().timeIntervalSince1970
        try await pool.write { db in
            for index in 0..<2000 {
                let state = index < 1900 ? "active" : "action_required"
                try db.execute(sql: """
                    INSERT INTO tenants (id, provider, external_id, state, profile, metadata, credentials_available, created_at, updated_at, state_changed_at)
                    VALUES (?, 'magnifinance', ?, ?, '{}', '{}', ?, ?, ?, ?)
                    """, arguments: ["ten_\(index)", "e\(index)", state, state == "active", now, now, now])
            }
            // One active tenant already has work queued: it keeps it, and gets no second.
            try db.execute(sql: "INSERT INTO jobs (tenant_id, kind, run_at, attempts, created_at) VALUES ('ten_0', 'check', ?, 3, ?)", arguments: [now + 5, now])
        }
        try await shipped.apply(to: pool)
        let runAts = try await pool.read { db in
            try Double.fetchAll(db, sql: "SELECT run_at FROM jobs WHERE kind = 'check' AND tenant_id <> 'ten_0'")
        }
        let firstAttempts = try await pool.read { db in
            try Int.fetchAll(db, sql: "SELECT attempts FROM jobs WHERE tenant_id = 'ten_0'")
        }
        #expect(runAts.count == 1899, "every other active tenant, and no tenant still onboarding")
        #expect(firstAttempts == [3], "kept as it was, and no second")
        #expect(runAts.allSatisfy { $0 >= now - 1 && $0 <= now + 86_400 + 1 })
        // Spread: no hour of the day holds more than twice its share.
        var hours = [Int](repeating: 0, count: 24)
        for at in runAts { hours[min(23, max(0, Int((at - now) / 3600)))] += 1 }
        #expect(hours.max()! <= 2 * 1899 / 24, "hours: \(hours)")
        #expect(hours.min()! > 0)
    }

    @Test func badFileNamesAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gw-mig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "SELECT 1".write(to: dir.appendingPathComponent("1_oops.sql"), atomically: true, encoding: .utf8)
        #expect(throws: Migrations.Failure.self) { try Migrations(folder: dir) }
    }
}
