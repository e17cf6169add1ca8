import GRDB
import GatewayCore
import Synchronization

/// Group commit: the store's writes that arrive while a transaction commits wait and go together in the next one,
/// each in its own savepoint, so a burst of small writes costs one commit (and one trip to the writer's thread)
/// between them. Each caller still waits for the commit that holds its write: nothing is acknowledged before it is
/// in the database. A write that throws has its savepoint rolled back and fails alone, exactly as its own
/// transaction would have; a commit that fails fails every write in it. Writes run one after another, in arrival
/// order, so each sees the ones before it as it would have in separate transactions.
final class GroupCommit: Sendable {
    typealias Write = @Sendable (Database) throws -> any Sendable
    private typealias Waiter = (write: Write, continuation: CheckedContinuation<any Sendable, any Error>)

    private struct State {
        var pending: [Waiter] = []
        var committing = false
    }

    private let writer: any DatabaseWriter
    private let maxBatch: Int
    private let state = Mutex(State())
    /// False from a write that failed for want of disk (or I/O) until one succeeds: `/readyz` then says not ready.
    private let healthy = Mutex(true)

    var writesHealthy: Bool { healthy.withLock { $0 } }

    init(writer: any DatabaseWriter, maxBatch: Int = 256) {
        self.writer = writer
        self.maxBatch = maxBatch
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
            let starts = state.withLock { state -> Bool in
                state.pending.append(({ db in try body(db) }, continuation))
                guard !state.committing else { return false }
                state.committing = true
                return true
            }
            // Detached: outside any request's scope (its id, its span), since the drain commits other callers' writes too.
            if starts { Task.detached { await self.drain() } }
        }
    }

    /// Commits batches until none is waiting.
    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Waiter] in
                let batch = Array(state.pending.prefix(maxBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.committing = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            let writes = batch.map(\.write)
            do {
                let results = try await writer.write { db -> [Result<any Sendable, any Error>] in
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
