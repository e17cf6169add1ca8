import Foundation
import GRDB
import GatewayCore

/// The outbox of outbound events.
extension SQLiteStore: DeliveryStore {
    public func claimDueDeliveries(now: Date, limit: Int, leaseUntil: Date) async throws -> [PendingDelivery] {
        try await writes.write { [self] db in
            guard try Double.fetchOne(db, sql: "SELECT disabled_at FROM events_endpoint WHERE id = 1") == nil else { return [] }
            let claimed = try Row.fetchAll(
                db,
                sql: """
                    UPDATE deliveries SET next_attempt_at = ?1
                    WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?2 ORDER BY event_seq LIMIT ?3)
                    RETURNING id, tenant_id, event_seq, attempts
                    """,
                arguments: [leaseUntil.unix, now.unix, limit]
            )
            return try claimed.compactMap { row -> PendingDelivery? in
                guard let eventRow = try Row.fetchOne(db, sql: "\(Self.eventColumns) WHERE e.seq = ?", arguments: [row["event_seq"] as Int64]) else {
                    return nil
                }
                return PendingDelivery(
                    id: row["id"], tenantID: row["tenant_id"], event: try event(from: eventRow), eventSeq: row["event_seq"], attempts: row["attempts"],
                    claimedUntil: leaseUntil
                )
            }
            .sorted { $0.eventSeq < $1.eventSeq }
        }
    }

    public func recordDeliveryAttempt(id: String, claimedUntil: Date, attempt: DeliveryAttempt, result: DeliveryResult) async throws -> Bool {
        try await writes.write { db in
            let (status, next, finished): (String, Double?, Double?) = switch result {
            case .delivered: ("delivered", nil, attempt.at.unix)
            case .retry(let at): ("pending", at.unix, nil)
            case .failed: ("failed", nil, attempt.at.unix)
            case .endpointGone: ("pending", attempt.at.unix, nil)
            }
            try db.execute(
                sql: """
                    UPDATE deliveries SET status = ?, next_attempt_at = ?, finished_at = ?, attempts = attempts + 1,
                        last_status_code = ?, last_error = ? WHERE id = ? AND status = 'pending' AND next_attempt_at = ?
                    """,
                arguments: [status, next, finished, attempt.statusCode, attempt.error, id, claimedUntil.unix]
            )
            guard db.changesCount == 1 else { return false }
            try db.execute(
                sql: "INSERT INTO delivery_attempts (delivery_id, at, status_code, duration_ms, error, excerpt) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [id, attempt.at.unix, attempt.statusCode, attempt.durationMilliseconds, attempt.error, attempt.excerpt]
            )
            return true
        }
    }

