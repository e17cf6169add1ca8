import Foundation
import GRDB
import GatewayCore

/// Read models for operators, and the online backup.
extension SQLiteStore: OperationsStore {
    public func searchTenants(q: String?, state: TenantState?, provider: ProviderKind?, limit: Int, before: String?) async throws -> Page<Tenant> {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let q {
            clauses.append("(external_id = ? OR lower(json_extract(profile, '$.email')) = lower(?) OR json_extract(profile, '$.company.tax_id') = ?)")
            arguments += [q, q, q]
        }
        if let state { clauses.append("state = ?"); arguments += [state.rawValue] }
        if let provider { clauses.append("provider = ?"); arguments += [provider.rawValue] }
        if let before { clauses.append("id < ?"); arguments += [before] }
        arguments += [limit + 1]
        let sql = "SELECT * FROM tenants \(clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")) ORDER BY id DESC LIMIT ?"
        return try readSnapshot { [self, arguments] db in
            let tenants = try Row.fetchAll(db, sql: sql, arguments: arguments).map(tenant(from:))
            let page = Array(tenants.prefix(limit))
            return Page(items: page, next: tenants.count > limit ? page.last?.id : nil)
        }
    }

    public func operationsStats(now: Date, stuckAfter: TimeInterval) async throws -> OperationsStats {
        try readSnapshot { db in
            var tenants: [String: [String: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT provider, state, COUNT(*) AS n FROM tenants GROUP BY provider, state") {
                tenants[row["provider"], default: [:]][row["state"]] = row["n"]
            }
            let work = Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT kind, COUNT(*) AS n FROM jobs GROUP BY kind").map {
                ($0["kind"] as String, $0["n"] as Int)
            })
            let oldestDue = try Double.fetchOne(db, sql: "SELECT MIN(run_at) FROM jobs WHERE run_at <= ?", arguments: [now.unix])
            let cutoff = now.unix - stuckAfter
            let stuckSQL = "FROM tenants WHERE state IN ('pending', 'action_required') AND state_changed_at < ?"
            let stuckCount = try Int.fetchOne(db, sql: "SELECT COUNT(*) \(stuckSQL)", arguments: [cutoff]) ?? 0
            let sample = try String.fetchAll(db, sql: "SELECT id \(stuckSQL) ORDER BY state_changed_at LIMIT 20", arguments: [cutoff])
            return OperationsStats(
                tenants: tenants, queuedWork: work, oldestDueSeconds: oldestDue.map { max(0, now.unix - $0) },
                stuckCount: stuckCount, stuckSample: sample
            )
        }
    }

    public func queued(tenantID: String) async throws -> [QueuedWork] {
        try readSnapshot { db in
            try Row.fetchAll(db, sql: "SELECT kind, run_at, attempts, last_error FROM jobs WHERE tenant_id = ? ORDER BY run_at", arguments: [tenantID]).compactMap {
                guard let kind = WorkKind(rawValue: $0["kind"]) else { return nil }
                return QueuedWork(kind: kind, runAt: Date(unix: $0["run_at"]), attempts: $0["attempts"], lastError: $0["last_error"])
            }
        }
    }

    public func audit(tenantID: String?, limit: Int, before: Int64?) async throws -> Page<(id: Int64, entry: AuditEntry)> {
        try readSnapshot { [self] db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT * FROM audit_log WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
                arguments: [tenantID, before, limit + 1]
            )
            let page = try rows.prefix(limit).map { row in (id: row["id"] as Int64, entry: try auditEntry(from: row)) }
            return Page(items: page, next: rows.count > limit ? page.last.map { String($0.id) } : nil)
        }
    }

    public func backup(to path: String) async throws {
        let destination = try DatabaseQueue(path: path)
        try pool.backup(to: destination)
        try destination.close()
    }
}
