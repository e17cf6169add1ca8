import Foundation

/// Pruning of records that have outlived the retention period. Each call deletes at most `limit` rows in one short
/// transaction and answers how many it deleted, so a caller loops until fewer than `limit` come back and other
/// writers get the database between batches.
public protocol RetentionStore: Sendable {
    /// Delivered or failed deliveries finished before `before`, with their attempts. Pending ones are never pruned.
    func pruneDeliveries(finishedBefore before: Date, limit: Int) async throws -> Int
    /// Audit entries written before `before`.
    func pruneAuditEntries(before: Date, limit: Int) async throws -> Int
    /// Webhook inbox entries processed before `before`. Entries not processed yet are kept, however old.
    func pruneProcessedWebhooks(processedBefore before: Date, limit: Int) async throws -> Int
    /// Idempotency-Key records created before `before`.
    func pruneIdempotencyKeys(createdBefore before: Date, limit: Int) async throws -> Int
}
