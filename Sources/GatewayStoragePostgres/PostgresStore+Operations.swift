import Foundation
import GatewayCore
import GatewayStorage
import PostgresNIO

/// The outbox of outbound events, shared by every replica.
extension PostgresStore: DeliveryStore {
    public func claimDueDeliveries(now: Date, limit: Int, leaseUntil: Date) async throws -> [PendingDelivery] {
        // Disabled by any replica that met 410 Gone: the flag is a row every replica reads.
        guard try await row("SELECT 1 AS one FROM events_endpoint WHERE id = 1 AND disabled_at IS NOT NULL") == nil else { return [] }
        let rows = try await rows(
            """
            WITH claimed AS (
                UPDATE deliveries SET next_attempt_at = $1
                WHERE id IN (
                    SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $2 ORDER BY event_seq LIMIT $3
                    FOR UPDATE SKIP LOCKED)
                RETURNING id, event_seq, attempts)
            SELECT c.id AS delivery_id, c.attempts AS delivery_attempts, e.*, b.tenant AS base_tenant
            FROM claimed c JOIN tenant_events e ON e.seq = c.event_seq LEFT JOIN tenant_events b ON b.seq = e.base_seq
            ORDER BY e.seq
            """,
            [leaseUntil.unix, now.unix, limit]
        )
        return try rows.map { row in
            PendingDelivery(
                id: try row.get("delivery_id"), tenantID: try row.get("tenant_id"), event: try event(from: row), eventSeq: try row.get("seq"),
                attempts: try row.get("delivery_attempts"), claimedUntil: leaseUntil
            )
        }
    }

    public func recordDeliveryAttempt(id: String, claimedUntil: Date, attempt: DeliveryAttempt, result: DeliveryResult) async throws -> Bool {
        let (status, next, finished): (String, Double?, Double?) = switch result {
        case .delivered: ("delivered", nil, attempt.at.unix)
        case .retry(let at): ("pending", at.unix, nil)
        case .failed: ("failed", nil, attempt.at.unix)
        case .endpointGone: ("pending", attempt.at.unix, nil)
        }
        return try await transaction { connection in
            // Fenced by the claim: a replica whose claim ran out while it was sending (another replica took the
            // delivery since) must not write over what the other recorded, e.g. `delivered` back to `pending`.
            let updated = try await self.rows(
                """
                UPDATE deliveries SET status = $1, next_attempt_at = $2, finished_at = $3, attempts = attempts + 1,
                    last_status_code = $4, last_error = $5 WHERE id = $6 AND status = 'pending' AND next_attempt_at = $7 RETURNING 1
                """,
                [status, next, finished, attempt.statusCode, attempt.error, id, claimedUntil.unix], on: connection
            )
            guard !updated.isEmpty else { return false }
            try await self.rows(
                "INSERT INTO delivery_attempts (delivery_id, at, status_code, duration_ms, error, excerpt) VALUES ($1, $2, $3, $4, $5, $6)",
                [id, attempt.at.unix, attempt.statusCode, attempt.durationMilliseconds, attempt.error, attempt.excerpt], on: connection
            )
            return true
        }
    }

