import Foundation
import GatewayCore
import GRDB

/// A gateway's SQLite file opened read-only, table by table, for `gateway import-sqlite`. Every read sees one
/// snapshot of the file (a read transaction held from open to close), so a tenant and its events are copied as they
/// stood together even if a gateway still writes; what it writes after the snapshot is not copied.
public struct SQLiteTableSource: TableSource {
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    let reader: any DatabaseReader

    /// Opens `path` read-only; refuses a file that is not a gateway's, or one whose migrations are behind this
    /// version's (run `gateway migrate` on it first, with this version).
    public static func open(path: String, migrations: Migrations) throws -> SQLiteTableSource {
        guard FileManager.default.fileExists(atPath: path) else { throw Refusal(description: "There is no file at \(path).") }
        var configuration = Configuration()
        configuration.readonly = true
        // A gateway's file is in WAL mode: a snapshot of a read-only pool. A file that is not (a copy made some other
        // way) is read through a plain read-only connection; such a file has no writer.
        let reader: any DatabaseReader
        if let snapshot = try? DatabasePool(path: path, configuration: configuration).makeSnapshot() {
            reader = snapshot
        } else {
            reader = try DatabaseQueue(path: path, configuration: configuration)
        }
        try reader.read { db in
            guard try db.tableExists("tenants"), try db.tableExists("schema_migrations") else {
                throw Refusal(description: "\(path) is not a gateway's SQLite database (no tenants table).")
            }
            guard try migrations.isApplied(db) else {
                throw Refusal(description: "\(path) was written by an older gateway: run `gateway migrate` on it with this version first (GATEWAY_DATA_DIR naming its folder, GATEWAY_DATABASE_URL unset).")
            }
        }
        return SQLiteTableSource(reader: reader)
    }

    public func columns(of table: String) async throws -> [String]? {
        try await reader.read { db in
            guard try db.tableExists(table) else { return nil }
            return try db.columns(in: table).map(\.name)
        }
    }

    public func count(of table: String) async throws -> Int {
        try await reader.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table.quotedDatabaseIdentifier)") ?? 0 }
    }

    public func rows(of table: String, columns: [String], after: Int64?, limit: Int) async throws -> (rows: [[StoredValue]], last: Int64?) {
        try await reader.read { db in
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

    /// The sealed values a gateway needs to read: its own secrets must open with `box`, and every other sealed value
    /// (credentials, webhook URL tokens, stored webhooks) must name a key `box` holds, or the replicas would keep data
    /// nobody can read. Returns how many values were checked.
    public func checkSealedValues(box: SecretBox) async throws -> Int {
        try await reader.read { db in
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
            // A sealed value is "v1.<key id>.<base64>"; the key id is the text between the first two dots. An empty
            // value was erased (a processed webhook's payload).
            let sealedColumns = [
                ("tenant_credentials", "sealed"), ("tenant_credentials", "token_sealed"), ("tenants", "webhook_token_sealed"), ("webhook_inbox", "payload_sealed"),
            ]
            for (table, column) in sealedColumns {
                let keyIDs = try String.fetchAll(db, sql: """
                    SELECT DISTINCT substr(\(column), 4, instr(substr(\(column), 4), '.') - 1) FROM \(table) WHERE \(column) IS NOT NULL AND \(column) <> ''
                    """)
                for keyID in keyIDs where !known.contains(keyID) {
                    throw Refusal(description: "Values of \(table).\(column) are sealed under key \(keyID), which GATEWAY_ENCRYPTION_KEY does not hold: give the import (and the replicas) every key the SQLite gateway had.")
                }
                checked += try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table) WHERE \(column) IS NOT NULL AND \(column) <> ''") ?? 0
            }
            return checked
        }
    }
}
