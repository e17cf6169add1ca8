import Foundation
import GRDB
import GatewayCore

/// The gateway's SQLite database (GRDB `DatabasePool`, WAL): the `TenantStore` the service runs on.
/// Seals credentials, webhook tokens and webhook payloads with `SecretBox`; hashes tokens for lookup.
public final class SQLiteStore: Sendable {
    let pool: DatabasePool
    let box: SecretBox
    public let migrations: Migrations
    /// When true (`GATEWAY_EVENTS_URL` is set), every event gets a delivery in the same transaction.
    let deliversEvents: Bool
    /// Every write of the store goes through group commit: at a burst, many share one transaction.
    let writes: GroupCommit
    let encoder = JSONEncoder.gateway
    let decoder = JSONDecoder.gateway

    /// Opens (creating if needed) the database file; does not migrate.
    public init(path: String, box: SecretBox, migrations: Migrations, deliversEvents: Bool = false) throws {
        self.deliversEvents = deliversEvents
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // Deleted rows are overwritten with zeros, so erased personal data leaves no bytes behind.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        self.pool = pool
        self.writes = GroupCommit(writer: pool)
        self.box = box
        self.migrations = migrations
    }

    @discardableResult
    public func migrate() async throws -> [Int] {
        try await migrations.apply(to: pool)
    }

    /// Opens the store over an existing, migrated database without serving (for `gateway rotate-key`).
    public static func open(path: String, box: SecretBox) throws -> SQLiteStore {
        try SQLiteStore(path: path, box: box, migrations: Migrations(files: []))
    }

    /// Migrates a database file without opening the store (no keys needed).
    public static func migrate(path: String, migrations: Migrations) async throws -> [Int] {
        try await migrations.apply(to: try DatabasePool(path: path))
    }

    /// True when the database answers and every migration is applied.
    public func isReady() async -> Bool {
        (try? readSnapshot { db in try migrations.isApplied(db) }) ?? false
    }

    /// Flushes the WAL into the main file (used by tests that read the file's bytes, and at shutdown).
    public func checkpoint() async throws {
        try await pool.writeWithoutTransaction { db in
            _ = try db.checkpoint(.truncate)
        }
    }

    /// A gateway-wide secret (e.g. the onboarding-link key), made by `make` on first use and kept sealed.
    public func gatewaySecret(named name: String, make: @escaping @Sendable () -> Data) async throws -> Data {
        try await writes.write { [box] db in
            if let sealed = try String.fetchOne(db, sql: "SELECT sealed FROM gateway_secrets WHERE name = ?", arguments: [name]) {
                return try box.open(sealed, context: "gateway-secret:\(name)")
            }
            let value = make()
            try db.execute(
                sql: "INSERT INTO gateway_secrets (name, sealed) VALUES (?, ?)",
                arguments: [name, try box.seal(value, context: "gateway-secret:\(name)")]
            )
            return value
        }
    }

    /// A read on the caller's own thread. The hot reads (a tenant by id, a page, a key) take tens of microseconds,
    /// and the asynchronous read's hand-off to a reader's queue and back cost more than the query: a profile of
    /// `GET /v1/tenants/{id}` spent a third of its time in those thread wake-ups. WAL readers never wait for the
    /// writer, so the caller is held only for the query itself. For one statement only: it runs outside an explicit
    /// transaction (a single SELECT reads one consistent snapshot by itself), which saves a BEGIN and a COMMIT.
    ///
    /// Every read of the store is synchronous like this (`readNow` or `readSnapshot`), never GRDB's asynchronous
    /// read: an asynchronous read holds its reader until its task runs again, and a synchronous one blocks its thread
    /// while it waits for a free reader. Mixed on one pool, the cooperative threads could all block waiting for
    /// readers held by tasks that need those very threads to finish.
    func readNow<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.unsafeRead(body)
    }

    /// A synchronous read of several statements in one snapshot (a transaction), on the caller's thread.
    func readSnapshot<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }

    func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    func decode<T: Decodable>(_ type: T.Type, _ text: String?) throws -> T? {
        guard let text else { return nil }
        return try decoder.decode(type, from: Data(text.utf8))
    }
}

extension Date {
    var unix: Double { timeIntervalSince1970 }
    init(unix: Double) { self.init(timeIntervalSince1970: unix) }
}

extension SQLiteStore: GatewayStore {
    public func close() async {
        try? pool.close()
    }
}
