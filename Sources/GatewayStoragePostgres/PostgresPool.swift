import Foundation
import GatewayCore
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The connection pool behind `PostgresStore`, with what `PostgresClient` lacks for an outage:
/// - a deadline on waiting for a connection: while PostgreSQL is unreachable the pool waits (and backs off) without
///   end, so every request would hang; here the wait ends after `leaseWait` with `StorageUnavailable` (a 503);
/// - a fresh pool once the database is back: `PostgresClient` retries its connections with a backoff that grows to a
///   minute, so after a one-minute outage the gateway stayed unready for 16 s. When a lease times out or a readiness
///   probe fails, a fresh pool is tried (at most once a second); if it answers, it replaces the old one.
final class PostgresPool: Sendable {
    private struct Current {
        var client: PostgresClient
        var running: Task<Void, Never>
    }

    private let current: Mutex<Current>
    private let makeClient: @Sendable () -> PostgresClient
    let leaseWait: Duration
    private let logger: Logger
    /// When the last probe started (at most one a second) and when a pool was last replaced (at most once in 30 s,
    /// so a pool that is merely saturated is never multiplied: two pools at most are alive at once).
    private let lastProbe = Mutex<(probe: ContinuousClock.Instant?, replaced: ContinuousClock.Instant?, running: Bool)>((nil, nil, false))
    /// When a statement last went through this pool: a pool that is merely busy keeps answering some, so only one
    /// that has answered none for a while is a candidate for replacement.
    private let lastAnswer = Mutex<ContinuousClock.Instant>(.now)
    /// Set when a wait for a connection ran out, cleared when a statement goes through: meanwhile every wait is short,
    /// so a request that needs several statements learns of the outage in well under a second each, not 3 s each.
    private let unreachable = Mutex(false)
    static let waitWhileUnreachable: Duration = .milliseconds(250)
    /// Statements under way, and since when: when the database turns out to be unreachable, one that has run for over
    /// a second is abandoned (its caller fails now with `StorageUnavailable`) and its connection closed. A statement
    /// on a connection the server dropped mid-shutdown was seen to wait without end, and with it a graceful stop.
    private let running = Mutex<(next: Int, statements: [Int: RunningStatement])>((0, [:]))

    private struct RunningStatement {
        var connection: PostgresConnection
        var since: ContinuousClock.Instant
        var abandon: @Sendable () -> Void
    }

    init(
        makeClient: @escaping @Sendable () -> PostgresClient, leaseWait: Duration, logger: Logger
    ) {
        let client = makeClient()
        self.current = Mutex(Current(client: client, running: Task { await client.run() }))
        self.makeClient = makeClient
        self.leaseWait = leaseWait
        self.logger = logger
    }

    var client: PostgresClient { current.withLock { $0.client } }

    /// Shuts the pool down, waiting at most 5 s: a connection the server dropped mid-shutdown may never finish closing,
    /// and a gateway told to stop must stop.
    func close() async {
        // Statements still running when the gateway stops are not waited for.
        abandonStatements(runningLongerThan: .zero)
        let running = current.withLock { $0.running }
        running.cancel()
        let closed: Bool? = await Self.within(.seconds(5)) {
            await running.value
            return true
        }
        if closed == nil { logger.warning("the database connection pool did not close within 5 s; stopping anyway") }
    }

    /// Runs `body` on a pooled connection, waiting at most `wait` (default `leaseWait`) for one.
    func withConnection<T>(wait: Duration? = nil, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let client = self.client
        let limit = unreachable.withLock { $0 } && databaseDown ? min(wait ?? leaseWait, Self.waitWhileUnreachable) : (wait ?? leaseWait)
        let handoff = Handoff()
        let holder = Task {
            do {
                try await client.withConnection { connection in
                    guard handoff.leased(connection) else { return }
                    await handoff.untilReleased()
                }
            } catch {
                handoff.failed(error)
            }
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled, handoff.timeOut() else { return }
            holder.cancel()
            self?.noticeNoConnection()
        }
        let connection: PostgresConnection
        do {
            connection = try await handoff.connection()
        } catch {
            timer.cancel()
            throw error
        }
        timer.cancel()
        defer { handoff.release() }
        return try await body(connection)
    }

