import Foundation
import GatewayCore
import GatewayStorage
import PostgresNIO

extension PostgresStore: TenantStore {
    public func insert(
        _ tenant: Tenant, events: [TenantEvent], work: ScheduledWork, webhookToken: String?, companyKey: String?,
        leaseOwner: String, leaseUntil: Date
    ) async throws -> InsertOutcome {
        let arguments: [any SQLValue] = [
            tenant.id, tenant.provider.rawValue, tenant.externalID, tenant.state.rawValue,
            try tenant.nextAction.map(json), tenant.providerStatus, try json(tenant.profile), try json(tenant.metadata),
            tenant.credentialsAvailable, try tenant.lastError.map(json), tenant.createdAt.unix, tenant.updatedAt.unix,
            tenant.stateChangedAt.unix, tenant.evidenceAt?.unix,
            webhookToken.map(SecretBox.hash), try webhookToken.map { try box.seal(Data($0.utf8), context: "webhook-token:\(tenant.id)") },
            leaseOwner, leaseUntil.unix, Data(representation.render(tenant)), representation.version,
            try tenant.providerDetails.map(json), try tenant.credentialCheck.map(json),
        ]
        // Two replicas creating the same customer at once: the natural key lets one insert; the other finds it.
        for _ in 0..<3 {
            let inserted = try await transaction { connection -> Bool? in
                if let companyKey {
                    // Replicas creating tenants for one company at once take turns on this company (the lock is held
                    // to commit), so the check below sees every insert that committed before it.
                    try await self.rows(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ["company:\(tenant.provider.rawValue):\(companyKey)"], on: connection
                    )
                    if try await self.row(
                        """
                        SELECT 1 FROM tenants WHERE ((profile::jsonb) -> 'company' ->> 'tax_id') = $1 AND provider = $2
                            AND state <> 'offboarded' AND external_id <> $3 LIMIT 1
                        """,
                        [companyKey, tenant.provider.rawValue, tenant.externalID], on: connection
                    ) != nil {
                        return nil
                    }
                }
                let rows = try await self.rows(
                    """
                    INSERT INTO tenants (id, provider, external_id, state, next_action, provider_status, profile, metadata,
                        credentials_available, last_error, created_at, updated_at, state_changed_at, evidence_at,
                        webhook_token_hash, webhook_token_sealed, lease_owner, lease_until, lease_token, api_json, api_version,
                        provider_details, credential_check)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 1, $19, $20, $21, $22)
                    ON CONFLICT (provider, external_id) WHERE state <> 'offboarded' DO NOTHING
                    RETURNING id
                    """,
                    arguments, on: connection
                )
                guard !rows.isEmpty else { return false }
                try await self.insert(events, on: connection)
                try await self.replaceWork(of: tenant.id, with: work, on: connection, now: tenant.createdAt)
                return true
            }
            guard let inserted else { return .companyTaken }
            if inserted { return .inserted(TenantLease(tenantID: tenant.id, token: 1, generation: 0)) }
            if let row = try await row(
                "SELECT * FROM tenants WHERE provider = $1 AND external_id = $2 AND state <> 'offboarded'",
                [tenant.provider.rawValue, tenant.externalID]
            ) {
                return .existing(try self.tenant(from: row))
            }
            // The tenant that held the key was offboarded between the two statements: try again.
        }
        throw PostgresStoreError("the natural key of a new tenant stayed contended")
    }

    public func companyHeld(provider: ProviderKind, taxID: String, excluding tenantID: String) async throws -> Bool {
        try await row(
            """
            SELECT 1 FROM tenants WHERE ((profile::jsonb) -> 'company' ->> 'tax_id') = $1 AND provider = $2
                AND state <> 'offboarded' AND id <> $3 LIMIT 1
            """,
            [taxID, provider.rawValue, tenantID]
        ) != nil
    }

    public func tenant(id: String) async throws -> Tenant? {
        try await row("SELECT * FROM tenants WHERE id = $1", [id]).map(tenant(from:))
    }