    public func renewDeliveries(ids: [String], claimedUntil: Date, until: Date) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let rows = try await rows(
            "UPDATE deliveries SET next_attempt_at = $1 WHERE status = 'pending' AND next_attempt_at = $2 AND id = ANY($3) RETURNING id",
            [until.unix, claimedUntil.unix, ids]
        )
        return Set(try rows.map { try $0.get("id", String.self) })
    }

    public func releaseDeliveries(ids: [String], now: Date) async throws {
        guard !ids.isEmpty else { return }
        try await rows("UPDATE deliveries SET next_attempt_at = $1 WHERE status = 'pending' AND id = ANY($2)", [now.unix, ids])
    }

    public func deliveries(status: DeliveryRecord.Status?, tenantID: String?, limit: Int, before: String?) async throws -> Page<DeliveryRecord> {
        let rows = try await rows(
            """
            SELECT d.*, e.id AS event_id, e.type AS event_type FROM deliveries d JOIN tenant_events e ON e.seq = d.event_seq
            WHERE ($1::text IS NULL OR d.status = $1) AND ($2::text IS NULL OR d.tenant_id = $2) AND ($3::bigint IS NULL OR d.event_seq < $3)
            ORDER BY d.event_seq DESC LIMIT $4
            """,
            [status?.rawValue, tenantID, before.flatMap { Int64($0) }, limit + 1]
        )
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? try page.last.map { String(try $0.get("event_seq", Int64.self)) } : nil
        var records: [DeliveryRecord] = []
        for row in page { records.append(try await delivery(from: row)) }
        return Page(items: records, next: next)
    }

    public func delivery(id: String) async throws -> DeliveryRecord? {
        guard let row = try await row(
            "SELECT d.*, e.id AS event_id, e.type AS event_type FROM deliveries d JOIN tenant_events e ON e.seq = d.event_seq WHERE d.id = $1", [id]
        ) else { return nil }
        return try await delivery(from: row)
    }

    public func redeliver(id: String, now: Date) async throws -> Bool {
        try await !rows(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, finished_at = NULL WHERE id = $2 AND status <> 'pending' RETURNING 1",
            [now.unix, id]
        ).isEmpty
    }

    public func redeliverFailed(since: Date, now: Date) async throws -> Int {
        try await rows(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, finished_at = NULL WHERE status = 'failed' AND finished_at >= $2 RETURNING 1",
            [now.unix, since.unix]
        ).count
    }

    public func disableEventsEndpoint(at: Date, reason: String) async throws {
        try await rows(
            """
            INSERT INTO events_endpoint (id, disabled_at, disabled_why) VALUES (1, $1, $2)
            ON CONFLICT (id) DO UPDATE SET disabled_at = excluded.disabled_at, disabled_why = excluded.disabled_why
            """,
            [at.unix, String(reason.prefix(200))]
        )
    }

    public func enableEventsEndpoint() async throws -> Bool {
        try await !rows(
            "UPDATE events_endpoint SET disabled_at = NULL, disabled_why = NULL WHERE id = 1 AND disabled_at IS NOT NULL RETURNING 1"
        ).isEmpty
    }

    public func deliveryStats(now: Date) async throws -> DeliveryStats {
        var counts: [String: Int] = [:]
        for row in try await rows("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status") {
            counts[try row.get("status")] = try row.get("n", Int.self)
        }
        let oldest = try await row("SELECT MIN(created_at) AS oldest FROM deliveries WHERE status = 'pending'")?.get("oldest", Double?.self)
        let disabled = try await row("SELECT disabled_at FROM events_endpoint WHERE id = 1")?.get("disabled_at", Double?.self)
        return DeliveryStats(
            pending: counts["pending"] ?? 0, failed: counts["failed"] ?? 0, delivered: counts["delivered"] ?? 0,
            oldestPendingAge: oldest.map { max(0, now.unix - $0) }, endpointDisabledAt: disabled.map(Date.init(unix:))
        )
    }

    func delivery(from row: PostgresRandomAccessRow) async throws -> DeliveryRecord {
        let attempts = try await rows("SELECT * FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id", [try row.get("id", String.self)]).map {
            DeliveryAttempt(
                at: Date(unix: try $0.get("at")), statusCode: try $0.get("status_code", Int?.self), durationMilliseconds: try $0.get("duration_ms"),
                error: try $0.get("error"), excerpt: try $0.get("excerpt")
            )
        }
        return DeliveryRecord(
            id: try row.get("id"), eventID: try row.get("event_id"),
            eventType: TenantEvent.Kind(rawValue: try row.get("event_type")) ?? .stateChanged,
            tenantID: try row.get("tenant_id"), status: DeliveryRecord.Status(rawValue: try row.get("status")) ?? .pending, attempts: attempts,
            nextAttemptAt: try row.get("next_attempt_at", Double?.self).map(Date.init(unix:)), createdAt: Date(unix: try row.get("created_at")),
            finishedAt: try row.get("finished_at", Double?.self).map(Date.init(unix:))
        )
    }
}

/// Read models for operators. Backups are PostgreSQL's own (`pg_dump`).
extension PostgresStore: OperationsStore {
    public func searchTenants(q: String?, state: TenantState?, provider: ProviderKind?, limit: Int, before: String?) async throws -> Page<Tenant> {
        let tenants = try await rows(
            """
            SELECT * FROM tenants
            WHERE ($1::text IS NULL OR external_id = $1 OR lower((profile::jsonb) ->> 'email') = lower($1)
                    OR ((profile::jsonb) -> 'company' ->> 'tax_id') = $1)
                AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR provider = $3) AND ($4::text IS NULL OR id < $4)
            ORDER BY id DESC LIMIT $5
            """,
            [q, state?.rawValue, provider?.rawValue, before, limit + 1]
        ).map(tenant(from:))
        let page = Array(tenants.prefix(limit))
        return Page(items: page, next: tenants.count > limit ? page.last?.id : nil)
    }

