import Foundation
import GatewayCore
import GatewayStorage
import PostgresNIO

/// Tenant leases, the durable queue and the webhook inbox, shared by every replica.
extension PostgresStore {
    public func acquireLease(tenantID: String, owner: String, now: Date, until: Date) async throws -> LeaseAttempt {
        // One statement: the row lock makes it atomic against any replica's claim of the same tenant.
        if let row = try await row(
            """
            UPDATE tenants SET lease_owner = $2, lease_until = $3, lease_token = lease_token + 1
            WHERE id = $1 AND (lease_until IS NULL OR lease_until <= $4)
            RETURNING lease_token, generation
            """,
            [tenantID, owner, until.unix, now.unix]
        ) {
            return .acquired(TenantLease(tenantID: tenantID, token: try row.get("lease_token"), generation: try row.get("generation")))
        }
        guard let row = try await row("SELECT lease_until FROM tenants WHERE id = $1", [tenantID]) else { return .notFound }
        // Held by someone else (or let go just now: then it is free again at once).
        return .busy(until: Date(unix: try row.get("lease_until", Double?.self) ?? now.unix))
    }

    public func renewLease(_ lease: TenantLease, now: Date, until: Date, movesMark: Bool) async throws -> Bool {
        try await !rows(
            """
            UPDATE tenants SET lease_until = GREATEST(COALESCE(lease_until, 0), $1),
                submitted_at = CASE WHEN $5 AND submitted_at IS NOT NULL THEN GREATEST(submitted_at, $6) ELSE submitted_at END
            WHERE id = $2 AND lease_token = $3 AND generation = $4 AND state <> 'offboarded'
            RETURNING 1
            """,
            [until.unix, lease.tenantID, lease.token, lease.generation, movesMark, now.unix]
        ).isEmpty
    }

    public func releaseLease(_ lease: TenantLease) async throws {
        try await rows(
            "UPDATE tenants SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2",
            [lease.tenantID, lease.token]
        )
    }

    public func recordSubmission(_ lease: TenantLease, at: Date, settle: TimeInterval, marks: Bool, renewUntil: Date?) async throws -> SubmissionRecord {
        try await transaction { connection in
            guard let row = try await self.row(
                "SELECT submitted_at, state FROM tenants WHERE id = $1 AND lease_token = $2 AND generation = $3 FOR NO KEY UPDATE",
                [lease.tenantID, lease.token, lease.generation], on: connection
            ) else { throw LeaseLost(tenantID: lease.tenantID) }
            let record = SubmissionRecord.decide(earlier: try row.get("submitted_at", Double?.self).map(Date.init(unix:)), at: at, settle: settle)
            if case .settling = record { return record }
            guard marks else { return record }
            // As `renewLease`: an offboarded tenant's lease is not extended, and no call is made under it.
            if renewUntil != nil, try row.get("state", String.self) == TenantState.offboarded.rawValue { throw LeaseLost(tenantID: lease.tenantID) }
            try await self.rows(
                "UPDATE tenants SET submitted_at = $1, lease_until = GREATEST(lease_until, $3::double precision) WHERE id = $2",
                [at.unix, lease.tenantID, renewUntil?.unix], on: connection
            )
            return record
        }
    }

    public func expedite(tenantID: String, now: Date) async throws {
        try await transaction { connection in
            // The tenant's row first, as `update` takes it: otherwise a job queued here and one `update` queues for the
            // same tenant would wait on each other (a deadlock) or collide on jobs_one_per_tenant.
            guard try await self.row("SELECT 1 AS one FROM tenants WHERE id = $1 FOR NO KEY UPDATE", [tenantID], on: connection) != nil else { return }
            // The work is now the hurrying request's: its id and span, or none (not the queuing request's) when off.
            let moved = try await self.rows(
                """
                UPDATE jobs SET run_at = LEAST(run_at, $1), request_id = COALESCE($3, request_id),
                    trace_parent = CASE WHEN $3::text IS NULL THEN trace_parent ELSE $4 END
                WHERE tenant_id = $2 AND kind IN ('submit', 'check') RETURNING id
                """,
                [now.unix, tenantID, RequestScope.requestID, RequestScope.traceParent], on: connection
            )
            guard moved.isEmpty else { return }
            try await self.rows(
                """
                INSERT INTO jobs (tenant_id, kind, run_at, attempts, created_at, request_id, trace_parent)
                SELECT id, CASE state WHEN 'pending' THEN 'submit' ELSE 'check' END, $1, 0, $1, $3, $4 FROM tenants
                WHERE id = $2 AND state NOT IN ('offboarded', 'failed')
                ON CONFLICT (tenant_id) WHERE kind IN ('submit', 'check') DO UPDATE SET run_at = LEAST(jobs.run_at, excluded.run_at),
                    request_id = COALESCE(excluded.request_id, jobs.request_id),
                    trace_parent = CASE WHEN excluded.request_id IS NULL THEN jobs.trace_parent ELSE excluded.trace_parent END
                """,
                [now.unix, tenantID, RequestScope.requestID, RequestScope.traceParent], on: connection
            )
        }
    }

