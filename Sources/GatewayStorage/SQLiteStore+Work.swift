import Foundation
import GRDB
import GatewayCore

/// The durable queue and the webhook inbox.
extension SQLiteStore {
    func replaceWork(of tenantID: String, with work: ScheduledWork?, _ db: Database, now: Date) throws {
        try db.execute(sql: "DELETE FROM jobs WHERE tenant_id = ? AND kind IN ('submit', 'check')", arguments: [tenantID])
        guard let work else { return }
        let runAt = max(work.runAt, work.leasedUntil ?? work.runAt)
        try db.execute(
            sql: "INSERT INTO jobs (tenant_id, kind, run_at, attempts, lease_until, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [tenantID, work.kind.rawValue, runAt.unix, work.attempts, work.leasedUntil?.unix, now.unix]
        )
    }

    public func receiveWebhook(tenantID: String, payload: Data, at: Date) async throws -> Bool {
        let sealed = try box.seal(payload, context: "webhook:\(tenantID)")
        return try await pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO webhook_inbox (tenant_id, payload_hash, payload_sealed, received_at) VALUES (?, ?, ?, ?)",
                arguments: [tenantID, SecretBox.hash(payload), sealed, at.unix]
            )
            guard db.changesCount > 0 else { return false }
            try db.execute(
                sql: "INSERT INTO jobs (tenant_id, kind, inbox_id, run_at, attempts, created_at) VALUES (?, 'webhook', ?, ?, 0, ?)",
                arguments: [tenantID, db.lastInsertedRowID, at.unix, at.unix]
            )
            return true
        }
    }

    public func webhookPayload(inboxID: Int64) async throws -> Data? {
        try await pool.read { [self] db in
            guard let row = try Row.fetchOne(db, sql: "SELECT tenant_id, payload_sealed FROM webhook_inbox WHERE id = ?", arguments: [inboxID]) else {
                return nil
            }
            return try box.open(row["payload_sealed"], context: "webhook:\(row["tenant_id"] as String)")
        }
    }

    public func finishWebhook(inboxID: Int64, workID: Int64, outcome: String, at: Date) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE webhook_inbox SET processed_at = ?, outcome = ? WHERE id = ?", arguments: [at.unix, outcome, inboxID])
            try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [workID])
        }
    }

    public func claimDueWork(now: Date, limit: Int, leaseUntil: Date) async throws -> [WorkItem] {
        try await pool.write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    UPDATE jobs SET run_at = ?1, lease_until = ?1, attempts = attempts + 1
                    WHERE id IN (SELECT id FROM jobs WHERE run_at <= ?2 ORDER BY run_at LIMIT ?3)
                    RETURNING id, tenant_id, kind, attempts, inbox_id
                    """,
                arguments: [leaseUntil.unix, now.unix, limit]
            )
            return rows.compactMap { row in
                guard let kind = WorkKind(rawValue: row["kind"]) else { return nil }
                return WorkItem(id: row["id"], tenantID: row["tenant_id"], kind: kind, attempts: row["attempts"], inboxID: row["inbox_id"])
            }
        }
    }

    public func reschedule(workID: Int64, runAt: Date, lastError: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE jobs SET run_at = ?, lease_until = NULL, last_error = ? WHERE id = ?",
                arguments: [runAt.unix, String(lastError.prefix(500)), workID]
            )
        }
    }
}
