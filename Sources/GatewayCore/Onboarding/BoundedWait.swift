import Foundation
import Synchronization

extension Task where Failure == Never {
    /// The task's value if it finishes within `seconds`, nil otherwise. The task goes on either way: a caller that
    /// stops waiting does not cancel the work it started.
    func value(within seconds: TimeInterval) async -> Success? {
        let answer = AnswerOnce<Success?>()
        return await withCheckedContinuation { continuation in
            answer.wait(continuation)
            let timer = Task<Void, Never> {
                try? await Task<Never, Never>.sleep(for: .seconds(max(0, seconds)))
                answer.give(nil)
            }
            Task<Void, Never> {
                let value = await self.value
                // The value first: a cancelled timer wakes at once and gives nil, which must find the answer given.
                answer.give(value)
                timer.cancel()
            }
        }
    }
}

/// Resumes a continuation with the first answer given; later answers are dropped.
final class AnswerOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

    func wait(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func give(_ value: T) {
        let waiting = continuation.withLock { current -> CheckedContinuation<T, Never>? in
            defer { current = nil }
            return current
        }
        waiting?.resume(returning: value)
    }
}
