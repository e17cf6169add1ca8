import Foundation
import GatewayCore
import ServiceLifecycle

/// The background worker: claims due work from the database and runs it (submissions, status polls, webhook
/// processing). On graceful shutdown it finishes what it holds and stops claiming; unfinished leases expire
/// and the next start resumes them.
struct WorkWorker: Service {
    let service: OnboardingService
    let interval: TimeInterval
    let batchSize = 16

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let ran = await service.runDueWork(limit: batchSize)
            if ran == 0 {
                try? await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
                }
            }
        }
    }
}
