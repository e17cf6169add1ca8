import Foundation
import GRDB
import GatewayCore

/// Pruning by age, a batch per transaction: each statement picks at most `limit` rows through an index on the age
/// column (see migration 0003), so the writer lock is held for milliseconds, never for the whole backlog.
extension SQLiteStore: RetentionStore {
    public func pruneDeliveries(finishedBefore before: Date, limit: Int) async throws -> Int {
        // Attempts go with their delivery (ON DELETE CASCADE); delivery_counts follows by trigger.
        try await deleteBatch(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE status IN ('delivered', 'failed') AND finished_at < ? LIMIT ?)",
            before: before, limit: limit
        )
    }

    public func pruneAuditEntries(before: Date, limit: Int) async throws -> Int {
        try await deleteBatch("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? LIMIT ?)", before: before, limit: limit)
    }

    public func pruneProcessedWebhooks(processedBefore before: Date, limit: Int) async throws -> Int {
        try await deleteBatch(
            "DELETE FROM webhook_inbox WHERE id IN (SELECT id FROM webhook_inbox WHERE processed_at IS NOT NULL AND processed_at < ? LIMIT ?)",
            before: before, limit: limit
        )
    }

    public func pruneIdempotencyKeys(createdBefore before: Date, limit: Int) async throws -> Int {
        try await deleteBatch(
            "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
            before: before, limit: limit
        )
    }

    private func deleteBatch(_ sql: String, before: Date, limit: Int) async throws -> Int {
        try await writes.write { db in
            try db.execute(sql: sql, arguments: [before.unix, limit])
            return db.changesCount
        }
    }
}