    public func tenants(_ query: TenantQuery) async throws -> Page<Tenant> {
        let (sql, arguments) = Self.listing(query, columns: "*")
        let tenants = try await rows(sql, arguments).map(tenant(from:))
        let page = Array(tenants.prefix(query.limit))
        return Page(items: page, next: tenants.count > query.limit ? page.last?.id : nil)
    }

    public func storedTenant(id: String) async throws -> StoredTenant? {
        guard let row = try await row("SELECT id, api_version, api_json FROM tenants WHERE id = $1", [id]) else { return nil }
        if let stored = try stored(row) { return stored }
        // Missing or of another shape: the tenant as it is now, rendered, and the rendering kept when it was older.
        guard let full = try await self.row("SELECT * FROM tenants WHERE id = $1", [id]) else { return nil }
        if Self.keptVersion(row).map({ $0 < Int64(representation.version) }) ?? true { keepRendering(of: [id]) }
        return try rendered(full)
    }

    public func storedTenants(_ query: TenantQuery) async throws -> Page<StoredTenant> {
        let (sql, arguments) = Self.listing(query, columns: "id, api_version, api_json")
        var items: [StoredTenant] = []
        var stale: [String] = []
        for row in try await rows(sql, arguments) {
            if let stored = try stored(row) {
                items.append(stored)
            } else if let full = try await self.row("SELECT * FROM tenants WHERE id = $1", [try row.get("id", String.self)]) {
                // Missing or of another shape: the tenant as it is now, rendered.
                let rendered = try rendered(full)
                items.append(rendered)
                if Self.keptVersion(row).map({ $0 < Int64(representation.version) }) ?? true { stale.append(rendered.id) }
            }
        }
        if !stale.isEmpty { keepRendering(of: stale) }
        let page = Array(items.prefix(query.limit))
        return Page(items: page, next: items.count > query.limit ? page.last?.id : nil)
    }

    /// The kept rendering of a row of `id, api_version, api_json`, when it is of the current shape.
    func stored(_ row: PostgresRandomAccessRow) throws -> StoredTenant? {
        guard (try? row.get("api_version", Int64?.self)) == Int64(representation.version),
            let bytes = try row.get("api_json", ByteBuffer?.self)
        else { return nil }
        return StoredTenant(id: try row.get("id", String.self), bytes: Array(bytes.readableBytesView))
    }

    /// A full row rendered now, in the current shape.
    func rendered(_ row: PostgresRandomAccessRow) throws -> StoredTenant {
        let tenant = try tenant(from: row)
        return StoredTenant(id: tenant.id, bytes: representation.render(tenant))
    }

    /// The version of a row's kept rendering; nil when there is none (or it is not an integer).
    static func keptVersion(_ row: PostgresRandomAccessRow) -> Int64? {
        guard (try? row.get("api_json", ByteBuffer?.self)) != nil else { return nil }
        return (try? row.get("api_version", Int64?.self)) ?? nil
    }

    /// Renders these tenants again and keeps the renderings, in a transaction of its own after the read that found
    /// theirs missing or of another version. Each row is locked, read and rendered inside it, so a change committed
    /// meanwhile (on any replica) is never overwritten with an older rendering. Only a missing or older shape is
    /// replaced: a replica still running the old shape beside a newer one (a rolling upgrade) renders the newer rows for
    /// itself on each read and never writes them back, or two versions would rewrite each other's rows on every read.
    /// Best effort: a failure leaves the rows to be rendered on their next read or write.
    func keepRendering(of ids: [String]) {
        let version = representation.version
        let ids = renderingsQueued.withLock { queued in ids.filter { queued.insert($0).inserted } }
        guard !ids.isEmpty else { return }
        Task.detached { [self] in
            defer { renderingsQueued.withLock { $0.subtract(ids) } }
            _ = try? await transaction { connection -> Void in
                for id in ids {
                    guard let row = try await self.row("SELECT * FROM tenants WHERE id = $1 FOR NO KEY UPDATE", [id], on: connection),
                        Self.keptVersion(row).map({ $0 < Int64(version) }) ?? true
                    else { continue }
                    try await self.rows(
                        "UPDATE tenants SET api_json = $1, api_version = $2, api_rev = api_rev + 1 WHERE id = $3",
                        [Data(try self.rendered(row).bytes), version, id], on: connection
                    )
                }
            }
        }
    }

