import Foundation
import GatewayCore
import PostgresNIO

/// `gateway import-sqlite`: a SQLite deployment's data copied into an empty PostgreSQL schema, so a partner with live
/// tenants moves to several replicas without starting from zero. Rows are copied as they are stored: sealed values
/// stay sealed (the replicas need the same GATEWAY_ENCRYPTION_KEY), ids and feed positions stay the same (event ids,
/// cursors and webhook-ids the partner's app has seen keep their meaning), and pending work, leases and
/// Idempotency-Keys carry over. One transaction: an import that fails leaves the schema as it found it.
extension PostgresStore {
    /// Every table that holds data, parents before children. The counters are not copied: the triggers count the
    /// rows as they arrive. Schema bookkeeping and shared circuits are this database's own.
    public static let importedTables = [
        "tenants", "tenant_credentials", "tenant_events", "webhook_inbox", "jobs", "audit_log", "api_keys", "idempotency_keys",
        "gateway_secrets", "deliveries", "delivery_attempts", "events_endpoint", "onboarding_link_revocations",
    ]

    public struct ImportRefusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// Copies every table of `source`; returns how many rows each table received. Refuses a schema that already
    /// holds tenants, keys, events or audit entries (a second import, or replicas that already ran).
    public func importData(from source: any TableSource, batchSize: Int = 500, progress: @escaping @Sendable (String, Int) -> Void = { _, _ in }) async throws -> [String: Int] {
        try await transaction { connection in
            for table in ["tenants", "api_keys", "tenant_events", "audit_log", "deliveries"] {
                if try await !self.rows("SELECT 1 FROM \(table) LIMIT 1", on: connection).isEmpty {
                    throw ImportRefusal(description: "This PostgreSQL schema already holds data (\(table) is not empty): import only into a new database or schema, before any replica has served.")
                }
            }
            // The counters are made once at the end: a trigger per row would update the same few counter rows
            // hundreds of thousands of times in one transaction, each update slower than the last.
            for table in Self.countedTables.map(\.table) {
                try await self.rows("ALTER TABLE \(table) DISABLE TRIGGER USER", on: connection)
            }
            var copied: [String: Int] = [:]
            for table in Self.importedTables {
                copied[table] = try await self.copy(table, from: source, batchSize: batchSize, on: connection, progress: progress)
            }
            for counted in Self.countedTables {
                try await self.rows("DELETE FROM \(counted.counts)", on: connection)
                try await self.rows(
                    "INSERT INTO \(counted.counts) (\(counted.keys), slot, n) SELECT \(counted.keys), 0, COUNT(*) FROM \(counted.table) GROUP BY \(counted.keys)",
                    on: connection
                )
                try await self.rows("ALTER TABLE \(counted.table) ENABLE TRIGGER USER", on: connection)
            }
            return copied
        }
    }

    /// The tables whose rows the counter triggers count, the counter table, and what it counts by.
    static let countedTables = [
        (table: "tenants", counts: "tenant_counts", keys: "provider, state"),
        (table: "jobs", counts: "job_counts", keys: "kind"),
        (table: "deliveries", counts: "delivery_counts", keys: "status"),
    ]

    private struct Column {
        var name: String
        var type: String
        var identity: Bool
        var required: Bool
    }

