import Crypto
import Foundation
import GRDB
import GatewayCore

/// The schema's history: the `NNNN_name.sql` files of the top-level `migrations/` folder, applied in order,
/// each in its own transaction, and recorded with a checksum so that a shipped file edited later is refused.
public struct Migrations: Sendable {
    public struct File: Sendable, Equatable {
        public var version: Int
        public var name: String
        public var sql: String
        public var checksum: String { SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined() }

        public init(version: Int, name: String, sql: String) {
            self.version = version
            self.name = name
            self.sql = sql
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case badName(String)
        case duplicateVersion(Int)
        case edited(version: Int, name: String)
        case unknownApplied(version: Int)

        public var description: String {
            switch self {
            case .badName(let name): "migration file \(name) is not named NNNN_name.sql"
            case .duplicateVersion(let version): "two migration files share the version \(version)"
            case .edited(let version, let name): "migration \(version) (\(name)) was changed after it was applied; add a new migration instead"
            case .unknownApplied(let version): "the database has migration \(version), which this build does not know: is the binary older than the database?"
            }
        }
    }

    public let files: [File]

    public init(files: [File]) {
        self.files = files.sorted { $0.version < $1.version }
    }

    /// Reads `*.sql` from a folder.
    public init(folder: URL) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }
        var files: [File] = []
        for name in names {
            guard let match = name.wholeMatch(of: /([0-9]{4})_([A-Za-z0-9_\-]+)\.sql/), let version = Int(match.1) else {
                throw Failure.badName(name)
            }
            guard !files.contains(where: { $0.version == version }) else { throw Failure.duplicateVersion(version) }
            let sql = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            files.append(File(version: version, name: String(match.2), sql: sql))
        }
        self.init(files: files)
    }

    /// Finds the migrations folder (`GATEWAY_MIGRATIONS_DIR`, `./migrations`, beside the executable,
    /// `../share/gateway/migrations`, or the source checkout).
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment, executable: String = Bundle.main.executablePath ?? CommandLine.arguments.first ?? "") throws -> URL {
        try ShippedFiles.locate("migrations", setting: "GATEWAY_MIGRATIONS_DIR", directory: true, environment: environment, executable: executable)
    }

    /// Applies what is missing; returns the versions applied now.
    @discardableResult
    public func apply(to writer: any DatabaseWriter) async throws -> [Int] {
        try await writer.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at REAL NOT NULL)
                """)
        }
        let applied = try await appliedChecksums(in: writer)
        for (version, checksum) in applied {
            guard let file = files.first(where: { $0.version == version }) else { throw Failure.unknownApplied(version: version) }
            guard file.checksum == checksum else { throw Failure.edited(version: version, name: file.name) }
        }
        var done: [Int] = []
        for file in files where applied[file.version] == nil {
            try await writer.write { db in
                try db.execute(sql: file.sql)
                try db.execute(
                    sql: "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                    arguments: [file.version, file.name, file.checksum, Date().timeIntervalSince1970]
                )
            }
            done.append(file.version)
        }
        return done
    }

    /// True when every known migration is applied (for `/readyz`).
    public func isApplied(in reader: any DatabaseReader) async throws -> Bool {
        let applied = try await appliedChecksums(in: reader)
        return files.allSatisfy { applied[$0.version] == $0.checksum }
    }

    /// True when every migration is applied, read in `db` (the store reads it synchronously: see `readNow`).
    func isApplied(_ db: Database) throws -> Bool {
        let applied = try Self.appliedChecksums(db)
        return files.allSatisfy { applied[$0.version] == $0.checksum }
    }

    static func appliedChecksums(_ db: Database) throws -> [Int: String] {
        guard try db.tableExists("schema_migrations") else { return [:] }
        let rows = try Row.fetchAll(db, sql: "SELECT version, checksum FROM schema_migrations")
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["version"] as Int, $0["checksum"] as String) })
    }

    private func appliedChecksums(in reader: any DatabaseReader) async throws -> [Int: String] {
        try await reader.read { db in try Self.appliedChecksums(db) }
    }
}