    /// The SQL of a page of tenants, newest first, with the given columns.
    static func listing(_ query: TenantQuery, columns: String) -> (String, [any SQLValue]) {
        var clauses: [String] = []
        var arguments: [any SQLValue] = []
        func add(_ clause: String, _ value: any SQLValue) {
            arguments.append(value)
            clauses.append(clause.replacingOccurrences(of: "?", with: "$\(arguments.count)"))
        }
        if let provider = query.provider { add("provider = ?", provider.rawValue) }
        if let state = query.state { add("state = ?", state.rawValue) }
        if let externalID = query.externalID { add("external_id = ?", externalID) }
        if let before = query.before { add("id < ?", before) }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        arguments.append(query.limit + 1)
        return ("SELECT \(columns) FROM tenants \(filter) ORDER BY id DESC LIMIT $\(arguments.count)", arguments)
    }

    public func events(tenantID: String?, after: Int64?, limit: Int) async throws -> Page<TenantEvent> {
        let rows = try await rows(
            "\(Self.eventColumns) WHERE e.seq > $1 AND ($2::text IS NULL OR e.tenant_id = $2) ORDER BY e.seq LIMIT $3",
            [after ?? 0, tenantID, limit + 1]
        )
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? try page.last.map { String(try $0.get("seq", Int64.self)) } : nil
        return Page(items: try page.map(event(from:)), next: next)
    }

    public func update(
        tenantID: String, fence: TenantLease?, voids: Bool, _ change: @escaping @Sendable (TenantContext) throws -> TenantUpdate?
    ) async throws -> Tenant? {
        try await transaction { connection -> Tenant? in
            // The row lock holds every other writer of this tenant, on any replica, until this transaction ends. NO KEY:
            // rows that only point at the tenant (an inbox entry, an audit line) may still be inserted meanwhile.
            guard let row = try await self.row("SELECT * FROM tenants WHERE id = $1 FOR NO KEY UPDATE", [tenantID], on: connection) else { return nil }
            if let fence, try row.get("lease_token", Int64.self) != fence.token || row.get("generation", Int64.self) != fence.generation {
                throw LeaseLost(tenantID: tenantID)
            }
            let current = try self.tenant(from: row)
            let attempts = try await self.row(
                "SELECT attempts FROM jobs WHERE tenant_id = $1 AND kind IN ('submit', 'check')", [tenantID], on: connection
            )?.get("attempts", Int.self) ?? 0
            let context = TenantContext(
                tenant: current, credentials: try await self.credentials(tenantID, on: connection), workAttempts: attempts,
                submissionPending: try row.get("submitted_at", Double?.self) != nil
            )
            guard let update = try change(context) else { return current }
            if voids {
                try await self.rows("UPDATE tenants SET generation = generation + 1 WHERE id = $1", [tenantID], on: connection)
            }
            if update.clearsSubmission {
                try await self.rows("UPDATE tenants SET submitted_at = NULL WHERE id = $1", [tenantID], on: connection)
            }
            if let unsettled = update.submissionUnsettledAt {
                try await self.rows("UPDATE tenants SET submitted_at = $1 WHERE id = $2 AND submitted_at IS NOT NULL", [unsettled.unix, tenantID], on: connection)
            }
            if update.writesTenant {
                let t = update.tenant
                try await self.rows(
                    """
                    UPDATE tenants SET state = $1, next_action = $2, provider_status = $3, profile = $4, metadata = $5,
                        credentials_available = $6, last_error = $7, updated_at = $8, state_changed_at = $9, evidence_at = $10,
                        provider_details = $12, credential_check = $13, api_json = $14, api_version = $15, api_rev = api_rev + 1
                    WHERE id = $11
                    """,
                    [
                        t.state.rawValue, try t.nextAction.map(self.json), t.providerStatus, try self.json(t.profile), try self.json(t.metadata),
                        t.credentialsAvailable, try t.lastError.map(self.json), t.updatedAt.unix, t.stateChangedAt.unix, t.evidenceAt?.unix, t.id,
                        try t.providerDetails.map(self.json), try t.credentialCheck.map(self.json), Data(self.representation.render(t)),
                        self.representation.version,
                    ],
                    on: connection
                )
            }
            try await self.insert(update.events, on: connection)
            if let credentials = update.credentials {
                let sealed = try self.box.seal(try self.encoder.encode(credentials), context: "credentials:\(tenantID)")
                try await self.rows(
                    """
                    INSERT INTO tenant_credentials (tenant_id, sealed, key_id, updated_at) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (tenant_id) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id, updated_at = excluded.updated_at,
                        token_sealed = NULL, token_expires_at = NULL
                    """,
                    [tenantID, sealed, self.box.currentKeyID, update.tenant.updatedAt.unix], on: connection
                )
            }
            if !update.keepsWork {
                try await self.replaceWork(of: tenantID, with: update.work, on: connection, now: Date())
            }
            if update.erasesPersonalData {
                try await self.erasePersonalData(of: tenantID, on: connection)
            }
            if update.releasesLease, let fence {
                try await self.rows("UPDATE tenants SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2", [tenantID, fence.token], on: connection)
            }
            return update.writesTenant ? update.tenant : current
        }
    }

