import Foundation

/// The time, injected so tests can control it.
public protocol GatewayClock: Sendable {
    func now() -> Date
}

/// The wall clock.
public struct SystemClock: GatewayClock {
    public init() {}
    public func now() -> Date { Date() }
}
