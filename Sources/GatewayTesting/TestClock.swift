import Foundation
import GatewayCore

/// A clock tests move by hand, so due work and backoff can be stepped without waiting.
public final class TestClock: GatewayClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    public init(_ start: Date = Date()) {
        current = start
    }

    public func now() -> Date { lock.withLock { current } }

    public func advance(_ seconds: TimeInterval) {
        lock.withLock { current = current.addingTimeInterval(seconds) }
    }
}
