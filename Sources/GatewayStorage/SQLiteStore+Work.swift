import Foundation
import GRDB
import GatewayCore

/// The durable queue and the webhook inbox.
extension SQLiteStore {
    func replaceWork(of tenantID: String, with work: ScheduledWork?, _ db: Database, now: Date) throws {
        try db.execute(cached: "DELETE FROM jobs WHERE tenant_id = ? AND kind IN ('submit', 'check')", arguments: [tenantID])
        guard let work else { return }
        let runAt = max(work.runAt, work.leasedUntil ?? work.runAt)
        try db.execute(
            cached: """
                INSERT INTO jobs (tenant_id, kind, run_at, attempts, lease_until, created_at, request_id, trace_parent)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [tenantID, work.kind.rawValue, runAt.unix, work.attempts, work.leasedUntil?.unix, now.unix, work.requestID, work.traceParent]
        )
    }

    public func receiveWebhook(tenantID: String, payload: Data, at: Date, bearsCredentials: Bool) async throws -> Bool {
        let entry = InboxEntry(
            tenantID: tenantID, hash: SecretBox.hash(payload), sealed: try box.seal(payload, context: "webhook:\(tenantID)"), at: at,
            bearsCredentials: bearsCredentials, requestID: RequestScope.requestID, traceParent: RequestScope.traceParent
        )
        return try await writes.write { db in try Self.store(db, entry) }
    }

    /// One webhook into the inbox with the work that processes it; false when the same payload was stored before.
    static func store(_ db: Database, _ entry: InboxEntry) throws -> Bool {
        try db.execute(
            cached: """
                INSERT OR IGNORE INTO webhook_inbox (tenant_id, payload_hash, payload_sealed, received_at, bears_credentials)
                VALUES (?, ?, ?, ?, ?)
                """,
            arguments: [entry.tenantID, entry.hash, entry.sealed, entry.at.unix, entry.bearsCredentials]
        )
        guard db.changesCount > 0 else { return false }
        try db.execute(
            cached: """
                INSERT INTO jobs (tenant_id, kind, inbox_id, run_at, attempts, created_at, request_id, trace_parent)
                VALUES (?, 'webhook', ?, ?, 0, ?, ?, ?)
                """,
            arguments: [entry.tenantID, db.lastInsertedRowID, entry.at.unix, entry.at.unix, entry.requestID, entry.traceParent]
        )
        return true
    }

    public func webhookPayload(inboxID: Int64) async throws -> Data? {
        try readNow { [self] db in
            guard let row = try Row.fetchOne(db, cached: "SELECT tenant_id, payload_sealed FROM webhook_inbox WHERE id = ?", arguments: [inboxID]),
                !(row["payload_sealed"] as String).isEmpty
            else { return nil }
            return try box.open(row["payload_sealed"], context: "webhook:\(row["tenant_id"] as String)")
        }
    }

    public func finishWebhook(inboxID: Int64, workID: Int64, outcome: String, at: Date) async throws {
        try await writes.write { db in
            // The payload (which may hold a sealed api_key) goes once processed; the hash stays to recognise repeats.
            try db.execute(
                cached: "UPDATE webhook_inbox SET processed_at = ?, outcome = ?, payload_sealed = '' WHERE id = ?",
                arguments: [at.unix, outcome, inboxID]
            )
            try db.execute(cached: "DELETE FROM jobs WHERE id = ?", arguments: [workID])
        }
    }

    public func queuedWebhooks(tenantID: String, excluding workID: Int64, receivedBy: Date, limit: Int) async throws -> [QueuedWebhook] {
        try readSnapshot { db in
            try Row.fetchAll(
                db,
                cached: """
                    SELECT j.id, j.inbox_id FROM jobs j JOIN webhook_inbox i ON i.id = j.inbox_id
                    WHERE j.tenant_id = ? AND j.kind = 'webhook' AND j.id <> ? AND i.received_at <= ? AND i.bears_credentials = 0
                        AND i.processed_at IS NULL
                    ORDER BY j.id LIMIT ?
                    """,
                arguments: [tenantID, workID, receivedBy.unix, max(0, limit)]
            ).map { row in QueuedWebhook(inboxID: row["inbox_id"], workID: row["id"]) }
        }
    }

    public func finishWebhooks(_ webhooks: [(inboxID: Int64, workID: Int64)], outcome: String, at: Date, lease: TenantLease) async throws {
        try await writes.write { db in
            try Self.requireHeld(lease, db)
            for webhook in webhooks {
                // Only the tenant's own: a pair naming another tenant's inbox or job changes nothing.
                try db.execute(
                    cached: "UPDATE webhook_inbox SET processed_at = ?, outcome = ?, payload_sealed = '' WHERE id = ? AND tenant_id = ? AND processed_at IS NULL",
                    arguments: [at.unix, outcome, webhook.inboxID, lease.tenantID]
                )
                try db.execute(cached: "DELETE FROM jobs WHERE id = ? AND tenant_id = ?", arguments: [webhook.workID, lease.tenantID])
            }
        }
    }

    public func claimDueWork(
        now: Date, limit: Int, leaseUntil: Date, owner: String, quotas: [ProviderKind: Int]? = nil
    ) async throws -> [WorkItem] {
        try await writes.write { db in
            // Due work of tenants nobody holds; a tenant's other due items wait for its lease, so they run one at a time.
            let candidates = try Row.fetchAll(
                db,
                cached: """
                    SELECT j.id, j.tenant_id, j.kind, j.attempts, j.inbox_id, j.request_id, j.trace_parent, t.provider FROM jobs j JOIN tenants t ON t.id = j.tenant_id
                    WHERE j.run_at <= ?1 AND (t.lease_until IS NULL OR t.lease_until <= ?1)
                    ORDER BY j.run_at, j.id LIMIT ?2
                    """,
                arguments: [now.unix, limit * 8]
            )
            var items: [WorkItem] = []
            var tenants = Set<String>()
            var left = quotas
            for row in candidates where items.count < limit {
                let tenantID: String = row["tenant_id"]
                guard let kind = WorkKind(rawValue: row["kind"]), !tenants.contains(tenantID) else { continue }
                if let provider = ProviderKind(rawValue: row["provider"]), let quota = left?[provider] {
                    guard quota > 0 else { continue }
                    left?[provider] = quota - 1
                }
                tenants.insert(tenantID)
                guard let lease = try Row.fetchOne(
                    db,
                    cached: """
                        UPDATE tenants SET lease_owner = ?, lease_until = ?, lease_token = lease_token + 1 WHERE id = ?
                        RETURNING lease_token, generation
                        """,
                    arguments: [owner, leaseUntil.unix, tenantID]
                ) else { continue }
                try db.execute(
                    cached: "UPDATE jobs SET run_at = ?1, lease_until = ?1, attempts = attempts + 1 WHERE id = ?2",
                    arguments: [leaseUntil.unix, row["id"] as Int64]
                )
                items.append(WorkItem(
                    id: row["id"], tenantID: tenantID, kind: kind, attempts: (row["attempts"] as Int) + 1, inboxID: row["inbox_id"],
                    lease: TenantLease(tenantID: tenantID, token: lease["lease_token"], generation: lease["generation"]), requestID: row["request_id"], traceParent: row["trace_parent"]
                ))
            }
            return items
        }
    }

    public func reschedule(workID: Int64, runAt: Date, lastError: String) async throws {
        try await writes.write { db in
            try db.execute(
                cached: "UPDATE jobs SET run_at = ?, lease_until = NULL, last_error = ? WHERE id = ?",
                arguments: [runAt.unix, String(lastError.prefix(500)), workID]
            )
        }
    }
}

/// A webhook as the inbox stores it: sealed, with the hash that recognises a repeat.
struct InboxEntry: Sendable {
    var tenantID: String
    var hash: Data
    var sealed: String
    var at: Date
    var bearsCredentials: Bool
    /// Captured by the caller: the group commit runs the write in another task.
    var requestID: String?
    var traceParent: String?
}