    public func credentials(tenantID: String) async throws -> ProviderCredentials? {
        try await credentials(tenantID, on: nil)
    }

    public func webhookToken(tenantID: String) async throws -> String? {
        guard let sealed = try await row("SELECT webhook_token_sealed FROM tenants WHERE id = $1", [tenantID])?.get("webhook_token_sealed", String?.self)
        else { return nil }
        return String(decoding: try box.open(sealed, context: "webhook-token:\(tenantID)"), as: UTF8.self)
    }

    public func webhookRecipient(forToken token: String) async throws -> WebhookRecipient? {
        guard let row = try await row("SELECT id, provider, external_id FROM tenants WHERE webhook_token_hash = $1", [SecretBox.hash(token)])
        else { return nil }
        let id = try row.get("id", String.self)
        return WebhookRecipient(
            tenantID: id, provider: try ProviderKind.stored(try row.get("provider", String.self), id: id), externalID: try row.get("external_id", String.self)
        )
    }

    public func audit(_ entry: AuditEntry) async throws {
        try await rows(
            "INSERT INTO audit_log (at, actor, action, tenant_id, details) VALUES ($1, $2, $3, $4, $5)",
            [entry.at.unix, entry.actor, entry.action, entry.tenantID, try json(entry.details)]
        )
    }

    /// Offboarding: every copy of the customer's data and every secret of the tenant goes, in the same transaction as
    /// the tombstone. PostgreSQL keeps the old row versions until VACUUM reclaims them (autovacuum does, soon after).
    func erasePersonalData(of tenantID: String, on connection: PostgresConnection) async throws {
        for sql in [
            "UPDATE tenants SET webhook_token_hash = NULL, webhook_token_sealed = NULL WHERE id = $1",
            "DELETE FROM tenant_credentials WHERE tenant_id = $1",
            "DELETE FROM webhook_inbox WHERE tenant_id = $1",
            "DELETE FROM jobs WHERE tenant_id = $1",
            "UPDATE audit_log SET details = '{}' WHERE tenant_id = $1",
            "UPDATE delivery_attempts SET excerpt = NULL WHERE delivery_id IN (SELECT id FROM deliveries WHERE tenant_id = $1)",
            // History keeps its shape (ids, states, times, sources); the customer's data leaves every snapshot.
            """
            UPDATE tenant_events SET tenant = (tenant::jsonb || jsonb_build_object('profile', '{}'::jsonb, 'metadata', '{}'::jsonb,
                'next_action', NULL, 'last_error', NULL, 'provider_status', NULL, 'provider_details', NULL))::text
            WHERE tenant_id = $1
            """,
        ] {
            try await rows(sql, [tenantID], on: connection)
        }
        // The key and its status outlive the tenant (a retry never creates a second one); the answer's personal data goes.
        try await rows(
            "UPDATE idempotency_keys SET body = $1, headers = $2 WHERE tenant_id = $3 AND completed_at IS NOT NULL",
            [IdempotencyErasure.body(tenantID: tenantID), IdempotencyErasure.headers, tenantID], on: connection
        )
    }

