import Foundation
import GRDB
import GatewayCore

/// The gauges' readings: the summary tables kept by migration 0003's triggers, and the head of two indexes.
extension SQLiteStore: MetricsStore {
    public func metricsReadings(stuckBefore: Date?) async throws -> MetricsReadings {
        try readSnapshot { db in
            var tenants: [String: [String: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT provider, state, n FROM tenant_counts") {
                tenants[row["provider"], default: [:]][row["state"]] = row["n"]
            }
            let work = Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT kind, n FROM job_counts").map {
                ($0["kind"] as String, $0["n"] as Int)
            })
            let deliveries = Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT status, n FROM delivery_counts").map {
                ($0["status"] as String, $0["n"] as Int)
            })
            // ORDER BY … LIMIT 1 reads the first entry of jobs_due and deliveries_by_status_age, whatever the size.
            let earliestWork = try Double.fetchOne(db, sql: "SELECT run_at FROM jobs ORDER BY run_at LIMIT 1")
            let oldestPending = try Double.fetchOne(
                db, sql: "SELECT created_at FROM deliveries WHERE status = 'pending' ORDER BY created_at LIMIT 1"
            )
            // A range of tenants_by_state_age, capped: a scrape's cost stays bounded however many wait.
            let stuck = try stuckBefore.map { cutoff in
                try Int.fetchOne(db, sql: """
                    SELECT COUNT(*) FROM (SELECT 1 FROM tenants WHERE state IN ('pending', 'action_required') AND state_changed_at < ? LIMIT ?)
                    """, arguments: [cutoff.unix, MetricsReadings.stuckCountCap]) ?? 0
            } ?? 0
            return MetricsReadings(
                tenants: tenants, queuedWork: work, deliveries: deliveries, earliestWorkAt: earliestWork.map(Date.init(unix:)),
                oldestPendingDeliveryAt: oldestPending.map(Date.init(unix:)), stuckTenants: stuck
            )
        }
    }
}
