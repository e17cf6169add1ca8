import Foundation

/// A provider's circuit breaker and recent errors. When `failureThreshold` of the last `window` calls failed
/// transiently, the circuit opens: calls are not made (tenants simply wait, nothing fails) until a cool-down passes;
/// then one probe goes through. A successful probe closes the circuit; a failed one opens it again for twice as
/// long (capped). A ratio, not a run of failures: a provider that is down trips it within `window` calls, while a
/// flaky one (half its answers garbled) keeps being called, since its tenants converge only by trying.
///
/// With several replicas (`shared`), an open circuit is written to the database: every replica reads it (at most
/// once a second, when it is about to call) and stops calling too; after the cool-down one replica takes the probe,
/// and its outcome opens the circuit again or closes it for all. The window of recent outcomes stays per replica.
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
        /// How long a replica holds the shared probe; a replica that dies with it frees it then.
        public var probeHold: TimeInterval = 60
        /// How stale a replica's view of the shared circuit may be.
        public var sharedReadInterval: TimeInterval = 1

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
    private let provider: ProviderKind?
    private let shared: (any SharedCircuitStore)?
    private var sharedReadAt: Date?
    private var probeDeniedAt: Date?
    /// Writes of this replica's own decisions to the shared circuit not done yet: until they are, an absent row
    /// does not mean that another replica closed the circuit.
    private var sharedWrites = 0
    /// Counts this replica's own decisions (open, close): a read of the shared circuit that began before one of
    /// them is stale and is dropped.
    private var decisions = 0
    /// Until when this replica holds the shared probe (it claimed it, no outcome yet).
    private var sharedProbeUntil: Date?

    public init(settings: Settings = Settings(), provider: ProviderKind? = nil, shared: (any SharedCircuitStore)? = nil) {
        self.settings = settings
        self.provider = provider
        self.shared = provider == nil ? nil : shared
        coolDown = settings.coolDown
    }

    /// What an admitted call is: an ordinary one, or the probe whose outcome decides a half-open circuit.
    public enum Admission: Sendable, Equatable {
        case call
        case probe
    }

    /// The role of the provider call the current task makes (`OnboardingService.call` sets it around the call). While
    /// the circuit is half-open only the probe's requests decide; a late answer to a call admitted before the circuit
    /// opened goes into the window only. Nil (a caller that does not say) counts as the probe.
    @TaskLocal public static var role: Admission?

    /// Whether a call may go now; in half-open state only one probe at a time (across replicas when shared).
    public func admit(now: Date) async -> Bool {
        await admitCall(now: now) != nil
    }

    /// As `admit`, saying whether the call admitted is the probe; nil when it may not go.
    public func admitCall(now: Date) async -> Admission? {
        await readShared(now: now)
        switch state {
        case .closed:
            return .call
        case .open:
            guard let openedAt, now >= openedAt.addingTimeInterval(coolDown) else { return nil }
            if let shared, let provider {
                // Another replica probes: ask again at most once per read interval, not once per waiting tenant.
                if let probeDeniedAt, abs(now.timeIntervalSince(probeDeniedAt)) < settings.sharedReadInterval { return nil }
                let holdUntil = now.addingTimeInterval(settings.probeHold)
                let claimed = (try? await shared.claimSharedProbe(provider, now: now, holdUntil: holdUntil)) ?? false
                guard claimed else {
                    probeDeniedAt = now
                    return nil
                }
                // Another call of this replica may have moved the state while the claim was on its way.
                guard state == .open else { return state == .closed ? .call : nil }
                sharedProbeUntil = holdUntil
            }
            state = .halfOpen
            probeInFlight = true
            return .probe
        case .halfOpen:
            guard !probeInFlight else { return nil }
            // The last probe made no request. Shared, this replica probes again only while it still holds the probe;
            // once its hold ran out another replica may have it, so it waits for the next turn like the others.
            if shared != nil, (sharedProbeUntil ?? .distantPast) <= now {
                state = .open
                sharedProbeUntil = nil
                return nil
            }
            probeInFlight = true
            return .probe
        }
    }

    /// Records how an admitted call went. Only transient failures count; a refusal of data is a working provider.
    public func record(success: Bool, now: Date, operation: String, reason: String? = nil) async {
        outcomes.append(!success)
        if outcomes.count > max(settings.window, settings.failureThreshold) { outcomes.removeFirst() }
        if !success {
            recentErrors.append(RecentError(at: now, operation: operation, reason: reason ?? "unavailable"))
            if recentErrors.count > 10 { recentErrors.removeFirst(recentErrors.count - 10) }
        }
        // Half-open: only the probe decides. A late answer to an ordinary call is in the window, nothing more.
        if state == .halfOpen, Self.role == .call { return }
        probeInFlight = false
        guard !success else {
            // Shared and open: a call admitted before this replica learnt of the circuit answered late. Only the
            // probe's outcome decides for every replica; this one goes into the window.
            if shared != nil, state == .open { return }
            let wasOpen = state != .closed
            if wasOpen { outcomes.removeAll() }
            state = .closed
            failures = 0
            coolDown = settings.coolDown
            sharedProbeUntil = nil
            if wasOpen, let shared, let provider {
                decisions += 1
                await sharing { try await shared.closeSharedCircuit(provider) }
            }
            return
        }
        failures += 1
        switch state {
        case .halfOpen:
            coolDown = min(coolDown * 2, settings.maxCoolDown)
            await open(at: now)
        case .closed where outcomes.filter({ $0 }).count >= settings.failureThreshold:
            await open(at: now)
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

    /// The state as of `now`, the shared circuit read first when it is shared.
    public func snapshot(now: Date) async -> Snapshot {
        await readShared(now: now)
        return snapshot()
    }

    public func snapshot() -> Snapshot {
        Snapshot(
            state: state, consecutiveFailures: failures, openUntil: state == .open ? openedAt?.addingTimeInterval(coolDown) : nil,
            recentErrors: recentErrors
        )
    }

    private func open(at now: Date) async {
        state = .open
        openedAt = now
        sharedProbeUntil = nil
        if let shared, let provider {
            decisions += 1
            let until = now.addingTimeInterval(coolDown)
            let coolDown = coolDown
            await sharing { try await shared.openSharedCircuit(provider, until: until, coolDown: coolDown) }
        }
    }

    /// Writes one of this replica's decisions, trying three times: a close that never lands would leave the others
    /// waiting for this replica's probe hold to run out.
    private func sharing(_ write: @Sendable () async throws -> Void) async {
        sharedWrites += 1
        for attempt in 1...3 {
            do {
                try await write()
                break
            } catch {
                if attempt < 3 { try? await Task.sleep(for: .milliseconds(100 * attempt)) }
            }
        }
        sharedWrites -= 1
    }

    /// Takes in what the other replicas decided, at most once per `sharedReadInterval`: an open circuit of theirs
    /// is adopted (or one opened for longer), and a circuit they closed is closed here too. A probe this replica has
    /// under way, and a decision it is still writing, are left alone.
    private func readShared(now: Date) async {
        guard let shared, let provider else { return }
        if let sharedReadAt, abs(now.timeIntervalSince(sharedReadAt)) < settings.sharedReadInterval { return }
        sharedReadAt = now
        let epoch = decisions
        let circuit: SharedCircuit?
        do {
            circuit = try await shared.sharedCircuit(provider)
        } catch {
            return
        }
        guard decisions == epoch, !probeInFlight, sharedWrites == 0 else { return }
        if let circuit {
            let localUntil = openedAt.map { $0.addingTimeInterval(coolDown) }
            if state == .closed || (localUntil ?? .distantPast) < circuit.openUntil {
                state = .open
                coolDown = circuit.coolDown
                openedAt = circuit.openUntil.addingTimeInterval(-circuit.coolDown)
            }
        } else if state != .closed {
            state = .closed
            failures = 0
            coolDown = settings.coolDown
            outcomes.removeAll()
        }
    }
}

/// Hears about every provider call, for metrics: outcome `ok`, `unavailable` or `short_circuited`.
public protocol ProviderCallObserver: Sendable {
    func providerCall(provider: ProviderKind, operation: String, outcome: String, duration: TimeInterval)
}

struct NoProviderCallObserver: ProviderCallObserver {
    func providerCall(provider: ProviderKind, operation: String, outcome: String, duration: TimeInterval) {}
}
