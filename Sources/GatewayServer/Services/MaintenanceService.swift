import Foundation
import GatewayCore
import Logging
import ServiceLifecycle

/// Housekeeping on a timer: forgets Idempotency-Key records older than 24 h.
struct MaintenanceService: Service {
    let store: any IdempotencyStore
    let clock: any GatewayClock
    let logger: Logger
    var interval: Duration = .seconds(3600)

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            await runOnce()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    func runOnce() async {
        do {
            let purged = try await store.purgeIdempotencyKeys(createdBefore: clock.now().addingTimeInterval(-IdempotencyMiddleware.lifetime))
            if purged > 0 { logger.info("idempotency keys purged", metadata: ["count": "\(purged)"]) }
        } catch {
            logger.error("purging idempotency keys failed", metadata: ["error": "\(String(describing: error))"])
        }
    }
}
