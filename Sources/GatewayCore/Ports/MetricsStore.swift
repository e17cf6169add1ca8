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

    public init(
        tenants: [String: [String: Int]], queuedWork: [String: Int], deliveries: [String: Int], earliestWorkAt: Date?,
        oldestPendingDeliveryAt: Date?
    ) {
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
    func metricsReadings() async throws -> MetricsReadings
}
