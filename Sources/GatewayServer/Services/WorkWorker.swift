import Foundation
import GatewayCore
import ServiceLifecycle

/// The background worker: claims due work from the database and runs it (submissions, status polls, webhook
/// processing), each item under its tenant's lease. Items flow: a free slot is filled as soon as an item ends, so a
/// provider that answers slowly (or times out) holds only its own items, never a batch with the other provider's
/// work in it. On graceful shutdown it finishes what it holds and stops claiming; leases of anything unfinished run
/// out and the next start resumes it.
struct WorkWorker: Service {
    let service: OnboardingService
    let interval: TimeInterval
    var maxInFlight = 32

    private enum Event: Sendable {
        case finished
        case tick
    }

    func run() async throws {
        await withTaskGroup(of: Event.self) { group in
            var running = 0
            var ticking = false
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                if running < maxInFlight {
                    for item in await service.claimDueWork(limit: maxInFlight - running, fair: true) {
                        running += 1
                        group.addTask { await service.run(item); return .finished }
                    }
                }
                if !ticking {
                    ticking = true
                    group.addTask {
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
                        return .tick
                    }
                }
                // Wake when an item ends (a slot is free) or the interval passes (new work may be due).
                switch await group.next() {
                case .finished: running -= 1
                case .tick: ticking = false
                case nil: break
                }
            }
            await group.waitForAll()
        }
    }
}
