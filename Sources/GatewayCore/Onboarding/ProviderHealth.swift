import Foundation

/// A provider's circuit breaker and recent errors. When `failureThreshold` of the last `window` calls failed
/// transiently, the circuit opens: calls are not made (tenants simply wait, nothing fails) until a cool-down passes;
/// then one probe goes through. A successful probe closes the circuit; a failed one opens it again for twice as
/// long (capped). A ratio, not a run of failures: a provider that is down trips it within `window` calls, while a
/// flaky one (half its answers garbled) keeps being called, since its tenants converge only by trying.
public actor ProviderHealth {
    public enum CircuitState: String, Sendable, Codable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    public struct Settings: Sendable, Equatable {
        public var failureThreshold = 18
        public var window = 20
        public var coolDown: TimeInterval = 30
        public var maxCoolDown: TimeInterval = 300

        public init() {}
    }

    public struct RecentError: Sendable, Equatable {
        public var at: Date
        public var operation: String
        public var reason: String
    }

    public struct Snapshot: Sendable, Equatable {
        public var state: CircuitState
        public var consecutiveFailures: Int
        /// While open: when the next probe may go.
        public var openUntil: Date?
        public var recentErrors: [RecentError]
    }

    let settings: Settings
    private var state = CircuitState.closed
    private var failures = 0
    private var openedAt: Date?
    private var coolDown: TimeInterval
    private var probeInFlight = false
    /// The outcomes of the last calls, newest last (true: failed).
    private var outcomes: [Bool] = []
    private var recentErrors: [RecentError] = []

    public init(settings: Settings = Settings()) {
        self.settings = settings
        coolDown = settings.coolDown
    }

    /// Whether a call may go now; in half-open state only one probe at a time.
    public func admit(now: Date) -> Bool {
        switch state {
        case .closed:
            return true
        case .open:
            guard let openedAt, now >= openedAt.addingTimeInterval(coolDown) else { return false }
            state = .halfOpen
            probeInFlight = true
            return true
        case .halfOpen:
            guard !probeInFlight else { return false }
            probeInFlight = true
            return true
        }
    }

    /// Records how an admitted call went. Only transient failures count; a refusal of data is a working provider.
    public func record(success: Bool, now: Date, operation: String, reason: String? = nil) {
        probeInFlight = false
        outcomes.append(!success)
        if outcomes.count > max(settings.window, settings.failureThreshold) { outcomes.removeFirst() }
        guard !success else {
            if state != .closed { outcomes.removeAll() }
            state = .closed
            failures = 0
            coolDown = settings.coolDown
            return
        }
        recentErrors.append(RecentError(at: now, operation: operation, reason: reason ?? "unavailable"))
        if recentErrors.count > 10 { recentErrors.removeFirst(recentErrors.count - 10) }
        failures += 1
        switch state {
        case .halfOpen:
            coolDown = min(coolDown * 2, settings.maxCoolDown)
            open(at: now)
        case .closed where outcomes.filter({ $0 }).count >= settings.failureThreshold:
            open(at: now)
        default:
            break
        }
    }

    /// A call that was admitted has ended. When it was the probe but made no request (nothing was recorded), the
    /// next call may probe instead, so the circuit can never stay half-open for want of a probe.
    public func settleCall() {
        probeInFlight = false
    }

    /// How long until a call may be tried, when the circuit is open.
    public func retryAfter(now: Date) -> TimeInterval? {
        guard state == .open, let openedAt else { return nil }
        return max(0, openedAt.addingTimeInterval(coolDown).timeIntervalSince(now))
    }

    public func snapshot() -> Snapshot {
        Snapshot(
            state: state, consecutiveFailures: failures, openUntil: state == .open ? openedAt?.addingTimeInterval(coolDown) : nil,
            recentErrors: recentErrors
        )
    }

    private func open(at now: Date) {
        state = .open
        openedAt = now
    }
}

/// Hears about every provider call, for metrics: outcome `ok`, `unavailable` or `short_circuited`.
public protocol ProviderCallObserver: Sendable {
    func providerCall(provider: ProviderKind, operation: String, outcome: String, duration: TimeInterval)
}

struct NoProviderCallObserver: ProviderCallObserver {
    func providerCall(provider: ProviderKind, operation: String, outcome: String, duration: TimeInterval) {}
}
