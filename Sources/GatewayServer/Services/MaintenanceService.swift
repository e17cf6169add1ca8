import Foundation
import GatewayCore
import Logging
import ServiceLifecycle

/// Housekeeping on a timer: prunes what has outlived `GATEWAY_RETENTION_DAYS` (finished deliveries with their
/// attempts, audit entries, processed webhooks) and forgets Idempotency-Key records older than 24 h.
struct MaintenanceService: Service {
    let store: any RetentionStore
    let retention: RetentionSettings
    let clock: any GatewayClock
    let logger: Logger
    var interval: Duration = .seconds(3600)
    /// Rows per statement. Each batch is its own short transaction, so API requests and workers get the writer
    /// between batches even when months of backlog go at once (the first run after an upgrade).
    var batchSize = 1000

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            await runOnce()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One round of pruning; answers how many rows of each kind went.
    @discardableResult
    func runOnce() async -> [String: Int] {
        let now = clock.now()
        let cutoff = now.addingTimeInterval(-retention.age)
        let idempotencyCutoff = now.addingTimeInterval(-IdempotencyMiddleware.lifetime)
        var pruned: [String: Int] = [:]
        pruned["deliveries"] = await prune("deliveries") { try await store.pruneDeliveries(finishedBefore: cutoff, limit: batchSize) }
        pruned["audit_entries"] = await prune("audit entries") { try await store.pruneAuditEntries(before: cutoff, limit: batchSize) }
        pruned["webhooks"] = await prune("processed webhooks") {
            try await store.pruneProcessedWebhooks(processedBefore: cutoff, limit: batchSize)
        }
        pruned["idempotency_keys"] = await prune("idempotency keys") {
            try await store.pruneIdempotencyKeys(createdBefore: idempotencyCutoff, limit: batchSize)
        }
        if pruned.values.contains(where: { $0 > 0 }) {
            var metadata: Logger.Metadata = ["retention.days": "\(retention.days)"]
            for (name, count) in pruned { metadata["pruned.\(name)"] = "\(count)" }
            logger.info("old records pruned", metadata: metadata)
        }
        return pruned
    }

    /// Runs `batch` until it deletes fewer than a full batch; a failure is logged and the other kinds still run.
    private func prune(_ what: String, _ batch: () async throws -> Int) async -> Int {
        var total = 0
        do {
            while !Task.isCancelled {
                let deleted = try await batch()
                total += deleted
                if deleted < batchSize { break }
                await Task.yield()
            }
        } catch {
            logger.error("pruning failed", metadata: ["pruning": "\(what)", "error": "\(String(describing: error))"])
        }
        return total
    }
}