    /// Runs one statement on `connection` so that it can be abandoned: if the database turns out to be unreachable
    /// while it runs, its caller gets `StorageUnavailable` at once and the statement is left to end on its own.
    func statement<T: Sendable>(on connection: PostgresConnection, _ run: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let outcome = FirstOutcome<T>()
        let slot = running.withLock { running -> Int in
            running.next += 1
            running.statements[running.next] = RunningStatement(connection: connection, since: .now) {
                outcome.fail(StorageUnavailable(reason: "the database stopped answering mid-statement"))
            }
            return running.next
        }
        defer { _ = running.withLock { $0.statements.removeValue(forKey: slot) } }
        return try await withCheckedThrowingContinuation { continuation in
            outcome.wait(continuation)
            Task { [self] in
                do {
                    outcome.succeed(try await run(connection))
                    answered()
                } catch {
                    // An error the server sent is an answer too: the database is there.
                    if (error as? PSQLError)?.serverInfo != nil { answered() }
                    outcome.fail(error)
                }
            }
        }
    }

    /// True when nothing has gone through for 3 s: an outage, not a pool that is merely busy (a busy pool still
    /// answers some statements), so only then are waits shortened and statements abandoned.
    var databaseDown: Bool { ContinuousClock.now - lastAnswer.withLock { $0 } > .seconds(3) }

    private func answered() {
        lastAnswer.withLock { $0 = .now }
        unreachable.withLock { $0 = false }
    }

    /// A wait for a connection ran out, or a readiness probe failed. If the database is down, waits are shortened
    /// and statements stuck on it are abandoned; either way a fresh pool may be tried.
    func noticeNoConnection() {
        if databaseDown {
            unreachable.withLock { $0 = true }
            abandonStatements(runningLongerThan: .seconds(1))
        }
        healSoon()
    }

    /// Closes the connections of the statements that have run longer than `age`, and fails their callers once the
    /// close is done (or after half a second, if it never is): the connection goes back to the pool closed.
    private func abandonStatements(runningLongerThan age: Duration) {
        let now = ContinuousClock.now
        let stuck = running.withLock { running in running.statements.values.filter { now - $0.since >= age } }
        for statement in stuck {
            let closing: EventLoopFuture<Void> = statement.connection.close()
            closing.whenComplete { _ in statement.abandon() }
            Task {
                try? await Task.sleep(for: .milliseconds(500))
                statement.abandon()
            }
        }
        if !stuck.isEmpty { logger.warning("database unreachable: statements in flight abandoned", metadata: ["count": "\(stuck.count)"]) }
    }

    /// `operation`'s value if it comes within `limit`, else nil at once: the operation is cancelled and left to
    /// end on its own (a statement on a connection that hangs is never waited for).
    static func within<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async -> T?) async -> T? {
        let first = FirstAnswer<T?>()
        return await withCheckedContinuation { continuation in
            first.wait(continuation)
            let work = Task { first.answer(await operation()) }
            Task {
                try? await Task.sleep(for: limit)
                work.cancel()
                first.answer(nil)
            }
        }
    }

    /// After a failed lease or probe, when no statement has gone through for 3 s (a busy pool still answers some): a
    /// fresh pool is tried, and replaces the current one (still backing off) if it answers. One try at a time, at
    /// most one a second, and one replacement in 30 s.
    func healSoon() {
        let now = ContinuousClock.now
        guard now - lastAnswer.withLock({ $0 }) > .seconds(3) else { return }
        let go = lastProbe.withLock { last -> Bool in
            if last.running { return false }
            if let probe = last.probe, now - probe < .seconds(1) { return false }
            if let replaced = last.replaced, now - replaced < .seconds(30) { return false }
            last.probe = now
            last.running = true
            return true
        }
        guard go else { return }
        Task {
            await heal()
            lastProbe.withLock { $0.running = false }
        }
    }

    func heal() async {
        let fresh = makeClient()
        let running = Task { await fresh.run() }
        let logger = logger
        let answers = await Self.within(.milliseconds(1500)) {
            (try? await fresh.query("SELECT 1", logger: logger).collect()) != nil
        } ?? false
        guard answers else {
            running.cancel()
            return
        }
        let old = current.withLock { current -> Task<Void, Never> in
            let old = current.running
            current = Current(client: fresh, running: running)
            return old
        }
        lastProbe.withLock { $0.replaced = .now }
        answered()
        logger.notice("the database answers again: connection pool renewed")
        // Leases already handed out by the old pool finish their statements; then it is shut down.
        Task {
            try? await Task.sleep(for: .seconds(60))
            old.cancel()
        }
    }
}

