import Foundation

/// What `/metrics` reads from the database at each scrape.
public struct MetricsReadings: Sendable, Equatable {
    /// provider → state → tenants.
    public var tenants: [String: [String: Int]]
    /// kind → queued work.
    public var queuedWork: [String: Int]
    /// status → deliveries.
    public var deliveries: [String: Int]
    /// When the earliest queued work is (or was) due.
    public var earliestWorkAt: Date?
    /// When the oldest pending delivery was created.
    public var oldestPendingDeliveryAt: Date?
    /// Tenants waiting (pending or action_required) since before the cutoff asked for, counted up to
    /// `MetricsReadings.stuckCountCap`; 0 when no cutoff was asked for.
    public var stuckTenants: Int
    public static let stuckCountCap = 100_000

    public init(
        tenants: [String: [String: Int]], queuedWork: [String: Int], deliveries: [String: Int], earliestWorkAt: Date?,
        oldestPendingDeliveryAt: Date?, stuckTenants: Int = 0
    ) {
        self.stuckTenants = stuckTenants
        self.tenants = tenants
        self.queuedWork = queuedWork
        self.deliveries = deliveries
        self.earliestWorkAt = earliestWorkAt
        self.oldestPendingDeliveryAt = oldestPendingDeliveryAt
    }
}

/// The gauges' source. A scrape costs the same at any size: counters the database keeps as rows change, and two
/// single-row index reads, never a count over a growing table (`OperationsStore.operationsStats` counts, for
/// `/admin/stats`).
public protocol MetricsStore: Sendable {
    /// `stuckBefore`: also count the tenants waiting since before then (`GATEWAY_STUCK_AFTER_SECONDS` ago).
    func metricsReadings(stuckBefore: Date?) async throws -> MetricsReadings
}

extension MetricsStore {
    public func metricsReadings() async throws -> MetricsReadings {
        try await metricsReadings(stuckBefore: nil)
    }
}
