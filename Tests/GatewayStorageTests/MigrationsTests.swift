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

    @Test func badFileNamesAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gw-mig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "SELECT 1".write(to: dir.appendingPathComponent("1_oops.sql"), atomically: true, encoding: .utf8)
        #expect(throws: Migrations.Failure.self) { try Migrations(folder: dir) }
    }
}