/// Hands a leased connection from the task holding the lease to the caller, unless the caller's wait ran out first.
private final class Handoff: Sendable {
    private enum State {
        case waiting(CheckedContinuation<PostgresConnection, any Error>?)
        case leased(PostgresConnection)
        case failed(any Error)
        case timedOut
        case released
    }

    private let state = Mutex<State>(.waiting(nil))
    private let released = Mutex<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func connection() async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<PostgresConnection, any Error>? = state.withLock { state in
                switch state {
                case .waiting: state = .waiting(continuation); return nil
                case .leased(let connection): return .success(connection)
                case .failed(let error): return .failure(error)
                case .timedOut, .released: return .failure(StorageUnavailable(reason: "no database connection in time"))
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// The lease arrived: false when the caller gave up meanwhile (the lease is let go at once).
    func leased(_ connection: PostgresConnection) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<PostgresConnection, any Error>?) in
            guard case .waiting(let waiter) = state else { return (false, nil) }
            state = .leased(connection)
            return (true, waiter)
        }
        waiter?.resume(returning: connection)
        return accepted
    }

    func failed(_ error: any Error) {
        let waiter = state.withLock { state -> CheckedContinuation<PostgresConnection, any Error>? in
            guard case .waiting(let waiter) = state else { return nil }
            state = .failed(error)
            return waiter
        }
        waiter?.resume(throwing: StorageUnavailable(reason: "the database could not be reached"))
    }

    /// The caller's wait ran out: true when no connection had arrived (the caller gets `StorageUnavailable`).
    func timeOut() -> Bool {
        let (timedOut, waiter) = state.withLock { state -> (Bool, CheckedContinuation<PostgresConnection, any Error>?) in
            guard case .waiting(let waiter) = state else { return (false, nil) }
            state = .timedOut
            return (true, waiter)
        }
        waiter?.resume(throwing: StorageUnavailable(reason: "no database connection in time"))
        return timedOut
    }

    func release() {
        let waiter = released.withLock { release -> CheckedContinuation<Void, Never>? in
            release.done = true
            defer { release.waiter = nil }
            return release.waiter
        }
        waiter?.resume()
    }

    func untilReleased() async {
        await withCheckedContinuation { continuation in
            let done = released.withLock { release -> Bool in
                if release.done { return true }
                release.waiter = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }
}

/// Resumes its waiter with the first answer given; later answers are dropped.
private final class FirstAnswer<T: Sendable>: Sendable {
    private let waiter = Mutex<CheckedContinuation<T, Never>?>(nil)

    func wait(_ continuation: CheckedContinuation<T, Never>) {
        waiter.withLock { $0 = continuation }
    }

    func answer(_ value: T) {
        waiter.withLock { $0.take() }?.resume(returning: value)
    }
}

/// Resumes its waiter with the first outcome given; later ones are dropped.
private final class FirstOutcome<T: Sendable>: Sendable {
    private let waiter = Mutex<(continuation: CheckedContinuation<T, any Error>?, early: Result<T, any Error>?)>((nil, nil))

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let early = waiter.withLock { state -> Result<T, any Error>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func succeed(_ value: T) { finish(.success(value)) }
    func fail(_ error: any Error) { finish(.failure(error)) }

    private func finish(_ result: Result<T, any Error>) {
        let continuation = waiter.withLock { state -> CheckedContinuation<T, any Error>? in
            if let continuation = state.continuation {
                state.continuation = nil
                state.early = result  // anything later is dropped
                return continuation
            }
            if state.early == nil { state.early = result }
            return nil
        }
        continuation?.resume(with: result)
    }
}