    public func operationsStats(now: Date, stuckAfter: TimeInterval) async throws -> OperationsStats {
        var tenants: [String: [String: Int]] = [:]
        for row in try await rows("SELECT provider, state, COUNT(*) AS n FROM tenants GROUP BY provider, state") {
            tenants[try row.get("provider"), default: [:]][try row.get("state")] = try row.get("n", Int.self)
        }
        var work: [String: Int] = [:]
        for row in try await rows("SELECT kind, COUNT(*) AS n FROM jobs GROUP BY kind") {
            work[try row.get("kind")] = try row.get("n", Int.self)
        }
        let oldestDue = try await row("SELECT MIN(run_at) AS due FROM jobs WHERE run_at <= $1", [now.unix])?.get("due", Double?.self)
        let cutoff = now.unix - stuckAfter
        let stuck = "FROM tenants WHERE state IN ('pending', 'action_required') AND state_changed_at < $1"
        let stuckCount = try await row("SELECT COUNT(*) AS n \(stuck)", [cutoff])?.get("n", Int.self) ?? 0
        let sample = try await rows("SELECT id \(stuck) ORDER BY state_changed_at LIMIT 20", [cutoff]).map { try $0.get("id", String.self) }
        return OperationsStats(
            tenants: tenants, queuedWork: work, oldestDueSeconds: oldestDue.map { max(0, now.unix - $0) }, stuckCount: stuckCount,
            stuckSample: sample
        )
    }

    public func queued(tenantID: String) async throws -> [QueuedWork] {
        try await rows("SELECT kind, run_at, attempts, last_error FROM jobs WHERE tenant_id = $1 ORDER BY run_at", [tenantID]).compactMap {
            guard let kind = WorkKind(rawValue: try $0.get("kind")) else { return nil }
            return QueuedWork(kind: kind, runAt: Date(unix: try $0.get("run_at")), attempts: try $0.get("attempts"), lastError: try $0.get("last_error"))
        }
    }

    public func audit(tenantID: String?, limit: Int, before: Int64?) async throws -> Page<(id: Int64, entry: AuditEntry)> {
        let rows = try await rows(
            "SELECT * FROM audit_log WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            [tenantID, before, limit + 1]
        )
        let page = try rows.prefix(limit).map { row in
            (
                id: try row.get("id", Int64.self),
                entry: AuditEntry(
                    at: Date(unix: try row.get("at")), actor: try row.get("actor"), action: try row.get("action"), tenantID: try row.get("tenant_id"),
                    details: try decode([String: String].self, try row.get("details")) ?? [:]
                )
            )
        }
        return Page(items: page, next: rows.count > limit ? page.last.map { String($0.id) } : nil)
    }

    public var backupAdvice: String? {
        "This gateway runs on PostgreSQL: back the database up with pg_dump (pg_dump --format=custom \"$DATABASE\" > gateway.dump), "
            + "or the backups of the service that hosts it. See docs/operations.md."
    }

    public func backup(to path: String) async throws {
        throw PostgresStoreError(backupAdvice ?? "")
    }
}

/// The gauges' readings: the spread counters of migration 0001, added up, and the head of two indexes.
extension PostgresStore: MetricsStore {
    public func metricsReadings(stuckBefore: Date?) async throws -> MetricsReadings {
        var tenants: [String: [String: Int]] = [:]
        for row in try await rows("SELECT provider, state, SUM(n)::bigint AS n FROM tenant_counts GROUP BY provider, state") {
            tenants[try row.get("provider"), default: [:]][try row.get("state")] = try row.get("n", Int.self)
        }
        var work: [String: Int] = [:]
        for row in try await rows("SELECT kind, SUM(n)::bigint AS n FROM job_counts GROUP BY kind") {
            work[try row.get("kind")] = try row.get("n", Int.self)
        }
        var deliveries: [String: Int] = [:]
        for row in try await rows("SELECT status, SUM(n)::bigint AS n FROM delivery_counts GROUP BY status") {
            deliveries[try row.get("status")] = try row.get("n", Int.self)
        }
        let earliestWork = try await row("SELECT run_at FROM jobs ORDER BY run_at LIMIT 1")?.get("run_at", Double.self)
        let oldestPending = try await row(
            "SELECT created_at FROM deliveries WHERE status = 'pending' ORDER BY created_at LIMIT 1"
        )?.get("created_at", Double.self)
        // A range of tenants_by_state_age, capped: a scrape's cost stays bounded however many wait.
        var stuck = 0
        if let stuckBefore {
            stuck = try await row(
                """
                SELECT COUNT(*) AS n FROM (SELECT 1 FROM tenants WHERE state IN ('pending', 'action_required') AND state_changed_at < $1 LIMIT $2) AS waiting
                """,
                [stuckBefore.unix, MetricsReadings.stuckCountCap]
            )?.get("n", Int.self) ?? 0
        }
        return MetricsReadings(
            tenants: tenants, queuedWork: work, deliveries: deliveries, earliestWorkAt: earliestWork.map(Date.init(unix:)),
            oldestPendingDeliveryAt: oldestPending.map(Date.init(unix:)), stuckTenants: stuck
        )
    }
}

