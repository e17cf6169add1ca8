import Dispatch
import Foundation
import Synchronization

/// Work started in a task of its own, whose result one caller waits for at most so long. The work goes on either way:
/// a caller that stops waiting does not cancel it. The task hands its result over itself and the bound is a dispatch
/// timer, so the wait costs no task of its own (a create in flight holds one task, not three: `docs/performance.md`,
/// memory).
struct BoundedTask<Success: Sendable>: Sendable {
    let task: Task<Success, Never>
    private let handoff: Handoff<Success>

    init(_ work: @escaping @Sendable () async -> Success) {
        let handoff = Handoff<Success>()
        self.handoff = handoff
        task = Task {
            let value = await work()
            handoff.give(value)
            return value
        }
    }

    /// The work's value if it finishes within `seconds`, nil otherwise. One caller waits; a second gets nil at once.
    func value(within seconds: TimeInterval) async -> Success? {
        await handoff.wait(within: seconds)
    }
}

/// A value given once and taken by at most one waiter, who stops waiting at a deadline. A value given before the
/// wait is kept for it; one given after the deadline is dropped.
final class Handoff<T: Sendable>: Sendable {
    private enum State {
        case open
        /// With the timer that ends the wait, cancelled when the value comes first (so no timer outlives the wait).
        case waiting(CheckedContinuation<T?, Never>, DispatchSourceTimer?)
        case given(T)
        case closed
    }

    private let state = Mutex<State>(.open)

    /// Far beyond any wait the settings allow: a longer one (or an infinite one) has no timer at all.
    static var longestTimedWait: TimeInterval { 366 * 24 * 3600 }

    func give(_ value: T) {
        let waiter = state.withLock { state -> (CheckedContinuation<T?, Never>, DispatchSourceTimer?)? in
            switch state {
            case .open:
                state = .given(value)
                return nil
            case .waiting(let continuation, let timer):
                state = .closed
                return (continuation, timer)
            case .given, .closed:
                return nil
            }
        }
        guard let (continuation, timer) = waiter else { return }
        timer?.cancel()
        continuation.resume(returning: value)
    }

    @inline(never)
    func wait(within seconds: TimeInterval) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let bound = seconds.isNaN ? 0 : max(0, seconds)
            let ready = state.withLock { state -> T?? in
                switch state {
                case .given(let value):
                    state = .closed
                    return .some(value)
                case .open:
                    // Made and started under the lock, so `give` finds it to cancel; its handler takes the lock later,
                    // on a dispatch thread.
                    var timer: DispatchSourceTimer?
                    if bound < Self.longestTimedWait {
                        let source = DispatchSource.makeTimerSource(queue: .global())
                        source.schedule(deadline: .now() + bound)
                        source.setEventHandler { [weak self] in self?.expire() }
                        source.resume()
                        timer = source
                    }
                    state = .waiting(continuation, timer)
                    return nil
                case .waiting, .closed:
                    return .some(nil)
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func expire() {
        let waiter = state.withLock { state -> CheckedContinuation<T?, Never>? in
            guard case .waiting(let continuation, _) = state else { return nil }
            state = .closed
            return continuation
        }
        waiter?.resume(returning: nil)
    }
}
