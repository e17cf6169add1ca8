import Foundation
import GatewayCore
import GRDB

/// A gateway's SQLite file opened read-only, table by table, for `gateway import-sqlite`. The file must be at rest:
/// the gateway that wrote it stopped, or a copy made by `POST /admin/backup`.
public struct SQLiteTableSource: TableSource {
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    let queue: DatabaseQueue

    /// Opens `path` read-only; refuses a file that is not a gateway's, or one whose migrations are behind this
    /// version's (run `gateway migrate` on it first, with this version).
    public static func open(path: String, migrations: Migrations) throws -> SQLiteTableSource {
        guard FileManager.default.fileExists(atPath: path) else { throw Refusal(description: "There is no file at \(path).") }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.read { db in
            guard try db.tableExists("tenants"), try db.tableExists("schema_migrations") else {
                throw Refusal(description: "\(path) is not a gateway's SQLite database (no tenants table).")
            }
            guard try migrations.isApplied(db) else {
                throw Refusal(description: "\(path) was written by an older gateway: run `gateway migrate` on it with this version first (GATEWAY_DATA_DIR naming its folder, GATEWAY_DATABASE_URL unset).")
            }
        }
        return SQLiteTableSource(queue: queue)
    }

    public func columns(of table: String) async throws -> [String]? {
        try await queue.read { db in
            guard try db.tableExists(table) else { return nil }
            return try db.columns(in: table).map(\.name)
        }
    }

    public func count(of table: String) async throws -> Int {
        try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table.quotedDatabaseIdentifier)") ?? 0 }
    }

    public func rows(of table: String, columns: [String], after: Int64?, limit: Int) async throws -> (rows: [[StoredValue]], last: Int64?) {
        try await queue.read { db in
            let list = columns.map(\.quotedDatabaseIdentifier).joined(separator: ", ")
            let rows = try Row.fetchAll(
                db, sql: "SELECT rowid AS \"__position\", \(list) FROM \(table.quotedDatabaseIdentifier) WHERE rowid > ? ORDER BY rowid LIMIT ?",
                arguments: [after ?? Int64.min, limit]
            )
            let values = rows.map { row in
                columns.indices.map { index -> StoredValue in
                    switch (row[index + 1] as DatabaseValue).storage {
                    case .null: .null
                    case .int64(let value): .integer(value)
                    case .double(let value): .real(value)
                    case .string(let value): .text(value)
                    case .blob(let value): .blob(value)
                    }
                }
            }
            return (values, rows.last.map { $0["__position"] as Int64 })
        }
    }

    /// The sealed values a gateway needs to read (its own secrets, the tenants' credentials): each must open with
    /// `box`, or the replicas would hold credentials nobody can read. Returns how many were checked.
    public func checkSealedValues(box: SecretBox) async throws -> Int {
        try await queue.read { db in
            var checked = 0
            for row in try Row.fetchAll(db, sql: "SELECT name, sealed FROM gateway_secrets") {
                let name: String = row["name"]
                do {
                    _ = try box.open(row["sealed"], context: "gateway-secret:\(name)")
                } catch {
                    throw Refusal(description: "GATEWAY_ENCRYPTION_KEY does not open the gateway secret \"\(name)\" of this file: give the import (and the replicas) the key, or keys, the SQLite gateway had.")
                }
                checked += 1
            }
            let known = Set(box.keyIDs)
            for keyID in try String.fetchAll(db, sql: "SELECT DISTINCT key_id FROM tenant_credentials") where !known.contains(keyID) {
                throw Refusal(description: "Tenant credentials are sealed under key \(keyID), which GATEWAY_ENCRYPTION_KEY does not hold: give the import (and the replicas) every key the SQLite gateway had.")
            }
            checked += try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tenant_credentials") ?? 0
            return checked
        }
    }
}
