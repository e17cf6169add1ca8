import Foundation
import GRDB

/// Key rotation: every sealed value not sealed with the newest key is opened and sealed again with it, in small
/// transactions so a serving gateway is never blocked for long. Afterwards older keys can be removed.
extension SQLiteStore {
    /// The sealed columns, how to find a row again, and the context each value is bound to.
    static let sealedColumns: [(table: String, key: String, column: String, context: @Sendable (Row) -> String)] = [
        ("tenant_credentials", "tenant_id", "sealed", { "credentials:\($0["tenant_id"] as String)" }),
        ("tenant_credentials", "tenant_id", "token_sealed", { "access-token:\($0["tenant_id"] as String)" }),
        ("tenants", "id", "webhook_token_sealed", { "webhook-token:\($0["id"] as String)" }),
        ("webhook_inbox", "id", "payload_sealed", { "webhook:\($0["tenant_id"] as String)" }),
        ("gateway_secrets", "name", "sealed", { "gateway-secret:\($0["name"] as String)" }),
    ]

    /// Re-seals everything under the newest key; returns how many values moved, per table.
    public func resealWithNewestKey(batchSize: Int = 200) async throws -> [String: Int] {
        var moved: [String: Int] = [:]
        let current = box.currentKeyID
        for column in Self.sealedColumns {
            while true {
                let count = try await writes.write { [box] db -> Int in
                    let rows = try Row.fetchAll(
                        db,
                        sql: """
                            SELECT * FROM \(column.table) WHERE \(column.column) IS NOT NULL AND \(column.column) <> ''
                            AND \(column.column) NOT LIKE 'v1.' || ? || '.%' LIMIT ?
                            """,
                        arguments: [current, batchSize]
                    )
                    for row in rows {
                        let context = column.context(row)
                        let plaintext = try box.open(row[column.column], context: context)
                        try db.execute(
                            sql: "UPDATE \(column.table) SET \(column.column) = ? WHERE \(column.key) = ?",
                            arguments: [try box.seal(plaintext, context: context), row[column.key] as DatabaseValue]
                        )
                    }
                    if column.table == "tenant_credentials" {
                        try db.execute(sql: "UPDATE tenant_credentials SET key_id = ? WHERE key_id <> ?", arguments: [current, current])
                    }
                    return rows.count
                }
                moved[column.table, default: 0] += count
                if count < batchSize { break }
            }
        }
        return moved
    }
}