    /// Nothing to flush: the old row versions go with VACUUM, which autovacuum runs (see docs/operations.md).
    public func flushErasures() async throws {}

    // MARK: - Rows

    func tenant(from row: PostgresRandomAccessRow) throws -> Tenant {
        let id = try row.get("id", String.self)
        return Tenant(
            id: id, provider: try ProviderKind.stored(try row.get("provider"), id: id), externalID: try row.get("external_id"),
            state: try TenantState.stored(try row.get("state"), id: id),
            nextAction: try decode(NextAction.self, try row.get("next_action")), providerStatus: try row.get("provider_status"),
            profile: try decode(Profile.self, try row.get("profile")) ?? Profile(),
            metadata: try decode([String: String].self, try row.get("metadata")) ?? [:],
            credentialsAvailable: try row.get("credentials_available"), lastError: try decode(TenantError.self, try row.get("last_error")),
            createdAt: Date(unix: try row.get("created_at")), updatedAt: Date(unix: try row.get("updated_at")),
            stateChangedAt: Date(unix: try row.get("state_changed_at")), evidenceAt: try row.get("evidence_at", Double?.self).map(Date.init(unix:)),
            providerDetails: try? decode(ProviderDetails.self, try row.get("provider_details", String?.self)),
            credentialCheck: try? decode(CredentialCheckRecord.self, try row.get("credential_check", String?.self))
        )
    }

    /// An event's row with its base snapshot (`base_tenant`, for a compact one): `SELECT` this, then `WHERE` on `e.`.
    static let eventColumns = "SELECT e.*, b.tenant AS base_tenant FROM tenant_events e LEFT JOIN tenant_events b ON b.seq = e.base_seq"

    func event(from row: PostgresRandomAccessRow) throws -> TenantEvent {
        let snapshot = SnapshotPatch.eventSnapshot(
            stored: try row.get("tenant", String.self),
            base: try row.get("base_seq", Int64?.self) == nil ? nil : .some(try row.get("base_tenant", String?.self))
        )
        guard let type = TenantEvent.Kind(rawValue: try row.get("type")), let source = ChangeSource(rawValue: try row.get("source")),
            let tenant = try decode(Tenant.self, snapshot)
        else { throw PostgresStoreError("unreadable event row") }
        return TenantEvent(
            id: try row.get("id"), tenantID: try row.get("tenant_id"), type: type, createdAt: Date(unix: try row.get("created_at")),
            previousState: try row.get("previous_state", String?.self).flatMap(TenantState.init(rawValue:)), source: source, tenant: tenant
        )
    }

