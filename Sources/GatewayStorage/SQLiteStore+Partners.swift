import Foundation
import GRDB
import GatewayCore

/// Partner API keys and Idempotency-Key records.
extension SQLiteStore: APIKeyStore, IdempotencyStore {
    public func createAPIKey(_ record: APIKeyRecord, secretHash: Data) async throws {
        try await writes.write { db in
            try db.execute(
                cached: "INSERT INTO api_keys (id, name, prefix, secret_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [record.id, record.name, record.prefix, secretHash, record.scopes.joined(separator: " "), record.createdAt.unix]
            )
        }
    }

    public func apiKey(prefix: String) async throws -> (record: APIKeyRecord, secretHash: Data)? {
        try readNow { db in
            try Row.fetchOne(db, cached: "SELECT * FROM api_keys WHERE prefix = ?", arguments: [prefix]).map { (Self.apiKey(from: $0), $0["secret_hash"]) }
        }
    }

    public func apiKeys() async throws -> [APIKeyRecord] {
        try readNow { db in
            try Row.fetchAll(db, cached: "SELECT * FROM api_keys ORDER BY created_at DESC, id DESC").map(Self.apiKey(from:))
        }
    }

    public func revokeAPIKey(id: String, at: Date) async throws -> Bool {
        try await writes.write { db in
            try db.execute(cached: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [at.unix, id])
            return db.changesCount > 0
        }
    }

    static func apiKey(from row: Row) -> APIKeyRecord {
        APIKeyRecord(
            id: row["id"], name: row["name"], prefix: row["prefix"],
            scopes: (row["scopes"] as String).split(separator: " ").map(String.init), createdAt: Date(unix: row["created_at"]),
            lastUsedAt: (row["last_used_at"] as Double?).map(Date.init(unix:)), revokedAt: (row["revoked_at"] as Double?).map(Date.init(unix:))
        )
    }

    // MARK: - Idempotency

    public func claimIdempotencyKey(
        scope: String, key: String, requestHash: Data, now: Date, expiredBefore: Date, abandonedBefore: Date
    ) async throws -> IdempotencyClaim {
        try await writes.write { db in
            if let row = try Row.fetchOne(db, cached: "SELECT * FROM idempotency_keys WHERE scope = ? AND key = ?", arguments: [scope, key]) {
                let createdAt = Date(unix: row["created_at"])
                let expired = createdAt < expiredBefore
                if !expired {
                    guard (row["request_hash"] as Data) == requestHash else { return .mismatch }
                    if let status = row["status"] as Int? {
                        let headers = (row["headers"] as String?).flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
                        return .completed(StoredResponse(status: status, headers: headers, body: row["body"] ?? Data()))
                    }
                    if createdAt >= abandonedBefore { return .inProgress }
                }
                try db.execute(cached: "DELETE FROM idempotency_keys WHERE scope = ? AND key = ?", arguments: [scope, key])
            }
            try db.execute(
                cached: "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES (?, ?, ?, ?)",
                arguments: [scope, key, requestHash, now.unix]
            )
            return .started
        }
    }

    public func renewIdempotencyKey(scope: String, key: String, claimedAt: Date, now: Date) async throws -> Bool {
        try await writes.write { db in
            try db.execute(
                cached: "UPDATE idempotency_keys SET created_at = ? WHERE scope = ? AND key = ? AND status IS NULL AND created_at = ?",
                arguments: [now.unix, scope, key, claimedAt.unix]
            )
            return db.changesCount == 1
        }
    }

    @discardableResult
    public func completeIdempotencyKey(scope: String, key: String, claimedAt: Date, response: StoredResponse, tenantID: String?, at: Date) async throws -> Bool {
        let headers = String(decoding: try JSONEncoder().encode(response.headers), as: UTF8.self)
        return try await writes.write { db in
            try db.execute(
                cached: """
                    UPDATE idempotency_keys SET status = ?, headers = ?, body = ?, tenant_id = ?, completed_at = ?
                    WHERE scope = ? AND key = ? AND status IS NULL AND created_at = ?
                    """,
                arguments: [response.status, headers, response.body, tenantID, at.unix, scope, key, claimedAt.unix]
            )
            return db.changesCount == 1
        }
    }

    public func releaseIdempotencyKey(scope: String, key: String, claimedAt: Date) async throws {
        try await writes.write { db in
            try db.execute(
                cached: "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND status IS NULL AND created_at = ?",
                arguments: [scope, key, claimedAt.unix]
            )
        }
    }

    public func purgeIdempotencyKeys(createdBefore: Date) async throws -> Int {
        try await writes.write { db in
            try db.execute(cached: "DELETE FROM idempotency_keys WHERE created_at < ?", arguments: [createdBefore.unix])
            return db.changesCount
        }
    }
}