    public func renewDeliveries(ids: [String], claimedUntil: Date, until: Date) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        return try await writes.write { db in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            let held = try String.fetchAll(
                db, sql: "UPDATE deliveries SET next_attempt_at = ? WHERE status = 'pending' AND next_attempt_at = ? AND id IN (\(marks)) RETURNING id",
                arguments: StatementArguments([until.unix, claimedUntil.unix] + ids)
            )
            return Set(held)
        }
    }

    public func releaseDeliveries(ids: [String], now: Date) async throws {
        guard !ids.isEmpty else { return }
        try await writes.write { db in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            try db.execute(
                sql: "UPDATE deliveries SET next_attempt_at = ? WHERE status = 'pending' AND id IN (\(marks))",
                arguments: StatementArguments([now.unix] + ids)
            )
        }
    }

    public func deliveries(status: DeliveryRecord.Status?, tenantID: String?, limit: Int, before: String?) async throws -> Page<DeliveryRecord> {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let status { clauses.append("d.status = ?"); arguments += [status.rawValue] }
        if let tenantID { clauses.append("d.tenant_id = ?"); arguments += [tenantID] }
        if let before, let seq = Int64(before) { clauses.append("d.event_seq < ?"); arguments += [seq] }
        arguments += [limit + 1]
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let sql = """
            SELECT d.*, e.id AS event_id, e.type AS event_type FROM deliveries d JOIN tenant_events e ON e.seq = d.event_seq
            \(filter) ORDER BY d.event_seq DESC LIMIT ?
            """
        return try readSnapshot { [arguments] db in
            let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
            let page = Array(rows.prefix(limit))
            let next = rows.count > limit ? page.last.map { String($0["event_seq"] as Int64) } : nil
            return Page(items: try page.map { try Self.delivery(from: $0, db) }, next: next)
        }
    }

    public func delivery(id: String) async throws -> DeliveryRecord? {
        try readSnapshot { db in
            try Row.fetchOne(
                db,
                sql: "SELECT d.*, e.id AS event_id, e.type AS event_type FROM deliveries d JOIN tenant_events e ON e.seq = d.event_seq WHERE d.id = ?",
                arguments: [id]
            ).map { try Self.delivery(from: $0, db) }
        }
    }

    public func redeliver(id: String, now: Date) async throws -> Bool {
        try await writes.write { db in
            try db.execute(
                sql: "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, finished_at = NULL WHERE id = ? AND status <> 'pending'",
                arguments: [now.unix, id]
            )
            return db.changesCount > 0
        }
    }

    public func redeliverFailed(since: Date, now: Date) async throws -> Int {
        try await writes.write { db in
            try db.execute(
                sql: "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, finished_at = NULL WHERE status = 'failed' AND finished_at >= ?",
                arguments: [now.unix, since.unix]
            )
            return db.changesCount
        }
    }

    public func disableEventsEndpoint(at: Date, reason: String) async throws {
        try await writes.write { db in
            try db.execute(
                sql: "INSERT INTO events_endpoint (id, disabled_at, disabled_why) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET disabled_at = excluded.disabled_at, disabled_why = excluded.disabled_why",
                arguments: [at.unix, String(reason.prefix(200))]
            )
        }
    }

    public func enableEventsEndpoint() async throws -> Bool {
        try await writes.write { db in
            try db.execute(sql: "UPDATE events_endpoint SET disabled_at = NULL, disabled_why = NULL WHERE id = 1 AND disabled_at IS NOT NULL")
            return db.changesCount > 0
        }
    }

    public func deliveryStats(now: Date) async throws -> DeliveryStats {
        try readSnapshot { db in
            let counts = Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status").map {
                ($0["status"] as String, $0["n"] as Int)
            })
            let oldest = try Double.fetchOne(db, sql: "SELECT MIN(created_at) FROM deliveries WHERE status = 'pending'")
            let disabled = try Double.fetchOne(db, sql: "SELECT disabled_at FROM events_endpoint WHERE id = 1")
            return DeliveryStats(
                pending: counts["pending"] ?? 0, failed: counts["failed"] ?? 0, delivered: counts["delivered"] ?? 0,
                oldestPendingAge: oldest.map { max(0, now.unix - $0) }, endpointDisabledAt: disabled.map(Date.init(unix:))
            )
        }
    }

    static func delivery(from row: Row, _ db: Database) throws -> DeliveryRecord {
        let attempts = try Row.fetchAll(db, sql: "SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY id", arguments: [row["id"] as String]).map {
            DeliveryAttempt(at: Date(unix: $0["at"]), statusCode: $0["status_code"], durationMilliseconds: $0["duration_ms"], error: $0["error"], excerpt: $0["excerpt"])
        }
        return DeliveryRecord(
            id: row["id"], eventID: row["event_id"], eventType: TenantEvent.Kind(rawValue: row["event_type"]) ?? .stateChanged,
            tenantID: row["tenant_id"], status: DeliveryRecord.Status(rawValue: row["status"]) ?? .pending, attempts: attempts,
            nextAttemptAt: (row["next_attempt_at"] as Double?).map(Date.init(unix:)), createdAt: Date(unix: row["created_at"]),
            finishedAt: (row["finished_at"] as Double?).map(Date.init(unix:))
        )
    }
}