    func replaceWork(of tenantID: String, with work: ScheduledWork?, on connection: PostgresConnection, now: Date) async throws {
        try await rows("DELETE FROM jobs WHERE tenant_id = $1 AND kind IN ('submit', 'check')", [tenantID], on: connection)
        guard let work else { return }
        let runAt = max(work.runAt, work.leasedUntil ?? work.runAt)
        try await rows(
            """
            INSERT INTO jobs (tenant_id, kind, run_at, attempts, lease_until, created_at, request_id, trace_parent)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            [tenantID, work.kind.rawValue, runAt.unix, work.attempts, work.leasedUntil?.unix, now.unix, work.requestID, work.traceParent], on: connection
        )
    }

    public func receiveWebhook(tenantID: String, payload: Data, at: Date, bearsCredentials: Bool) async throws -> Bool {
        let hash = SecretBox.hash(payload)
        let (requestID, traceParent) = (RequestScope.requestID, RequestScope.traceParent)
        let sealed = try box.seal(payload, context: "webhook:\(tenantID)")
        return try await transaction { connection in
            // The same payload delivered to two replicas at once is stored once: the unique key decides.
            guard let inbox = try await self.row(
                """
                INSERT INTO webhook_inbox (tenant_id, payload_hash, payload_sealed, received_at, bears_credentials) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (tenant_id, payload_hash) DO NOTHING RETURNING id
                """,
                [tenantID, hash, sealed, at.unix, bearsCredentials], on: connection
            ) else { return false }
            try await self.rows(
                """
                INSERT INTO jobs (tenant_id, kind, inbox_id, run_at, attempts, created_at, request_id, trace_parent)
                VALUES ($1, 'webhook', $2, $3, 0, $3, $4, $5)
                """,
                [tenantID, try inbox.get("id", Int64.self), at.unix, requestID, traceParent], on: connection
            )
            return true
        }
    }

    public func webhookPayload(inboxID: Int64) async throws -> Data? {
        guard let row = try await row("SELECT tenant_id, payload_sealed FROM webhook_inbox WHERE id = $1", [inboxID]) else { return nil }
        let sealed = try row.get("payload_sealed", String.self)
        guard !sealed.isEmpty else { return nil }
        return try box.open(sealed, context: "webhook:\(try row.get("tenant_id", String.self))")
    }

    public func finishWebhook(inboxID: Int64, workID: Int64, outcome: String, at: Date) async throws {
        try await transaction { connection in
            // The payload (which may hold a sealed api_key) goes once processed; the hash stays to recognise repeats.
            try await self.rows(
                "UPDATE webhook_inbox SET processed_at = $1, outcome = $2, payload_sealed = '' WHERE id = $3",
                [at.unix, outcome, inboxID], on: connection
            )
            try await self.rows("DELETE FROM jobs WHERE id = $1", [workID], on: connection)
        }
    }

    public func queuedWebhooks(tenantID: String, excluding workID: Int64, receivedBy: Date, limit: Int) async throws -> [QueuedWebhook] {
        try await rows(
            """
            SELECT j.id, j.inbox_id FROM jobs j JOIN webhook_inbox i ON i.id = j.inbox_id
            WHERE j.tenant_id = $1 AND j.kind = 'webhook' AND j.id <> $2 AND i.received_at <= $3 AND i.bears_credentials = false
                AND i.processed_at IS NULL
            ORDER BY j.id LIMIT $4
            """,
            [tenantID, workID, receivedBy.unix, max(0, limit)]
        ).map { row in QueuedWebhook(inboxID: try row.get("inbox_id", Int64.self), workID: try row.get("id", Int64.self)) }
    }

    public func finishWebhooks(_ webhooks: [(inboxID: Int64, workID: Int64)], outcome: String, at: Date, lease: TenantLease) async throws {
        try await transaction { connection in
            try await self.requireHeld(lease, on: connection)
            // Two statements for the whole batch, under the tenant's row lock. Only the tenant's own: a pair naming
            // another tenant's inbox or job changes nothing.
            try await self.rows(
                """
                UPDATE webhook_inbox SET processed_at = $1, outcome = $2, payload_sealed = ''
                WHERE id = ANY($3::text[]::bigint[]) AND tenant_id = $4 AND processed_at IS NULL
                """,
                [at.unix, outcome, webhooks.map { String($0.inboxID) }, lease.tenantID], on: connection
            )
            try await self.rows(
                "DELETE FROM jobs WHERE id = ANY($1::text[]::bigint[]) AND tenant_id = $2", [webhooks.map { String($0.workID) }, lease.tenantID],
                on: connection
            )
        }
    }

    public func claimDueWork(
        now: Date, limit: Int, leaseUntil: Date, owner: String, quotas: [ProviderKind: Int]? = nil
    ) async throws -> [WorkItem] {
        // Due work of tenants nobody holds, read without locks: locking every candidate would hold tenants this
        // worker will not take away from every other replica's worker until this transaction ends.
        let candidates = try await rows(
            """
            SELECT j.id, j.tenant_id, t.provider FROM jobs j JOIN tenants t ON t.id = j.tenant_id
            WHERE j.run_at <= $1 AND (t.lease_until IS NULL OR t.lease_until <= $1)
            ORDER BY j.run_at, j.id LIMIT $2
            """,
            [now.unix, limit * 8]
        )
        return try await transaction { connection in
            var items: [WorkItem] = []
            var tenants = Set<String>()
            var left = quotas
            for row in candidates where items.count < limit {
                let tenantID = try row.get("tenant_id", String.self)
                guard !tenants.contains(tenantID) else { continue }
                let provider = ProviderKind(rawValue: try row.get("provider"))
                if let provider, let quota = left?[provider], quota <= 0 { continue }
                // The tenant's lease, if it is still free: SKIP LOCKED passes over a tenant another replica is claiming
                // or writing right now, and the lease keeps it off every other list until it runs out.
                guard let lease = try await self.row(
                    """
                    UPDATE tenants SET lease_owner = $1, lease_until = $2, lease_token = lease_token + 1
                    WHERE id = (SELECT id FROM tenants WHERE id = $3 AND (lease_until IS NULL OR lease_until <= $4) FOR NO KEY UPDATE SKIP LOCKED)
                    RETURNING lease_token, generation
                    """,
                    [owner, leaseUntil.unix, tenantID, now.unix], on: connection
                ) else { continue }
                let token = try lease.get("lease_token", Int64.self)
                // The item as it is now, under the lease: it may have been replaced or finished since it was read.
                guard let job = try await self.row(
                    """
                    UPDATE jobs SET run_at = $1, lease_until = $1, attempts = attempts + 1 WHERE id = $2 AND tenant_id = $3 AND run_at <= $4
                    RETURNING id, kind, attempts, inbox_id, request_id, trace_parent
                    """,
                    [leaseUntil.unix, try row.get("id", Int64.self), tenantID, now.unix], on: connection
                ), let kind = WorkKind(rawValue: try job.get("kind")) else {
                    try await self.rows(
                        "UPDATE tenants SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2", [tenantID, token], on: connection
                    )
                    continue
                }
                tenants.insert(tenantID)
                if let provider, let quota = left?[provider] { left?[provider] = quota - 1 }
                items.append(WorkItem(
                    id: try job.get("id"), tenantID: tenantID, kind: kind, attempts: try job.get("attempts", Int.self),
                    inboxID: try job.get("inbox_id", Int64?.self),
                    lease: TenantLease(tenantID: tenantID, token: token, generation: try lease.get("generation")),
                    requestID: try job.get("request_id", String?.self), traceParent: try job.get("trace_parent", String?.self)
                ))
            }
            return items
        }
    }

    public func reschedule(workID: Int64, runAt: Date, lastError: String) async throws {
        try await rows(
            "UPDATE jobs SET run_at = $1, lease_until = NULL, last_error = $2 WHERE id = $3",
            [runAt.unix, String(lastError.prefix(500)), workID]
        )
    }
}
