import Foundation

/// When queued work runs next: backoff with jitter while waiting, a daily re-check once onboarded.
public struct WorkSchedule: Sendable, Equatable {
    /// First status check after a tenant starts waiting on someone.
    public var firstCheck: TimeInterval = 30
    /// The longest wait between checks while waiting.
    public var maxCheckInterval: TimeInterval = 3600
    /// Re-check of an onboarded tenant whose readiness can lapse.
    public var maintenanceInterval: TimeInterval = 86_400
    /// First retry of a submission that failed transiently.
    public var firstRetry: TimeInterval = 5
    public var maxRetryInterval: TimeInterval = 3600
    /// ± this fraction of each delay is random, so tenants created together do not poll together.
    public var jitter: Double = 0.2
    /// The most a provider's `Retry-After` may delay work (`GATEWAY_RETRY_AFTER_CAP_SECONDS`): a hint of a year, or
    /// of infinity, must not park a tenant for good.
    public var maxRetryAfter: TimeInterval = Bounds.defaultRetryAfterCap

    public init() {}

    /// The delay before `plan` runs, given how many attempts the current waiting period has had.
    /// `unit` is a random value in 0..<1.
    public func delay(for plan: WorkPlan, attempts: Int, unit: Double) -> TimeInterval? {
        let base: TimeInterval
        let retryAfter: TimeInterval?
        switch plan {
        case .none:
            return nil
        case .submit(let hint):
            guard attempts > 0 else { return 0 }
            base = backoff(first: firstRetry, max: maxRetryInterval, step: attempts - 1)
            retryAfter = hint
        case .check(.awaiting, let hint):
            base = backoff(first: firstCheck, max: maxCheckInterval, step: attempts)
            retryAfter = hint
        case .check(.maintenance, let hint):
            base = maintenanceInterval
            retryAfter = hint
        }
        let jittered = base * (1 + jitter * (2 * unit - 1))
        return max(jittered, Bounds.interval(retryAfter, cap: maxRetryAfter) ?? 0)
    }

    private func backoff(first: TimeInterval, max maximum: TimeInterval, step: Int) -> TimeInterval {
        min(maximum, first * pow(2, Double(min(step, 30))))
    }
}
