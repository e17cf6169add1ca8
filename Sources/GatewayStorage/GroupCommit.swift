import Foundation
import GRDB
import GatewayCore
import Glibc
import Synchronization

/// Group commit: the store's writes that arrive while a transaction commits wait and go together in the next one,
/// each in its own savepoint, so a burst of small writes costs one commit (and one trip to the writer's thread)
/// between them. Each caller still waits for the commit that holds its write: nothing is acknowledged before it is
/// in the database. A write that throws has its savepoint rolled back and fails alone, exactly as its own
/// transaction would have; a commit that fails fails every write in it. Writes run one after another, in arrival
/// order, so each sees the ones before it as it would have in separate transactions.
///
/// The commits run on a thread of their own, never on Swift's cooperative threads. Under reads those threads are a
/// queue of request tasks, first in first out; a drain that ran there waited its turn twice per commit (to start, and
/// again after the writer's queue answered), and every webhook with it: intake fell from 2,000 to 120 a second beside
/// reads at 16 connections, p50 33 ms. Here a write waits for the commit only, and its caller's task for one turn.
/// The thread lingers a moment after the last batch (a steady trickle of writes does not start one per commit), then
/// ends, so an idle store holds no thread.
final class GroupCommit: @unchecked Sendable {
    typealias Write = @Sendable (Database) throws -> any Sendable
    private typealias Waiter = (write: Write, continuation: CheckedContinuation<any Sendable, any Error>)

    private let writer: any DatabaseWriter
    private let maxBatch: Int
    /// Guards `pending` and `running`; the drain thread waits on it while it lingers.
    private let condition = NSCondition()
    private var pending: [Waiter] = []
    private var running = false
    /// How long the drain thread waits for more writes before it ends.
    private let linger: TimeInterval
    /// False from a write that failed for want of disk (or I/O) until one succeeds: `/readyz` then says not ready.
    private let healthy = Mutex(true)

    var writesHealthy: Bool { healthy.withLock { $0 } }

    init(writer: any DatabaseWriter, maxBatch: Int = 256, linger: TimeInterval = 0.5) {
        self.writer = writer
        self.maxBatch = maxBatch
        self.linger = linger
    }

    /// Runs `body` in the next group transaction and returns its value once that transaction has committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let value: any Sendable
        do {
            value = try await enqueue(body)
            healthy.withLock { $0 = true }
        } catch {
            if SQLiteStore.isOutage(error) { healthy.withLock { $0 = false } }
            throw error
        }
        return value as! T  // swiftlint:disable:this force_cast - the value `body` made
    }

    private func enqueue<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> any Sendable {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            condition.lock()
            pending.append(({ db in try body(db) }, continuation))
            let starts = !running
            running = true
            condition.signal()
            condition.unlock()
            // Its own thread: outside any request's scope (its id, its span), since a drain commits other callers'
            // writes too, and off the cooperative threads (see the type's comment).
            if starts { startDrain() }
        }
    }

    /// Starts the drain on a new thread. Foundation's `Thread.start()` cannot say that the thread did not start (a
    /// limit on threads), and a drain that never ran would leave every write waiting for ever: `pthread_create` can,
    /// and then the drain runs as a task instead (its waits on the writer block a cooperative thread, as a last resort).
    private func startDrain() {
        let retained = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<GroupCommit>.fromOpaque(raw).takeRetainedValue().drain()
            return nil
        }, retained.toOpaque())
        if started == 0 {
            pthread_detach(thread)
        } else {
            retained.release()
            Task.detached { [self] in drain() }
        }
    }

    /// The next batch, waiting up to `linger` for one; empty (and `running` false) when none came.
    private func nextBatch() -> [Waiter] {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: linger)
        while pending.isEmpty {
            if !condition.wait(until: deadline), pending.isEmpty {
                running = false
                return []
            }
        }
        let batch = Array(pending.prefix(maxBatch))
        pending.removeFirst(batch.count)
        return batch
    }

    /// Commits batches until none has come for `linger`.
    private func drain() {
        while true {
            let batch = nextBatch()
            guard !batch.isEmpty else { return }
            let writes = batch.map(\.write)
            do {
                let results = try writer.write { db -> [Result<any Sendable, any Error>] in
                    // Alone, a write is its transaction: no savepoint needed (a throw rolls the transaction back).
                    if writes.count == 1 { return [.success(try writes[0](db))] }
                    return writes.map { write in
                        var result: Result<any Sendable, any Error> = .failure(CancellationError())
                        do {
                            try db.inSavepoint {
                                result = .success(try write(db))
                                return .commit
                            }
                        } catch {
                            result = .failure(error)
                        }
                        return result
                    }
                }
                for (waiter, result) in zip(batch, results) { waiter.continuation.resume(with: result) }
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
            }
        }
    }
}