/// Pruning by age, a batch per statement.
extension PostgresStore: RetentionStore {
    public func pruneDeliveries(finishedBefore before: Date, limit: Int) async throws -> Int {
        try await rows(
            """
            DELETE FROM deliveries WHERE id IN (
                SELECT id FROM deliveries WHERE status IN ('delivered', 'failed') AND finished_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING 1
            """,
            [before.unix, limit]
        ).count
    }

    public func pruneAuditEntries(before: Date, limit: Int) async throws -> Int {
        try await rows(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1",
            [before.unix, limit]
        ).count
    }

    public func pruneProcessedWebhooks(processedBefore before: Date, limit: Int) async throws -> Int {
        try await rows(
            """
            DELETE FROM webhook_inbox WHERE id IN (
                SELECT id FROM webhook_inbox WHERE processed_at IS NOT NULL AND processed_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING 1
            """,
            [before.unix, limit]
        ).count
    }

    public func pruneIdempotencyKeys(createdBefore before: Date, limit: Int) async throws -> Int {
        try await rows(
            """
            DELETE FROM idempotency_keys WHERE (scope, key) IN (
                SELECT scope, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING 1
            """,
            [before.unix, limit]
        ).count
    }
}

extension PostgresStore: EventFeed {
    public func eventSequence(id: String) async throws -> Int64? {
        try await row("SELECT seq FROM tenant_events WHERE id = $1", [id])?.get("seq", Int64.self)
    }
}

/// Key rotation, in small transactions, as on SQLite.
extension PostgresStore {
    static let sealedColumns: [(table: String, key: String, keyType: String, column: String, context: @Sendable (String, String?) -> String)] = [
        ("tenant_credentials", "tenant_id", "text", "sealed", { key, _ in "credentials:\(key)" }),
        ("tenant_credentials", "tenant_id", "text", "token_sealed", { key, _ in "access-token:\(key)" }),
        ("tenants", "id", "text", "webhook_token_sealed", { key, _ in "webhook-token:\(key)" }),
        ("webhook_inbox", "id", "bigint", "payload_sealed", { _, tenant in "webhook:\(tenant ?? "")" }),
        ("gateway_secrets", "name", "text", "sealed", { key, _ in "gateway-secret:\(key)" }),
    ]

    public func resealWithNewestKey(batchSize: Int = 200) async throws -> [String: Int] {
        var moved: [String: Int] = [:]
        let current = box.currentKeyID
        for column in Self.sealedColumns {
            let tenantColumn = column.table == "webhook_inbox" ? "tenant_id" : "NULL::text"
            while true {
                let count = try await transaction { connection -> Int in
                    let rows = try await self.rows(
                        """
                        SELECT \(column.key)::text AS key, \(tenantColumn) AS tenant, \(column.column) AS sealed FROM \(column.table)
                        WHERE \(column.column) IS NOT NULL AND \(column.column) <> '' AND \(column.column) NOT LIKE 'v1.' || $1 || '.%'
                        LIMIT $2 FOR NO KEY UPDATE
                        """,
                        [current, batchSize], on: connection
                    )
                    for row in rows {
                        let key = try row.get("key", String.self)
                        let context = column.context(key, try row.get("tenant", String?.self))
                        let plaintext = try self.box.open(try row.get("sealed", String.self), context: context)
                        try await self.rows(
                            "UPDATE \(column.table) SET \(column.column) = $1 WHERE \(column.key) = $2::\(column.keyType)",
                            [try self.box.seal(plaintext, context: context), key], on: connection
                        )
                    }
                    if column.table == "tenant_credentials" {
                        try await self.rows("UPDATE tenant_credentials SET key_id = $1 WHERE key_id <> $1", [current], on: connection)
                    }
                    return rows.count
                }
                moved[column.table, default: 0] += count
                if count < batchSize { break }
            }
        }
        return moved
    }
}
