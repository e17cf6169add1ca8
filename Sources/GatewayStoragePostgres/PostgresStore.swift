import Foundation
import GatewayCore
import GatewayStorage
import Logging
import PostgresNIO
import Synchronization

/// The gateway's store on PostgreSQL, shared by several replicas: the same ports as `SQLiteStore`. What SQLite got
/// from having one writer, this gets from the database:
/// - work, inbox entries and deliveries are claimed with `FOR UPDATE SKIP LOCKED`, each claim a tenant lease with a
///   fencing token, so two replicas never talk to a provider about one tenant at once;
/// - the natural key, Idempotency-Keys and webhook repeats are unique constraints, met with `INSERT … ON CONFLICT`;
/// - a read-decide-write (`update`) locks the tenant's row (`SELECT … FOR NO KEY UPDATE`) for its transaction;
/// - events take a transaction-level advisory lock, so the feed's order is the order of commits.
public final class PostgresStore: Sendable {
    let pool: PostgresPool
    var client: PostgresClient { pool.client }
    let box: SecretBox
    public let migrations: Migrations
    let deliversEvents: Bool
    /// The API's rendering of a tenant, kept beside it (`api_json`, `api_version`) whenever it is written.
    let representation: any TenantRepresentation
    /// Tenants whose rendering is being written back (`keepRendering`): each is queued once, however many reads find it.
    let renderingsQueued = Mutex<Set<String>>([])
    let logger: Logger
    /// The schema the tables live in, when the URL names one.
    public let schema: String?
    let encoder = JSONEncoder.gateway
    let decoder = JSONDecoder.gateway

    /// Advisory lock keys (database-wide).
    static let migrationLock: Int64 = 0x6761_7465_0001
    static let feedLock: Int64 = 0x6761_7465_0002

    /// Connects lazily (the first query opens a connection); does not migrate.
    public init(
        settings: PostgresSettings, box: SecretBox, migrations: Migrations, deliversEvents: Bool = false,
        representation: any TenantRepresentation = TenantJSON.Representation(), logger: Logger
    ) {
        let tls: PostgresClient.Configuration.TLS = switch settings.tls {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password,
            database: settings.database, tls: tls
        )
        configuration.options.maximumConnections = settings.poolSize
        if let schema = settings.schema {
            configuration.options.additionalStartupParameters = [("search_path", schema)]
        }
        // A connection that cannot be made in 2 s counts as a failure (the pool's default waits 10 s).
        configuration.options.connectTimeout = .seconds(2)
        self.pool = PostgresPool(
            makeClient: { [configuration] in PostgresClient(configuration: configuration, backgroundLogger: logger) },
            leaseWait: .seconds(3), logger: logger
        )
        self.box = box
        self.migrations = migrations
        self.deliversEvents = deliversEvents
        self.representation = representation
        self.logger = logger
        self.schema = settings.schema
    }

    public func close() async {
        await pool.close()
    }

    // MARK: - Queries

    /// Runs one statement (on `connection`, inside its transaction, or on any pooled connection) and reads every row.
    @discardableResult
    func rows(_ sql: String, _ arguments: [any SQLValue] = [], on connection: PostgresConnection? = nil) async throws -> [PostgresRandomAccessRow] {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments { try argument.bind(into: &binds) }
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        let logger = logger
        let run: @Sendable (PostgresConnection) async throws -> [PostgresRandomAccessRow] = { connection in
            try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
        }
        if let connection {
            return try await pool.statement(on: connection, run)
        }
        // A statement on its own is its own transaction.
        return try await retryingVictims {
            try await pool.withConnection { connection in try await pool.statement(on: connection, run) }
        }
    }

    func row(_ sql: String, _ arguments: [any SQLValue] = [], on connection: PostgresConnection? = nil) async throws -> PostgresRandomAccessRow? {
        try await rows(sql, arguments, on: connection).first
    }

