import Foundation

/// Protects one provider from the gateway: caps how many calls run at once, queueing the rest in arrival order,
/// and (when `callsPerSecond` is set) spaces call starts to that rate, with bursts of up to one second's worth.
/// A call waits for its start time first and for a free slot second, so a call held back by the rate holds no slot.
public actor ConcurrencyGate {
    private let limit: Int
    /// Time between call starts at the configured rate; nil is no rate limit.
    private let spacing: Duration?
    /// How far ahead of the rate a burst may run (GCRA's tolerance: one second's worth of calls, less one).
    private let tolerance: Duration
    /// GCRA's theoretical arrival time: when the next call would start if calls came exactly at the rate.
    private var theoreticalArrival = ContinuousClock.now
    private var running = 0
    /// Calls asleep until the start the rate gave them: they count against the free slots the worker sees, so it
    /// does not claim (and lease) more work for a provider whose rate is used up.
    private var pacing = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(limit: Int, callsPerSecond: Double? = nil) {
        self.limit = max(1, limit)
        if let callsPerSecond, callsPerSecond > 0 {
            let spacing = Duration.seconds(1 / callsPerSecond)
            self.spacing = spacing
            self.tolerance = spacing * (max(1, Int(callsPerSecond.rounded(.down))) - 1)
        } else {
            self.spacing = nil
            self.tolerance = .zero
        }
    }

    /// Slots free right now (none while calls wait in line).
    public func freeSlots() -> Int {
        max(0, limit - running - waiters.count - pacing)
    }

    /// How a call through the gate went.
    public enum Outcome<T: Sendable>: Sendable {
        case ran(T)
        /// The rate would start it only after `retryAfter` seconds, more than the caller may wait (or the caller was
        /// cancelled while it waited): not made, and no start reserved for it.
        case rateLimited(retryAfter: TimeInterval)
    }

    /// Runs `body` once the rate and a slot allow; `.rateLimited` when the rate's delay exceeds `maxDelay`.
    public func run<T: Sendable>(maxDelay: TimeInterval = .infinity, _ body: @Sendable () async -> T) async -> Outcome<T> {
        await run(maxDelay: maxDelay) { _ in await body() }
    }

    /// As `run`, telling `body` whether the call waited (for its start time or for a slot) before it ran.
    public func run<T: Sendable>(maxDelay: TimeInterval = .infinity, _ body: @Sendable (_ waited: Bool) async -> T) async -> Outcome<T> {
        var waited = false
        switch reserveStart(maxDelay: maxDelay) {
        case .tooLate(let delay):
            return .rateLimited(retryAfter: delay)
        case .at(let start):
            pacing += 1
            let slept: Void? = try? await Task.sleep(until: start, clock: .continuous)
            pacing -= 1
            // A cancelled sleep ends early: the call would start before its time, so it is not made.
            guard slept != nil else { return .rateLimited(retryAfter: max(0, Self.seconds(start - ContinuousClock.now))) }
            waited = true
        case .now:
            break
        }
        if await !acquire() { waited = true }
        defer { release() }
        return .ran(await body(waited))
    }

    private enum Start {
        case now
        case at(ContinuousClock.Instant)
        case tooLate(TimeInterval)
    }

    /// The earliest start the rate allows this call, reserved now unless it is later than `maxDelay` from now.
    private func reserveStart(maxDelay: TimeInterval) -> Start {
        guard let spacing else { return .now }
        let now = ContinuousClock.now
        let arrival = max(theoreticalArrival, now)
        let start = arrival - tolerance
        guard start > now else {
            theoreticalArrival = arrival + spacing
            return .now
        }
        let delay = Self.seconds(start - now)
        guard delay <= maxDelay else { return .tooLate(delay) }
        theoreticalArrival = arrival + spacing
        return .at(start)
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Takes a slot; true when one was free at once, false when the call waited in line for it.
    private func acquire() async -> Bool {
        if running < limit {
            running += 1
            return true
        }
        await withCheckedContinuation { waiters.append($0) }
        return false
    }

    private func release() {
        if waiters.isEmpty {
            running -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
