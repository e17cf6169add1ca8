import Foundation

/// An event due for delivery to the partner app's endpoint.
public struct PendingDelivery: Sendable, Equatable {
    public var id: String
    public var tenantID: String
    public var event: TenantEvent
    public var eventSeq: Int64
    /// Attempts before this one.
    public var attempts: Int
    /// The claim: until when this holder has the delivery. It is also the fencing token: renewals move it, and a write
    /// that names another value (the claim ran out and someone else took the delivery) changes nothing.
    public var claimedUntil: Date

    public init(id: String, tenantID: String, event: TenantEvent, eventSeq: Int64, attempts: Int, claimedUntil: Date = .distantPast) {
        self.id = id
        self.tenantID = tenantID
        self.event = event
        self.eventSeq = eventSeq
        self.attempts = attempts
        self.claimedUntil = claimedUntil
    }
}

/// One try at delivering, as recorded for operators.
public struct DeliveryAttempt: Sendable, Equatable {
    public var at: Date
    public var statusCode: Int?
    public var durationMilliseconds: Double
    public var error: String?
    /// The first characters of the answer, never more.
    public var excerpt: String?

    public init(at: Date, statusCode: Int?, durationMilliseconds: Double, error: String?, excerpt: String?) {
        self.at = at
        self.statusCode = statusCode
        self.durationMilliseconds = durationMilliseconds
        self.error = error
        self.excerpt = excerpt
    }
}

/// What an attempt means for its delivery.
public enum DeliveryResult: Sendable, Equatable {
    case delivered
    case retry(at: Date)
    case failed
    /// The endpoint answered 410 Gone: it is disabled and this delivery waits, untouched, until it is enabled.
    case endpointGone
}

/// A delivery as operators see it.
public struct DeliveryRecord: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable {
        case pending, delivered, failed
    }

    public var id: String
    public var eventID: String
    public var eventType: TenantEvent.Kind
    public var tenantID: String
    public var status: Status
    public var attempts: [DeliveryAttempt]
    public var nextAttemptAt: Date?
    public var createdAt: Date
    public var finishedAt: Date?

    public init(
        id: String, eventID: String, eventType: TenantEvent.Kind, tenantID: String, status: Status, attempts: [DeliveryAttempt],
        nextAttemptAt: Date?, createdAt: Date, finishedAt: Date?
    ) {
        self.id = id
        self.eventID = eventID
        self.eventType = eventType
        self.tenantID = tenantID
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }
}

/// The queue's state, for operators and metrics.
public struct DeliveryStats: Sendable, Equatable {
    public var pending: Int
    public var failed: Int
    public var delivered: Int
    /// Age of the oldest pending delivery.
    public var oldestPendingAge: TimeInterval?
    public var endpointDisabledAt: Date?

    public init(pending: Int, failed: Int, delivered: Int, oldestPendingAge: TimeInterval?, endpointDisabledAt: Date?) {
        self.pending = pending
        self.failed = failed
        self.delivered = delivered
        self.oldestPendingAge = oldestPendingAge
        self.endpointDisabledAt = endpointDisabledAt
    }
}

/// The outbox of outbound events and its attempts. Deliveries are created by the store together with the
/// events they carry.
public protocol DeliveryStore: Sendable {
    /// Due pending deliveries, oldest event first, leased until `leaseUntil`; none while the endpoint is disabled.
    func claimDueDeliveries(now: Date, limit: Int, leaseUntil: Date) async throws -> [PendingDelivery]
    /// Records an attempt, fenced by the claim: false (and nothing written) when the delivery is no longer claimed
    /// until `claimedUntil` (its claim ran out and another holder took it, or an operator queued it again).
    @discardableResult
    func recordDeliveryAttempt(id: String, claimedUntil: Date, attempt: DeliveryAttempt, result: DeliveryResult) async throws -> Bool
    /// Extends the claims of deliveries still held (`claimedUntil` as claimed) to `until`; answers the ids still held.
    func renewDeliveries(ids: [String], claimedUntil: Date, until: Date) async throws -> Set<String>
    /// Hands claimed deliveries that were not attempted back to the queue, due at `now`.
    func releaseDeliveries(ids: [String], now: Date) async throws
    func deliveries(status: DeliveryRecord.Status?, tenantID: String?, limit: Int, before: String?) async throws -> Page<DeliveryRecord>
    func delivery(id: String) async throws -> DeliveryRecord?
    /// Queues a delivered or failed delivery again (same event, same id); false when there is none or it is pending.
    func redeliver(id: String, now: Date) async throws -> Bool
    /// Queues every delivery that failed since `since` again; returns how many.
    func redeliverFailed(since: Date, now: Date) async throws -> Int
    func disableEventsEndpoint(at: Date, reason: String) async throws
    /// False when it was not disabled.
    func enableEventsEndpoint() async throws -> Bool
    func deliveryStats(now: Date) async throws -> DeliveryStats
}

/// When a failed delivery is tried again: by default about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after each
/// failure (±10 % jitter, never sooner than the receiver's Retry-After), then it fails for good.
public enum DeliverySchedule {
    public static let delays: [TimeInterval] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000]

    /// `failedAttempts` counts the failures so far, this one included; nil means give up.
    public static func nextAttempt(
        after failedAttempts: Int, now: Date, retryAfter: TimeInterval?, unit: Double, delays: [TimeInterval] = delays
    ) -> Date? {
        guard failedAttempts >= 1, failedAttempts <= delays.count else { return nil }
        let base = delays[failedAttempts - 1]
        let jittered = base * (1 + 0.1 * (2 * unit - 1))
        return now.addingTimeInterval(max(jittered, Bounds.interval(retryAfter, cap: 86_400) ?? 0))
    }
}