    /// Runs `body` in one transaction (READ COMMITTED). The caller's own errors come out as they went in. A transaction
    /// PostgreSQL chose as a deadlock's victim (or failed to serialize) rolled back whole and runs again: every body
    /// reads what it decides on inside the transaction, so running it again decides afresh.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await retryingVictims {
            try await pool.withConnection { connection in
                // BEGIN and COMMIT go through `statement` like the body's own, so none can wait without end.
                try await execute("BEGIN", on: connection)
                let value: T
                do {
                    value = try await body(connection)
                } catch {
                    // After an abandoned statement the connection is closed: nothing to roll back there.
                    if !(error is StorageUnavailable) { try? await execute("ROLLBACK", on: connection) }
                    throw error
                }
                try await execute("COMMIT", on: connection)
                return value
            }
        }
    }

    private func execute(_ sql: String, on connection: PostgresConnection) async throws {
        let logger = logger
        _ = try await pool.statement(on: connection) { connection in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect() }
    }

    /// Runs `work` (one transaction) again, up to five times, when PostgreSQL rolled it back as a deadlock's victim or
    /// for a serialization failure.
    private func retryingVictims<T>(_ work: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await work()
            } catch where attempt < 5 && Self.isRetryable(error) {
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...(20 * attempt))))
            }
        }
    }

    /// Errors that mean the database cannot be reached or written now, not a bad statement: no connection in time,
    /// the pool's circuit open, a connection lost, the server shutting down (57P), out of resources (53: disk full),
    /// a connection exception (08). Answered `503 storage_unavailable`.
    public static func isOutage(_ error: any Error) -> Bool {
        if error is StorageUnavailable { return true }
        if let error = error as? PostgresTransactionError {
            return [error.beginError, error.closureError, error.commitError, error.rollbackError].contains { $0.map(isOutage) ?? false }
        }
        guard let error = error as? PSQLError else { return String(describing: type(of: error)).contains("ConnectionPoolError") }
        // No answer from the server at all: the connection failed, closed or was never made.
        guard let state = error.serverInfo?[.sqlState] else { return true }
        return state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57P")
    }

    /// Deadlock detected (40P01) or serialization failure (40001): nothing was written, running again is safe.
    static func isRetryable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40P01" || state == "40001"
    }

    func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    func decode<T: Decodable>(_ type: T.Type, _ text: String?) throws -> T? {
        guard let text else { return nil }
        return try decoder.decode(type, from: Data(text.utf8))
    }

    // MARK: - Lifecycle

    @discardableResult
    public func migrate() async throws -> [Int] {
        try await PostgresMigrator(store: self).apply(migrations)
    }

    /// Answers within about 2 s whatever the database does: a balancer must see "not ready", not a timeout. A failed
    /// probe also renews the connection pool once the database answers again, so readiness returns within seconds.
    public func isReady() async -> Bool {
        let rows = await PostgresPool.within(.milliseconds(1800)) { [self] in
            try? await pool.withConnection(wait: .milliseconds(1500)) { connection in
                try await connection.query("SELECT version, checksum FROM schema_migrations", logger: logger).collect().map { $0.makeRandomAccess() }
            }
        }
        guard let rows else {
            pool.noticeNoConnection()
            return false
        }
        let applied = Dictionary(rows.compactMap { row -> (Int, String)? in
            guard let version = try? row.get("version", Int.self), let checksum = try? row.get("checksum", String.self) else { return nil }
            return (version, checksum)
        }, uniquingKeysWith: { first, _ in first })
        return migrations.files.allSatisfy { applied[$0.version] == $0.checksum }
    }

    /// Other replicas may hold leases and run Idempotency-Key requests: nothing is let go at start. A replica that
    /// died has its leases taken over when they run out, and its unfinished Idempotency-Key claims once they count
    /// as abandoned.
    public func recoverFromEarlierRun(now: Date) async throws {}

    public func gatewaySecret(named name: String, make: @escaping @Sendable () -> Data) async throws -> Data {
        let context = "gateway-secret:\(name)"
        if let sealed = try await row("SELECT sealed FROM gateway_secrets WHERE name = $1", [name])?.get("sealed", String.self) {
            return try box.open(sealed, context: context)
        }
        // Replicas starting together each offer a value; the first committed is everyone's.
        try await rows(
            "INSERT INTO gateway_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            [name, try box.seal(make(), context: context)]
        )
        guard let sealed = try await row("SELECT sealed FROM gateway_secrets WHERE name = $1", [name])?.get("sealed", String.self) else {
            throw PostgresStoreError("the gateway secret \(name) vanished")
        }
        return try box.open(sealed, context: context)
    }
}

extension PostgresStore: GatewayStore {}

extension PostgresStore {
    /// Every row of the tables that hold tenants' data, as PostgreSQL prints it: for tests that look for a secret
    /// stored in plaintext anywhere.
    public func everyRowAsText() async throws -> String {
        var text = ""
        for table in [
            "tenants", "tenant_credentials", "tenant_events", "webhook_inbox", "jobs", "audit_log", "api_keys", "idempotency_keys",
            "gateway_secrets", "deliveries", "delivery_attempts",
        ] {
            for row in try await rows("SELECT t::text AS row FROM \(table) t") {
                text += try row.get("row", String.self) + "\n"
            }
        }
        return text
    }
}

/// A store failure that is not the database's own error.
struct PostgresStoreError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A value bound to a `$n` placeholder.
protocol SQLValue: Sendable {
    func bind(into bindings: inout PostgresBindings) throws
}

extension String: SQLValue {
    func bind(into bindings: inout PostgresBindings) throws { bindings.append(self) }
}

extension Int: SQLValue {
    func bind(into bindings: inout PostgresBindings) throws { bindings.append(Int64(self)) }
}

extension Int64: SQLValue {
    func bind(into bindings: inout PostgresBindings) throws { bindings.append(self) }
}

extension Double: SQLValue {
    func bind(into bindings: inout PostgresBindings) throws { bindings.append(self) }
}

extension Bool: SQLValue {
    func bind(into bindings: inout PostgresBindings) throws { bindings.append(self) }
}

extension Data: SQLValue {
    func bind(into bindings: inout PostgresBindings) throws { try bindings.append(self) }
}

extension Array: SQLValue where Element == String {
    func bind(into bindings: inout PostgresBindings) throws { bindings.append(self) }
}

extension Optional: SQLValue where Wrapped: SQLValue {
    func bind(into bindings: inout PostgresBindings) throws {
        switch self {
        case .some(let value): try value.bind(into: &bindings)
        case .none: bindings.appendNull()
        }
    }
}

extension PostgresRandomAccessRow {
    /// The column's value; a column the query did not select is an error, not a crash (the subscript traps).
    func get<T: PostgresDecodable>(_ column: String, _ type: T.Type = T.self) throws -> T {
        guard let cell = first(where: { $0.columnName == column }) else { throw PostgresStoreError("no column \(column) in the row") }
        return try cell.decode(T.self)
    }

    func get<T: PostgresDecodable>(_ index: Int, _ type: T.Type = T.self) throws -> T {
        guard indices.contains(index) else { throw PostgresStoreError("no column \(index) in the row") }
        return try self[index].decode(T.self)
    }
}

extension Date {
    var unix: Double { timeIntervalSince1970 }
    init(unix: Double) { self = Bounds.date(unix: unix) }
}
