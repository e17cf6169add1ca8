import Foundation
import GRDB
import GatewayCore
import Glibc
import Synchronization

/// The gateway's SQLite database (GRDB `DatabasePool`, WAL): the `TenantStore` the service runs on.
/// Seals credentials, webhook tokens and webhook payloads with `SecretBox`; hashes tokens for lookup.
public final class SQLiteStore: Sendable {
    let pool: DatabasePool
    let box: SecretBox
    public let migrations: Migrations
    /// When true (`GATEWAY_EVENTS_URL` is set), every event gets a delivery in the same transaction.
    let deliversEvents: Bool
    /// The API's rendering of a tenant, kept beside it (`api_json`, `api_version`) whenever it is written.
    let representation: any TenantRepresentation
    /// Every write of the store goes through group commit: at a burst, many share one transaction.
    let writes: GroupCommit
    let encoder = JSONEncoder.gateway
    let decoder = JSONDecoder.gateway
    let path: String
    public var databasePath: String { path }
    /// Tenants whose rendering is being written back (`keepRendering`): each is queued once, however many reads find it.
    let renderingsQueued = Mutex<Set<String>>([])
    /// The lock that says this process serves the file (`recoverFromEarlierRun` takes it, `close` lets it go).
    let serving = Mutex<Int32?>(nil)

    /// Opens (creating if needed) the database file; does not migrate.
    public init(
        path: String, box: SecretBox, migrations: Migrations, deliversEvents: Bool = false,
        representation: any TenantRepresentation = TenantJSON.Representation()
    ) throws {
        self.path = path
        self.deliversEvents = deliversEvents
        self.representation = representation
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

    /// True when the database answers, every migration is applied, and writes go through. After a write failed for
    /// want of disk, each probe tries one small write, so readiness returns as soon as space is freed.
    public func isReady() async -> Bool {
        guard (try? readSnapshot({ db in try migrations.isApplied(db) })) ?? false else { return false }
        if writes.writesHealthy { return true }
        let probe: Void? = try? await writes.write { db in
            try db.execute(
                sql: "INSERT INTO readiness_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                arguments: [Date().timeIntervalSince1970]
            )
        }
        return probe != nil
    }

    /// Errors that mean the database cannot be written now (a full disk, an I/O error, a lock held too long), not a
    /// bad request: answered `503 storage_unavailable`.
    public static func isOutage(_ error: any Error) -> Bool {
        if error is StorageUnavailable { return true }
        guard let error = error as? DatabaseError else { return false }
        return [.SQLITE_FULL, .SQLITE_IOERR, .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_NOMEM, .SQLITE_PROTOCOL]
            .contains(error.resultCode)
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
    init(unix: Double) { self = Bounds.date(unix: unix) }
}

extension SQLiteStore: GatewayStore {
    public func close() async {
        try? pool.close()
        if let fd = serving.withLock({ $0.take() }) { Glibc.close(fd) }
    }

    /// Takes the file's serving lock (a record lock on `<file>-serve.lock`, let go by the kernel if the process dies): a
    /// second process serving the same file would clear the first one's live leases at its start, and both would
    /// talk to providers about the same tenants. It is refused, naming the reason.
    public func takeServingLock() throws {
        guard serving.withLock({ $0 == nil }) else { return }
        let lockPath = path + "-serve.lock"
        let fd = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SQLiteServingLocked(description: "cannot open \(lockPath): errno \(errno)") }
        // A POSIX record lock: held per process, so this process may open the file again (tests restart a gateway
        // in-process), while another process is refused; the kernel lets it go when the process dies.
        var lock = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: 0, l_len: 0, l_pid: 0)
        guard fcntl(fd, F_SETLK, &lock) == 0 else {
            Glibc.close(fd)
            throw SQLiteServingLocked(description: """
                another gateway process is serving \(path): stop it first (or give this one its own GATEWAY_DATA_DIR). \
                Two processes on one SQLite file would take each other's leases; several replicas need PostgreSQL (GATEWAY_DATABASE_URL).
                """)
        }
        serving.withLock { $0 = fd }
    }
}

/// Another process serves the same SQLite file.
public struct SQLiteServingLocked: Error, CustomStringConvertible {
    public var description: String
}