    private func copy(
        _ table: String, from source: any TableSource, batchSize: Int, on connection: PostgresConnection, progress: @Sendable (String, Int) -> Void
    ) async throws -> Int {
        let target = try await rows(
            """
            SELECT column_name::text AS name, data_type::text AS type, is_identity::text AS identity,
                   (is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO')::bool AS required
            FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position
            """,
            [table], on: connection
        ).map { row in
            Column(name: try row.get("name"), type: try row.get("type"), identity: try row.get("identity", String.self) == "YES", required: try row.get("required"))
        }
        guard !target.isEmpty else { throw ImportRefusal(description: "PostgreSQL has no table \(table): run `gateway migrate` first.") }
        guard let sourceColumns = try await source.columns(of: table) else {
            throw ImportRefusal(description: "The SQLite file has no table \(table): is it a gateway's database?")
        }
        let targetNames = Set(target.map(\.name))
        if let lost = sourceColumns.first(where: { !targetNames.contains($0) }) {
            throw ImportRefusal(description: "PostgreSQL's \(table) has no column \(lost): this gateway version cannot carry that data over.")
        }
        let columns = target.filter { sourceColumns.contains($0.name) }
        if let missing = target.first(where: { $0.required && !sourceColumns.contains($0.name) }) {
            throw ImportRefusal(description: "The SQLite file's \(table) has no column \(missing.name), which PostgreSQL requires.")
        }
        let list = columns.map { "\"\($0.name)\"" }.joined(separator: ", ")
        let overriding = columns.contains(where: \.identity) ? " OVERRIDING SYSTEM VALUE" : ""
        // Rows PostgreSQL's own migrations or a replica's start already made (the events endpoint's row, the
        // onboarding-link key) give way to the SQLite gateway's: its links and settings stay valid.
        let conflict = switch table {
        case "gateway_secrets": " ON CONFLICT (name) DO UPDATE SET sealed = EXCLUDED.sealed"
        case "events_endpoint": " ON CONFLICT (id) DO UPDATE SET disabled_at = EXCLUDED.disabled_at, disabled_why = EXCLUDED.disabled_why"
        default: ""
        }
        let perBatch = max(1, min(batchSize, 60_000 / max(columns.count, 1)))
        var after: Int64?
        var total = 0
        while true {
            let batch = try await source.rows(of: table, columns: columns.map(\.name), after: after, limit: perBatch)
            guard !batch.rows.isEmpty else { break }
            var arguments: [any SQLValue] = []
            var tuples: [String] = []
            var bytes = 0
            /// One statement per batch, or sooner when its values pass 8 MB (stored webhooks can be 64 KiB each).
            func flush() async throws {
                guard !tuples.isEmpty else { return }
                do {
                    try await rows("INSERT INTO \(table) (\(list))\(overriding) VALUES \(tuples.joined(separator: ", "))\(conflict)", arguments, on: connection)
                } catch let error as PSQLError {
                    // PSQLError prints nothing useful on purpose (its bindings may hold personal data); the server's
                    // message and code name the problem without the values.
                    let message = error.serverInfo?[.message] ?? "\(error.code)"
                    let code = error.serverInfo?[.sqlState] ?? "-"
                    throw ImportRefusal(description: "PostgreSQL refused rows of \(table) after position \(after.map(String.init) ?? "0"): \(message) (SQLSTATE \(code)).")
                }
                arguments.removeAll(keepingCapacity: true)
                tuples.removeAll(keepingCapacity: true)
                bytes = 0
            }
            for row in batch.rows {
                var placeholders: [String] = []
                for (column, value) in zip(columns, row) {
                    arguments.append(try Self.converted(value, to: column.type, column: "\(table).\(column.name)"))
                    placeholders.append("$\(arguments.count)::\(column.type)")
                    bytes += value.size
                }
                tuples.append("(" + placeholders.joined(separator: ", ") + ")")
                if bytes > 8 << 20 { try await flush() }
            }
            try await flush()
            total += batch.rows.count
            progress(table, total)
            after = batch.last
        }
        // Identity columns go on after the highest id copied, so new rows never collide with imported ones.
        for column in columns where column.identity {
            try await rows(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT max(\"\(column.name)\") FROM \(table)), 0) + 1, false)",
                [table, column.name], on: connection
            )
        }
        let expected = try await source.count(of: table)
        guard total == expected else {
            throw ImportRefusal(description: "\(table): read \(total) rows of \(expected); was the SQLite file written to during the import? Stop the gateway, or import a backup.")
        }
        return total
    }

    /// A SQLite value as the PostgreSQL column's type wants it. SQLite is loosely typed; the gateway wrote each column
    /// with one type, which this checks rather than trusts.
    static func converted(_ value: StoredValue, to type: String, column: String) throws -> any SQLValue {
        switch (value, type) {
        case (.null, _): return String?.none
        case (.text(let text), "text"): return text
        case (.integer(let number), "text"): return String(number)
        case (.real(let number), "double precision"): return number
        case (.integer(let number), "double precision"): return Double(number)
        case (.integer(let number), "bigint"), (.integer(let number), "integer"): return number
        case (.real(let number), "bigint") where Int64(exactly: number) != nil: return Int64(exactly: number)!
        case (.integer(let number), "boolean"): return number != 0
        case (.blob(let data), "bytea"): return data
        case (.text(let text), "bytea"): return Data(text.utf8)
        default:
            throw ImportRefusal(description: "\(column) holds a value PostgreSQL's \(type) cannot take (\(value.kind)).")
        }
    }
}

extension StoredValue {
    var size: Int {
        switch self {
        case .null, .integer, .real: 8
        case .text(let text): text.utf8.count
        case .blob(let data): data.count
        }
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .integer: "an integer"
        case .real: "a real number"
        case .text: "text"
        case .blob: "a blob"
        }
    }
}
