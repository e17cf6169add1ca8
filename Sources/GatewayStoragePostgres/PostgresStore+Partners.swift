import Foundation
import GatewayCore
import GatewayStorage
import PostgresNIO

/// Partner API keys and Idempotency-Key records.
extension PostgresStore: APIKeyStore, IdempotencyStore {
    public func createAPIKey(_ record: APIKeyRecord, secretHash: Data) async throws {
        try await rows(
            "INSERT INTO api_keys (id, name, prefix, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            [record.id, record.name, record.prefix, secretHash, record.scopes.joined(separator: " "), record.createdAt.unix]
        )
    }

    public func apiKey(prefix: String) async throws -> (record: APIKeyRecord, secretHash: Data)? {
        guard let row = try await row("SELECT * FROM api_keys WHERE prefix = $1", [prefix]) else { return nil }
        return (try Self.apiKey(from: row), try row.get("secret_hash", Data.self))
    }

    public func apiKeys() async throws -> [APIKeyRecord] {
        try await rows("SELECT * FROM api_keys ORDER BY created_at DESC, id DESC").map(Self.apiKey(from:))
    }

    public func revokeAPIKey(id: String, at: Date) async throws -> Bool {
        try await !rows("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING 1", [at.unix, id]).isEmpty
    }

    static func apiKey(from row: PostgresRandomAccessRow) throws -> APIKeyRecord {
        APIKeyRecord(
            id: try row.get("id"), name: try row.get("name"), prefix: try row.get("prefix"),
            scopes: try row.get("scopes", String.self).split(separator: " ").map(String.init), createdAt: Date(unix: try row.get("created_at")),
            lastUsedAt: try row.get("last_used_at", Double?.self).map(Date.init(unix:)),
            revokedAt: try row.get("revoked_at", Double?.self).map(Date.init(unix:))
        )
    }

    // MARK: - Idempotency

    public func claimIdempotencyKey(
        scope: String, key: String, requestHash: Data, now: Date, expiredBefore: Date, abandonedBefore: Date
    ) async throws -> IdempotencyClaim {
        try await transaction { connection in
            // Two replicas seeing the same key at once: the primary key lets one insert; the other reads its record
            // (and inserts after all if the first request let its claim go in between).
            var found: PostgresRandomAccessRow?
            for _ in 0..<3 where found == nil {
                let inserted = try await self.rows(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING RETURNING 1",
                    [scope, key, requestHash, now.unix], on: connection
                )
                if !inserted.isEmpty { return .started }
                found = try await self.row("SELECT * FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE", [scope, key], on: connection)
            }
            guard let row = found else { throw PostgresStoreError("an Idempotency-Key record kept vanishing while it was claimed") }
            let createdAt = Date(unix: try row.get("created_at"))
            if createdAt >= expiredBefore {
                guard try row.get("request_hash", Data.self) == requestHash else { return .mismatch }
                if let status = try row.get("status", Int?.self) {
                    let headers = try row.get("headers", String?.self).flatMap {
                        try? JSONDecoder().decode([String: String].self, from: Data($0.utf8))
                    } ?? [:]
                    return .completed(StoredResponse(status: status, headers: headers, body: try row.get("body", Data?.self) ?? Data()))
                }
                if createdAt >= abandonedBefore { return .inProgress }
            }
            // Expired, or abandoned by a request that never finished: this request takes the key over.
            try await self.rows(
                """
                UPDATE idempotency_keys SET request_hash = $3, created_at = $4, tenant_id = NULL, status = NULL, headers = NULL, body = NULL,
                    completed_at = NULL
                WHERE scope = $1 AND key = $2
                """,
                [scope, key, requestHash, now.unix], on: connection
            )
            return .started
        }
    }

    public func renewIdempotencyKey(scope: String, key: String, claimedAt: Date, now: Date) async throws -> Bool {
        try await !rows(
            "UPDATE idempotency_keys SET created_at = $1 WHERE scope = $2 AND key = $3 AND status IS NULL AND created_at = $4 RETURNING 1",
            [now.unix, scope, key, claimedAt.unix]
        ).isEmpty
    }

    @discardableResult
    public func completeIdempotencyKey(scope: String, key: String, claimedAt: Date, response: StoredResponse, tenantID: String?, at: Date) async throws -> Bool {
        let headers = String(decoding: try JSONEncoder().encode(response.headers), as: UTF8.self)
        return try await !rows(
            """
            UPDATE idempotency_keys SET status = $1, headers = $2, body = $3, tenant_id = $4, completed_at = $5
            WHERE scope = $6 AND key = $7 AND status IS NULL AND created_at = $8
            RETURNING 1
            """,
            [response.status, headers, response.body, tenantID, at.unix, scope, key, claimedAt.unix]
        ).isEmpty
    }

    public func releaseIdempotencyKey(scope: String, key: String, claimedAt: Date) async throws {
        try await rows(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL AND created_at = $3", [scope, key, claimedAt.unix]
        )
    }

    public func purgeIdempotencyKeys(createdBefore: Date) async throws -> Int {
        try await rows("DELETE FROM idempotency_keys WHERE created_at < $1 RETURNING 1", [createdBefore.unix]).count
    }
}
