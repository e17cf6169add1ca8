import Foundation
import GatewayStorage
import PostgresNIO

/// Applies `migrations/postgres/NNNN_*.sql` under a session-level advisory lock: replicas starting together wait for
/// each other, and each file is applied once, in its own transaction, recorded with its checksum. A file edited after
/// it was applied, or a database newer than the binary, stops the start, as on SQLite.
struct PostgresMigrator {
    let store: PostgresStore

    func apply(_ migrations: Migrations) async throws -> [Int] {
        try await store.client.withConnection { connection in
            try await store.rows("SELECT pg_advisory_lock($1)", [PostgresStore.migrationLock], on: connection)
            do {
                let done = try await applyLocked(migrations, on: connection)
                try await store.rows("SELECT pg_advisory_unlock($1)", [PostgresStore.migrationLock], on: connection)
                return done
            } catch {
                _ = try? await store.rows("SELECT pg_advisory_unlock($1)", [PostgresStore.migrationLock], on: connection)
                throw error
            }
        }
    }

    private func applyLocked(_ migrations: Migrations, on connection: PostgresConnection) async throws -> [Int] {
        if let schema = store.schema {
            // The URL's search_path names the gateway's own schema: made on first start (the name is checked to be a
            // plain identifier when the URL is read).
            try await store.rows("CREATE SCHEMA IF NOT EXISTS \(schema)", on: connection)
        }
        try await store.rows(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at double precision NOT NULL)
            """,
            on: connection
        )
        var applied: [Int: String] = [:]
        for row in try await store.rows("SELECT version, checksum FROM schema_migrations", on: connection) {
            applied[try row.get("version", Int.self)] = try row.get("checksum", String.self)
        }
        for (version, checksum) in applied {
            guard let file = migrations.files.first(where: { $0.version == version }) else { throw Migrations.Failure.unknownApplied(version: version) }
            guard file.checksum == checksum else { throw Migrations.Failure.edited(version: version, name: file.name) }
        }
        var done: [Int] = []
        for file in migrations.files where applied[file.version] == nil {
            try await connection.withTransaction(logger: store.logger) { connection in
                for statement in Self.statements(file.sql) {
                    try await store.rows(statement, on: connection)
                }
                try await store.rows(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                    [file.version, file.name, file.checksum, Date().timeIntervalSince1970], on: connection
                )
            }
            done.append(file.version)
        }
        return done
    }

    /// A file's statements, split at the semicolons that end them: not those in quotes, dollar-quoted bodies
    /// (`$$ … $$`, `$tag$ … $tag$`) or comments. The extended protocol takes one statement at a time.
    static func statements(_ sql: String) -> [String] {
        let characters = Array(sql)
        var statements: [String] = []
        var current = ""
        var index = 0
        func starts(with text: String, at position: Int) -> Bool {
            let needle = Array(text)
            guard position + needle.count <= characters.count else { return false }
            return Array(characters[position..<position + needle.count]) == needle
        }
        while index < characters.count {
            let character = characters[index]
            if starts(with: "--", at: index) {
                while index < characters.count, characters[index] != "\n" { index += 1 }
                continue
            }
            if character == "'" {
                var end = index + 1
                while end < characters.count, characters[end] != "'" { end += 1 }
                current += String(characters[index..<min(end + 1, characters.count)])
                index = end + 1
                continue
            }
            if character == "$" {
                var end = index + 1
                while end < characters.count, characters[end].isLetter || characters[end] == "_" { end += 1 }
                if end < characters.count, characters[end] == "$" {
                    let tag = String(characters[index...end])
                    var close = end + 1
                    while close < characters.count, !starts(with: tag, at: close) { close += 1 }
                    let stop = min(close + tag.count, characters.count)
                    current += String(characters[index..<stop])
                    index = stop
                    continue
                }
            }
            if character == ";" {
                let statement = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !statement.isEmpty { statements.append(statement) }
                current = ""
            } else {
                current.append(character)
            }
            index += 1
        }
        let last = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !last.isEmpty { statements.append(last) }
        return statements
    }
}
