import Foundation
import GRDB
import GatewayCore

/// Per-tenant leases: one provider conversation per tenant at a time, and the fence its writes pass.
extension SQLiteStore {
    public func acquireLease(tenantID: String, owner: String, now: Date, until: Date) async throws -> LeaseAttempt {
        try await writes.write { db in
            guard let row = try Row.fetchOne(
                db, cached: "SELECT lease_until, generation FROM tenants WHERE id = ?", arguments: [tenantID]
            ) else { return .notFound }
            if let held = row["lease_until"] as Double?, held > now.unix {
                return .busy(until: Date(unix: held))
            }
            let token = try Int64.fetchOne(
                db,
                cached: "UPDATE tenants SET lease_owner = ?, lease_until = ?, lease_token = lease_token + 1 WHERE id = ? RETURNING lease_token",
                arguments: [owner, until.unix, tenantID]
            ) ?? 0
            return .acquired(TenantLease(tenantID: tenantID, token: token, generation: row["generation"]))
        }
    }

    public func renewLease(_ lease: TenantLease, now: Date, until: Date, movesMark: Bool) async throws -> Bool {
        try await writes.write { db in
            try db.execute(
                cached: """
                    UPDATE tenants SET lease_until = max(coalesce(lease_until, 0), ?1),
                        submitted_at = iif(?5 AND submitted_at IS NOT NULL, max(submitted_at, ?6), submitted_at)
                    WHERE id = ?2 AND lease_token = ?3 AND generation = ?4 AND state <> 'offboarded'
                    """,
                arguments: [until.unix, lease.tenantID, lease.token, lease.generation, movesMark, now.unix]
            )
            return db.changesCount > 0
        }
    }

    public func releaseLease(_ lease: TenantLease) async throws {
        try await writes.write { db in
            try db.execute(
                cached: "UPDATE tenants SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_token = ?",
                arguments: [lease.tenantID, lease.token]
            )
        }
    }

    public func recordSubmission(_ lease: TenantLease, at: Date, settle: TimeInterval, marks: Bool, renewUntil: Date?) async throws -> SubmissionRecord {
        try await writes.write { db in
            guard let row = try Row.fetchOne(
                db, cached: "SELECT submitted_at, state FROM tenants WHERE id = ? AND lease_token = ? AND generation = ?",
                arguments: [lease.tenantID, lease.token, lease.generation]
            ) else { throw LeaseLost(tenantID: lease.tenantID) }
            let record = SubmissionRecord.decide(earlier: (row["submitted_at"] as Double?).map(Date.init(unix:)), at: at, settle: settle)
            if case .settling = record { return record }
            guard marks else { return record }
            // As `renewLease`: an offboarded tenant's lease is not extended, and no call is made under it.
            if renewUntil != nil, row["state"] as String == TenantState.offboarded.rawValue { throw LeaseLost(tenantID: lease.tenantID) }
            try db.execute(
                cached: "UPDATE tenants SET submitted_at = ?1, lease_until = coalesce(max(lease_until, ?2), lease_until, ?2) WHERE id = ?3",
                arguments: [at.unix, renewUntil?.unix, lease.tenantID]
            )
            return record
        }
    }

    public func expedite(tenantID: String, now: Date) async throws {
        let requestID = RequestScope.requestID
        let traceParent = RequestScope.traceParent
        try await writes.write { db in
            // The work is now the hurrying request's: its id and span, or none (not the queuing request's) when off.
            try db.execute(
                cached: """
                    UPDATE jobs SET run_at = min(run_at, ?1), request_id = coalesce(?2, request_id), trace_parent = iif(?2 IS NULL, trace_parent, ?3)
                    WHERE tenant_id = ?4 AND kind IN ('submit', 'check')
                    """,
                arguments: [now.unix, requestID, traceParent, tenantID]
            )
            guard db.changesCount == 0 else { return }
            try db.execute(
                cached: """
                    INSERT INTO jobs (tenant_id, kind, run_at, attempts, created_at, request_id, trace_parent)
                    SELECT id, CASE state WHEN 'pending' THEN 'submit' ELSE 'check' END, ?1, 0, ?1, ?3, ?4 FROM tenants
                    WHERE id = ?2 AND state NOT IN ('offboarded', 'failed')
                    """,
                arguments: [now.unix, tenantID, requestID, traceParent]
            )
        }
    }

    /// The SQLite gateway is one process: leases and unfinished Idempotency-Key claims left by a previous run died
    /// with it. Called at start, so work interrupted by a crash resumes at once rather than when its leases run out,
    /// and a client retrying its request after a crash is served rather than told for minutes that it still runs.
    /// (A create that committed before the crash is found again by its natural key, so the retry makes no second.)
    public func recoverFromEarlierRun(now: Date) async throws {
        // Only the one process serving the file may clear its leases.
        try takeServingLock()
        try await writes.write { db in
            try db.execute(cached: "UPDATE tenants SET lease_owner = NULL, lease_until = NULL WHERE lease_until IS NOT NULL")
            try db.execute(cached: "UPDATE jobs SET run_at = min(run_at, ?), lease_until = NULL WHERE lease_until IS NOT NULL", arguments: [now.unix])
            try db.execute(cached: "DELETE FROM idempotency_keys WHERE status IS NULL")
        }
    }
}
