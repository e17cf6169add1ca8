import Foundation
import GRDB
import GatewayCore
import Providers
import GatewayTesting
import Logging
import Testing

@testable import GatewayStorage
@testable import GatewayStoragePostgres

/// The two implementations of the store, for suites that run unchanged against both: the gateway tests' own
/// choice of database (PostgreSQL when `GATEWAY_TEST_POSTGRES_URL` names a server, always under CI). Each
/// PostgreSQL store gets a schema of its own, so tests run in parallel on one database.
typealias Backend = TestDatabase

enum TestStores {
    static let box = SecretBox(keys: [Data(repeating: 7, count: 32)])
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// A new, migrated, empty store.
    static func make(_ backend: Backend, deliversEvents: Bool = false) async throws -> any GatewayStore {
        switch backend {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-store-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let store = try SQLiteStore(
                path: directory.appendingPathComponent("gateway.sqlite").path, box: box,
                migrations: try Migrations(folder: Migrations.locate(environment: [:])), deliversEvents: deliversEvents
            )
            try await store.migrate()
            return store
        case .postgres:
            let store = try await postgres(schema: newSchema(), deliversEvents: deliversEvents)
            try await store.migrate()
            return store
        }
    }

    /// Another replica on the same database as `store`: a second SQLiteStore on the same file, or a second
    /// PostgresStore on the same schema, with its own connections.
    static func replica(
        of store: any GatewayStore, deliversEvents: Bool = false, representation: any TenantRepresentation = TenantJSON.Representation()
    ) async throws -> any GatewayStore {
        switch store {
        case let sqlite as SQLiteStore:
            return try SQLiteStore(
                path: sqlite.pool.path, box: box, migrations: sqlite.migrations, deliversEvents: deliversEvents, representation: representation
            )
        case let postgres as PostgresStore:
            return try await Self.postgres(schema: postgres.schema ?? "public", deliversEvents: deliversEvents, representation: representation)
        default:
            throw TestStoreError.unknown
        }
    }

    static func postgresSettings() throws -> PostgresSettings {
        guard let url = SandboxHarness.postgresURL else { throw TestStoreError.noPostgres }
        var settings = try PostgresSettings(url: url)
        settings.poolSize = 4
        return settings
    }

    /// A store over `schema`, not migrated.
    static func postgres(
        schema: String, deliversEvents: Bool = false, representation: any TenantRepresentation = TenantJSON.Representation()
    ) async throws -> PostgresStore {
        var settings = try postgresSettings()
        settings.schema = schema
        return PostgresStore(
            settings: settings, box: box,
            migrations: try Migrations(folder: Migrations.locate(environment: [:]).appendingPathComponent("postgres")),
            deliversEvents: deliversEvents, representation: representation, logger: Logger(label: "test")
        )
    }

    /// A new schema's name on the test server: the first store to migrate makes it.
    static func newSchema() -> String {
        "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
    }

    /// Counts rows with SQL both databases read alike.
    static func count(_ store: any GatewayStore, _ sql: String) async throws -> Int {
        switch store {
        case let sqlite as SQLiteStore:
            return try await sqlite.pool.read { db in try Int.fetchOne(db, sql: sql) ?? 0 }
        case let postgres as PostgresStore:
            return try await postgres.row(sql)?.get(0, Int.self) ?? 0
        default:
            throw TestStoreError.unknown
        }
    }

    /// Runs one statement that both databases read alike.
    static func execute(_ store: any GatewayStore, _ sql: String) async throws {
        switch store {
        case let sqlite as SQLiteStore:
            try await sqlite.pool.write { db in try db.execute(sql: sql) }
        case let postgres as PostgresStore:
            try await postgres.rows(sql)
        default:
            throw TestStoreError.unknown
        }
    }

    /// Every byte the database keeps of what it stored (SQLite: the files; PostgreSQL: the rows as text).
    static func storedBytes(_ store: any GatewayStore) async throws -> Data {
        switch store {
        case let sqlite as SQLiteStore:
            try await sqlite.checkpoint()
            return try Data(contentsOf: URL(fileURLWithPath: sqlite.pool.path))
        case let postgres as PostgresStore:
            return Data(try await postgres.everyRowAsText().utf8)
        default:
            throw TestStoreError.unknown
        }
    }

    enum TestStoreError: Error, CustomStringConvertible {
        case noPostgres, unknown
        var description: String {
            switch self {
            case .noPostgres: "GATEWAY_TEST_POSTGRES_URL is not set: start a server with scripts/postgres.sh start and export the URL it prints"
            case .unknown: "not a store these tests know"
            }
        }
    }
}

extension GatewayStore {
    /// Inserts with a lease that has already run out, so the tests can claim the work at once.
    func insert(_ tenant: Tenant, events: [TenantEvent], work: ScheduledWork, webhookToken: String?) async throws -> InsertOutcome {
        try await insert(tenant, events: events, work: work, webhookToken: webhookToken, leaseOwner: "test", leaseUntil: tenant.createdAt)
    }

    func claimDueWork(now: Date, limit: Int, leaseUntil: Date) async throws -> [WorkItem] {
        try await claimDueWork(now: now, limit: limit, leaseUntil: leaseUntil, owner: "test-worker", quotas: nil)
    }
}