    func insert(_ events: [TenantEvent], on connection: PostgresConnection) async throws {
        guard !events.isEmpty else { return }
        // Each tenant's first full snapshot, the base of its compact events (see SnapshotPatch), read before the feed
        // lock below so the lock is not held for it: the caller holds the tenant's row (or has just inserted it).
        var bases: [String: (seq: Int64, snapshot: [UInt8])] = [:]
        for tenantID in Set(events.map(\.tenantID)) {
            if let first = try await row(
                "SELECT seq, tenant FROM tenant_events WHERE tenant_id = $1 AND base_seq IS NULL ORDER BY seq LIMIT 1", [tenantID], on: connection
            ) {
                bases[tenantID] = (try first.get("seq", Int64.self), Array(try first.get("tenant", String.self).utf8))
            }
        }
        // Held to commit: no event gets a seq below one a feed reader may already have seen.
        try await rows("SELECT pg_advisory_xact_lock($1)", [Self.feedLock], on: connection)
        for event in events {
            var snapshot: [UInt8] = []
            TenantJSON.write(event.tenant, link: nil, into: &snapshot)
            let full = snapshot
            var base: Int64?
            if let first = bases[event.tenantID], let patch = SnapshotPatch.diff(base: first.snapshot, full: snapshot) {
                base = first.seq
                snapshot = patch
            }
            let seq = try await row(
                """
                INSERT INTO tenant_events (id, tenant_id, type, source, previous_state, created_at, tenant, base_seq)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq
                """,
                [
                    event.id, event.tenantID, event.type.rawValue, event.source.rawValue, event.previousState?.rawValue,
                    event.createdAt.unix, String(decoding: snapshot, as: UTF8.self), base,
                ],
                on: connection
            )?.get("seq", Int64.self)
            // A tenant's first event is the base of those written after it in the same call.
            if base == nil, bases[event.tenantID] == nil, let seq { bases[event.tenantID] = (seq, full) }
            if deliversEvents, let seq {
                try await rows(
                    "INSERT INTO deliveries (id, event_seq, tenant_id, status, next_attempt_at, created_at) VALUES ($1, $2, $3, 'pending', $4, $5)",
                    ["dlv_" + event.id.dropFirst(4), seq, event.tenantID, event.createdAt.unix, event.createdAt.unix], on: connection
                )
            }
        }
    }

    public func accessToken(tenantID: String) async throws -> IssuedToken? {
        guard let sealed = try await row("SELECT token_sealed FROM tenant_credentials WHERE tenant_id = $1", [tenantID])?.get("token_sealed", String?.self)
        else { return nil }
        // A cache: a token sealed under a key no longer configured is no token (the next request logs in again).
        return try? decoder.decode(IssuedToken.self, from: try box.open(sealed, context: "access-token:\(tenantID)"))
    }

    /// The fence of a write made under a lease, and the tenant's row lock for the rest of the transaction: `LeaseLost`
    /// unless the lease is still the holder's (its token), the conversation was not voided (its generation) and the
    /// tenant is not offboarded.
    func requireHeld(_ lease: TenantLease, on connection: PostgresConnection) async throws {
        guard try await row(
            "SELECT 1 AS one FROM tenants WHERE id = $1 AND lease_token = $2 AND generation = $3 AND state <> 'offboarded' FOR NO KEY UPDATE",
            [lease.tenantID, lease.token, lease.generation], on: connection
        ) != nil else { throw LeaseLost(tenantID: lease.tenantID) }
    }

    public func saveAccessToken(_ token: IssuedToken, lease: TenantLease) async throws {
        let sealed = try box.seal(try encoder.encode(token), context: "access-token:\(lease.tenantID)")
        try await transaction { connection in
            try await self.requireHeld(lease, on: connection)
            try await self.rows(
                "UPDATE tenant_credentials SET token_sealed = $1, token_expires_at = $2 WHERE tenant_id = $3",
                [sealed, token.expiresAt?.unix, lease.tenantID], on: connection
            )
        }
    }

    func credentials(_ tenantID: String, on connection: PostgresConnection?) async throws -> ProviderCredentials? {
        guard let sealed = try await row("SELECT sealed FROM tenant_credentials WHERE tenant_id = $1", [tenantID], on: connection)?.get("sealed", String.self)
        else { return nil }
        return try decoder.decode(ProviderCredentials.self, from: try box.open(sealed, context: "credentials:\(tenantID)"))
    }
}
