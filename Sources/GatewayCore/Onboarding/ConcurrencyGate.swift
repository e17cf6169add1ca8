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
        max(0, limit - running - waiters.count)
    }

    public func run<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        if let start = reserveStart() { try? await Task.sleep(until: start, clock: .continuous) }
        await acquire()
        defer { release() }
        return await body()
    }

    /// The earliest start the rate allows this call, reserved now (nil: at once).
    private func reserveStart() -> ContinuousClock.Instant? {
        guard let spacing else { return nil }
        let now = ContinuousClock.now
        let arrival = max(theoreticalArrival, now)
        theoreticalArrival = arrival + spacing
        let start = arrival - tolerance
        return start > now ? start : nil
    }

    private func acquire() async {
        if running < limit {
            running += 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            running -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
