import EventDelivery
import Foundation
import ServiceLifecycle

/// Runs outbound deliveries until shutdown; what is in flight finishes, leases of the rest run out and the next
/// start resumes them.
struct DeliveryWorker: Service {
    let dispatcher: DeliveryDispatcher
    let interval: TimeInterval

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if await dispatcher.runOnce() == 0 {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
            }
        }
    }
}
