import Foundation
import GRDB
import GatewayCore

extension SQLiteStore: TenantStore {
    public func insert(
        _ tenant: Tenant, events: [TenantEvent], work: ScheduledWork, webhookToken: String?, companyKey: String?,
        leaseOwner: String, leaseUntil: Date
    ) async throws -> InsertOutcome {
        try await writes.write { [self] db in
            if let row = try Row.fetchOne(
                db, cached: "SELECT * FROM tenants WHERE provider = ? AND external_id = ? AND state <> 'offboarded'",
                arguments: [tenant.provider.rawValue, tenant.externalID]
            ) {
                return .existing(try self.tenant(from: row))
            }
            // One writer at a time: the check and the insert below cannot interleave with another create.
            if let companyKey, try Bool.fetchOne(
                db, cached: "SELECT 1 FROM tenants WHERE json_extract(profile, '$.company.tax_id') = ? AND provider = ? AND state <> 'offboarded' LIMIT 1",
                arguments: [companyKey, tenant.provider.rawValue]
            ) != nil {
                return .companyTaken
            }
            try db.execute(
                cached: """
                    INSERT INTO tenants (id, provider, external_id, state, next_action, provider_status, profile, metadata,
                        credentials_available, last_error, created_at, updated_at, state_changed_at, evidence_at,
                        webhook_token_hash, webhook_token_sealed, lease_owner, lease_until, lease_token, api_json, api_version,
                        provider_details, credential_check)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
                    """,
                arguments: [
                    tenant.id, tenant.provider.rawValue, tenant.externalID, tenant.state.rawValue,
                    try tenant.nextAction.map(json), tenant.providerStatus, try json(tenant.profile), try json(tenant.metadata),
                    tenant.credentialsAvailable, try tenant.lastError.map(json), tenant.createdAt.unix, tenant.updatedAt.unix,
                    tenant.stateChangedAt.unix, tenant.evidenceAt?.unix,
                    webhookToken.map(SecretBox.hash), try webhookToken.map { try box.seal(Data($0.utf8), context: "webhook-token:\(tenant.id)") },
                    leaseOwner, leaseUntil.unix, Data(representation.render(tenant)), representation.version,
                    try tenant.providerDetails.map(json), try tenant.credentialCheck.map(json),
                ]
            )
            try insert(events, db)
            try replaceWork(of: tenant.id, with: work, db, now: tenant.createdAt)
            return .inserted(TenantLease(tenantID: tenant.id, token: 1, generation: 0))
        }
    }

    public func companyHeld(provider: ProviderKind, taxID: String, excluding tenantID: String) async throws -> Bool {
        try readNow { db in
            try Bool.fetchOne(
                db, cached: "SELECT 1 FROM tenants WHERE json_extract(profile, '$.company.tax_id') = ? AND provider = ? AND state <> 'offboarded' AND id <> ? LIMIT 1",
                arguments: [taxID, provider.rawValue, tenantID]
            ) != nil
        }
    }

    public func tenant(id: String) async throws -> Tenant? {
        try readNow { [self] db in
            try Row.fetchOne(db, cached: "SELECT * FROM tenants WHERE id = ?", arguments: [id]).map(tenant(from:))
        }
    }

    public func tenants(_ query: TenantQuery) async throws -> Page<Tenant> {
        let (sql, arguments) = Self.listing(query, columns: "*")
        return try readNow { [self] db in
            let tenants = try Row.fetchAll(db, cached: sql, arguments: arguments).map(tenant(from:))
            let page = Array(tenants.prefix(query.limit))
            return Page(items: page, next: tenants.count > query.limit ? page.last?.id : nil)
        }
    }

    public func storedTenant(id: String) async throws -> StoredTenant? {
        let version = representation.version
        let found = try readNow { [self] db -> (StoredTenant?, older: Bool)? in
            let rows = try Row.fetchCursor(db, cached: "SELECT id, api_version, api_json FROM tenants WHERE id = ?", arguments: [id])
            guard let row = try rows.next() else { return nil }
            let stored = try Self.stored(row, version: version)
            let older = Self.keptVersion(row).map { $0 < Int64(version) } ?? true
            // The id is the key, so there is no second row: stepping to the end finishes the statement, so this reader
            // does not keep its snapshot of the WAL (which would hold checkpoints back) until its next read.
            _ = try rows.next()
            if let stored { return (stored, false) }
            // Missing or of another shape: the tenant as it is now, rendered (a statement of its own).
            return try Row.fetchOne(db, cached: "SELECT * FROM tenants WHERE id = ?", arguments: [id]).map { (try rendered($0), older) }
        }
        guard let (stored, older) = found else { return nil }
        if older { keepRendering(of: [id]) }
        return stored
    }

    public func storedTenants(_ query: TenantQuery) async throws -> Page<StoredTenant> {
        let version = representation.version
        let (sql, arguments) = Self.listing(query, columns: "id, api_version, api_json")
        let (items, older) = try readNow { [self] db -> ([StoredTenant], [String]) in
            var items: [StoredTenant] = []
            var stale: [String] = []
            var older: [String] = []
            items.reserveCapacity(query.limit + 1)
            let rows = try Row.fetchCursor(db, cached: sql, arguments: arguments)
            while let row = try rows.next() {
                if let stored = try Self.stored(row, version: version) {
                    items.append(stored)
                } else {
                    stale.append(row["id"])
                    if Self.keptVersion(row).map({ $0 < Int64(version) }) ?? true { older.append(row["id"]) }
                    items.append(StoredTenant(id: row["id"], bytes: []))
                }
            }
            // Missing or of another shape: those tenants as they are now, rendered (statements of their own).
            for id in stale {
                guard let index = items.firstIndex(where: { $0.id == id }) else { continue }
                if let full = try Row.fetchOne(db, cached: "SELECT * FROM tenants WHERE id = ?", arguments: [id]) {
                    items[index] = try rendered(full)
                } else {
                    items.remove(at: index)
                }
            }
            return (items, older)
        }
        if !older.isEmpty { keepRendering(of: older) }
        let page = Array(items.prefix(query.limit))
        return Page(items: page, next: items.count > query.limit ? page.last?.id : nil)
    }

    /// The kept rendering of a row of `id, api_version, api_json`, when it is of the current shape.
    static func stored(_ row: Row, version: Int) throws -> StoredTenant? {
        // Read without a conversion that could trap: anything but this very integer is "of another shape".
        guard Int64.fromDatabaseValue(row[1] as DatabaseValue) == Int64(version),
            let bytes = try row.withUnsafeData(atIndex: 2, { $0.map { Array($0) } })
        else { return nil }
        return StoredTenant(id: row["id"], bytes: bytes)
    }

    /// A full row rendered now, in the current shape.
    func rendered(_ row: Row) throws -> StoredTenant {
        let tenant = try tenant(from: row)
        return StoredTenant(id: tenant.id, bytes: representation.render(tenant))
    }

    /// The version of a row's kept rendering; nil when there is none (or it is not an integer).
    static func keptVersion(_ row: Row) -> Int64? {
        (row["api_json"] as DatabaseValue).isNull ? nil : Int64.fromDatabaseValue(row["api_version"] as DatabaseValue)
    }

    /// Renders these tenants again from their rows and keeps the renderings, in a write of their own after the read
    /// that found theirs missing or of another version: each row is read and rendered inside the write, so a change
    /// committed meanwhile is never overwritten with an older rendering. Only a missing or older shape is replaced: a
    /// server still running the old shape beside a newer one (a rolling upgrade) renders the newer rows for itself on
    /// each read and never writes them back, or two versions would rewrite each other's rows on every read. Best
    /// effort: a failure leaves the rows to be rendered on their next read or write.
    func keepRendering(of ids: [String]) {
        let version = representation.version
        let ids = renderingsQueued.withLock { queued in ids.filter { queued.insert($0).inserted } }
        guard !ids.isEmpty else { return }
        Task.detached { [self] in
            defer { renderingsQueued.withLock { $0.subtract(ids) } }
            _ = try? await writes.write { db in
                for id in ids {
                    guard let row = try Row.fetchOne(db, cached: "SELECT * FROM tenants WHERE id = ?", arguments: [id]),
                        Self.keptVersion(row).map({ $0 < Int64(version) }) ?? true
                    else { continue }
                    try db.execute(
                        cached: "UPDATE tenants SET api_json = ?, api_version = ?, api_rev = api_rev + 1 WHERE id = ?",
                        arguments: [Data(try self.rendered(row).bytes), version, id]
                    )
                }
            }
        }
    }

    /// The SQL of a page of tenants, newest first, with the given columns.
    static func listing(_ query: TenantQuery, columns: String) -> (String, StatementArguments) {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let provider = query.provider { clauses.append("provider = ?"); arguments += [provider.rawValue] }
        if let state = query.state { clauses.append("state = ?"); arguments += [state.rawValue] }
        if let externalID = query.externalID { clauses.append("external_id = ?"); arguments += [externalID] }
        if let before = query.before { clauses.append("id < ?"); arguments += [before] }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        arguments += [query.limit + 1]
        return ("SELECT \(columns) FROM tenants \(filter) ORDER BY id DESC LIMIT ?", arguments)
    }

    public func events(tenantID: String?, after: Int64?, limit: Int) async throws -> Page<TenantEvent> {
        var clauses = ["seq > ?"]
        var arguments: StatementArguments = [after ?? 0]
        if let tenantID { clauses.append("tenant_id = ?"); arguments += [tenantID] }
        arguments += [limit + 1]
        let sql = "\(Self.eventColumns) WHERE \(clauses.map { "e." + $0 }.joined(separator: " AND ")) ORDER BY e.seq LIMIT ?"
        return try readNow { [self, arguments] db in
            let rows = try Row.fetchAll(db, cached: sql, arguments: arguments)
            let page = Array(rows.prefix(limit))
            let next = rows.count > limit ? page.last.map { String($0["seq"] as Int64) } : nil
            return Page(items: try page.map(event(from:)), next: next)
        }
    }

    public func update(
        tenantID: String, fence: TenantLease?, voids: Bool, _ change: @escaping @Sendable (TenantContext) throws -> TenantUpdate?
    ) async throws -> Tenant? {
        try await writes.write { [self] db in
            guard let row = try Row.fetchOne(db, cached: "SELECT * FROM tenants WHERE id = ?", arguments: [tenantID]) else { return nil }
            if let fence, row["lease_token"] as Int64 != fence.token || row["generation"] as Int64 != fence.generation {
                throw LeaseLost(tenantID: tenantID)
            }
            let current = try tenant(from: row)
            let attempts = try Int.fetchOne(
                db, cached: "SELECT attempts FROM jobs WHERE tenant_id = ? AND kind IN ('submit', 'check')", arguments: [tenantID]
            ) ?? 0
            let context = TenantContext(
                tenant: current, credentials: try credentials(tenantID, db), workAttempts: attempts,
                submissionPending: (row["submitted_at"] as Double?) != nil
            )
            guard let update = try change(context) else { return current }
            if voids {
                try db.execute(cached: "UPDATE tenants SET generation = generation + 1 WHERE id = ?", arguments: [tenantID])
            }
            if update.clearsSubmission {
                try db.execute(cached: "UPDATE tenants SET submitted_at = NULL WHERE id = ?", arguments: [tenantID])
            }
            if let unsettled = update.submissionUnsettledAt {
                try db.execute(cached: "UPDATE tenants SET submitted_at = ? WHERE id = ? AND submitted_at IS NOT NULL", arguments: [unsettled.unix, tenantID])
            }
            if update.writesTenant {
                let t = update.tenant
                try db.execute(
                    cached: """
                        UPDATE tenants SET state = ?, next_action = ?, provider_status = ?, profile = ?, metadata = ?,
                            credentials_available = ?, last_error = ?, updated_at = ?, state_changed_at = ?, evidence_at = ?,
                            provider_details = ?, credential_check = ?, api_json = ?, api_version = ?, api_rev = api_rev + 1
                        WHERE id = ?
                        """,
                    arguments: [
                        t.state.rawValue, try t.nextAction.map(json), t.providerStatus, try json(t.profile), try json(t.metadata),
                        t.credentialsAvailable, try t.lastError.map(json), t.updatedAt.unix, t.stateChangedAt.unix, t.evidenceAt?.unix,
                        try t.providerDetails.map(json), try t.credentialCheck.map(json), Data(representation.render(t)), representation.version, t.id,
                    ]
                )
            }
            try insert(update.events, db)
            if let credentials = update.credentials {
                let sealed = try box.seal(try encoder.encode(credentials), context: "credentials:\(tenantID)")
                try db.execute(
                    cached: """
                        INSERT INTO tenant_credentials (tenant_id, sealed, key_id, updated_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT (tenant_id) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id, updated_at = excluded.updated_at,
                            token_sealed = NULL, token_expires_at = NULL
                        """,
                    arguments: [tenantID, sealed, box.currentKeyID, update.tenant.updatedAt.unix]
                )
            }
            if !update.keepsWork {
                try replaceWork(of: tenantID, with: update.work, db, now: Date())
            }
            if update.erasesPersonalData {
                try erasePersonalData(of: tenantID, db)
            }
            if update.releasesLease, let fence {
                try db.execute(cached: "UPDATE tenants SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_token = ?", arguments: [tenantID, fence.token])
            }
            return update.writesTenant ? update.tenant : current
        }
    }

    public func credentials(tenantID: String) async throws -> ProviderCredentials? {
        try readNow { [self] db in try credentials(tenantID, db) }
    }

    public func webhookToken(tenantID: String) async throws -> String? {
        try readNow { [self] db in
            guard let sealed = try String.fetchOne(db, cached: "SELECT webhook_token_sealed FROM tenants WHERE id = ?", arguments: [tenantID]) else {
                return nil
            }
            return String(decoding: try box.open(sealed, context: "webhook-token:\(tenantID)"), as: UTF8.self)
        }
    }

    public func webhookRecipient(forToken token: String) async throws -> WebhookRecipient? {
        try readNow { db in
            guard let row = try Row.fetchOne(
                db, cached: "SELECT id, provider, external_id FROM tenants WHERE webhook_token_hash = ?", arguments: [SecretBox.hash(token)]
            ) else { return nil }
            let id: String = row["id"]
            return WebhookRecipient(tenantID: id, provider: try ProviderKind.stored(row["provider"], id: id), externalID: row["external_id"])
        }
    }

    public func audit(_ entry: AuditEntry) async throws {
        let details = try json(entry.details)
        try await writes.write { db in
            try db.execute(
                cached: "INSERT INTO audit_log (at, actor, action, tenant_id, details) VALUES (?, ?, ?, ?, ?)",
                arguments: [entry.at.unix, entry.actor, entry.action, entry.tenantID, details]
            )
        }
    }

    func auditEntry(from row: Row) throws -> AuditEntry {
        AuditEntry(
            at: Date(unix: row["at"]), actor: row["actor"], action: row["action"], tenantID: row["tenant_id"],
            details: try decode([String: String].self, row["details"]) ?? [:]
        )
    }

    /// Offboarding: every copy of the customer's data and every secret of the tenant goes, in the same transaction
    /// as the tombstone. With `secure_delete` the freed space is zeroed; `flushErasures` then clears the WAL.
    func erasePersonalData(of tenantID: String, _ db: Database) throws {
        try db.execute(cached: "UPDATE tenants SET webhook_token_hash = NULL, webhook_token_sealed = NULL WHERE id = ?", arguments: [tenantID])
        try db.execute(cached: "DELETE FROM tenant_credentials WHERE tenant_id = ?", arguments: [tenantID])
        try db.execute(cached: "DELETE FROM webhook_inbox WHERE tenant_id = ?", arguments: [tenantID])
        try db.execute(cached: "DELETE FROM jobs WHERE tenant_id = ?", arguments: [tenantID])
        // The key and its status outlive the tenant, so a client's retry with the same key is answered (the tenant's
        // id and state, nothing else) rather than creating a second tenant; the answer's personal data goes.
        try db.execute(
            cached: "UPDATE idempotency_keys SET body = ?, headers = ? WHERE tenant_id = ? AND completed_at IS NOT NULL",
            arguments: [IdempotencyErasure.body(tenantID: tenantID), IdempotencyErasure.headers, tenantID]
        )
        try db.execute(cached: "UPDATE audit_log SET details = '{}' WHERE tenant_id = ?", arguments: [tenantID])
        try db.execute(
            cached: "UPDATE delivery_attempts SET excerpt = NULL WHERE delivery_id IN (SELECT id FROM deliveries WHERE tenant_id = ?)",
            arguments: [tenantID]
        )
        // History keeps its shape (ids, states, times, sources); the customer's data leaves every snapshot.
        try db.execute(
            cached: """
                UPDATE tenant_events SET tenant = json_set(tenant, '$.profile', json('{}'), '$.metadata', json('{}'),
                    '$.next_action', NULL, '$.last_error', NULL, '$.provider_status', NULL, '$.provider_details', NULL)
                WHERE tenant_id = ?
                """,
            arguments: [tenantID]
        )
    }

    public func flushErasures() async throws {
        try await checkpoint()
    }

    // MARK: - Rows

    func tenant(from row: Row) throws -> Tenant {
        let id: String = row["id"]
        return Tenant(
            id: id, provider: try ProviderKind.stored(row["provider"], id: id), externalID: row["external_id"],
            state: try TenantState.stored(row["state"], id: id),
            nextAction: try decode(NextAction.self, row["next_action"]), providerStatus: row["provider_status"],
            profile: try decode(Profile.self, row["profile"]) ?? Profile(),
            metadata: try decode([String: String].self, row["metadata"]) ?? [:],
            credentialsAvailable: row["credentials_available"], lastError: try decode(TenantError.self, row["last_error"]),
            createdAt: Date(unix: row["created_at"]), updatedAt: Date(unix: row["updated_at"]),
            stateChangedAt: Date(unix: row["state_changed_at"]), evidenceAt: (row["evidence_at"] as Double?).map(Date.init(unix:)),
            providerDetails: try? decode(ProviderDetails.self, row["provider_details"]),
            credentialCheck: try? decode(CredentialCheckRecord.self, row["credential_check"])
        )
    }

    /// An event's row with its base snapshot (`base_tenant`, for a compact one): `SELECT` this, then `WHERE` on `e.`.
    static let eventColumns = "SELECT e.*, b.tenant AS base_tenant FROM tenant_events e LEFT JOIN tenant_events b ON b.seq = e.base_seq"

    func event(from row: Row) throws -> TenantEvent {
        guard let type = TenantEvent.Kind(rawValue: row["type"]), let source = ChangeSource(rawValue: row["source"]),
            let snapshot = SnapshotPatch.eventSnapshot(
                stored: row["tenant"], base: (row["base_seq"] as DatabaseValue).isNull ? nil : .some(row["base_tenant"] as String?)
            ),
            let tenant = try decode(Tenant.self, snapshot)
        else { throw DatabaseError(message: "unreadable event row") }
        return TenantEvent(
            id: row["id"], tenantID: row["tenant_id"], type: type, createdAt: Date(unix: row["created_at"]),
            previousState: (row["previous_state"] as String?).flatMap(TenantState.init(rawValue:)), source: source, tenant: tenant
        )
    }

    func insert(_ events: [TenantEvent], _ db: Database) throws {
        for event in events {
            var snapshot: [UInt8] = []
            TenantJSON.write(event.tenant, link: nil, into: &snapshot)
            // After the tenant's first event, only what differs from that one's full snapshot (see SnapshotPatch).
            var base: Int64?
            if let first = try Row.fetchOne(
                db, cached: "SELECT seq, tenant FROM tenant_events WHERE tenant_id = ? AND base_seq IS NULL ORDER BY seq LIMIT 1",
                arguments: [event.tenantID]
            ), let patch = SnapshotPatch.diff(base: Array((first["tenant"] as String).utf8), full: snapshot) {
                base = first["seq"]
                snapshot = patch
            }
            try db.execute(
                cached: "INSERT INTO tenant_events (id, tenant_id, type, source, previous_state, created_at, tenant, base_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    event.id, event.tenantID, event.type.rawValue, event.source.rawValue, event.previousState?.rawValue,
                    event.createdAt.unix, String(decoding: snapshot, as: UTF8.self), base,
                ]
            )
            if deliversEvents {
                try db.execute(
                    cached: "INSERT INTO deliveries (id, event_seq, tenant_id, status, next_attempt_at, created_at) VALUES (?, ?, ?, 'pending', ?, ?)",
                    arguments: ["dlv_" + event.id.dropFirst(4), db.lastInsertedRowID, event.tenantID, event.createdAt.unix, event.createdAt.unix]
                )
            }
        }
    }

    public func accessToken(tenantID: String) async throws -> IssuedToken? {
        try readNow { [self] db in
            guard let sealed = try String.fetchOne(db, cached: "SELECT token_sealed FROM tenant_credentials WHERE tenant_id = ?", arguments: [tenantID])
            else { return nil }
            // A cache: a token sealed under a key no longer configured is no token (the next request logs in again).
            return try? decoder.decode(IssuedToken.self, from: try box.open(sealed, context: "access-token:\(tenantID)"))
        }
    }

    public func saveAccessToken(_ token: IssuedToken, lease: TenantLease) async throws {
        let sealed = try box.seal(try encoder.encode(token), context: "access-token:\(lease.tenantID)")
        try await writes.write { db in
            try Self.requireHeld(lease, db)
            try db.execute(
                cached: "UPDATE tenant_credentials SET token_sealed = ?, token_expires_at = ? WHERE tenant_id = ?",
                arguments: [sealed, token.expiresAt?.unix, lease.tenantID]
            )
        }
    }

    /// The fence of a write made under a lease: `LeaseLost` unless the lease is still the holder's (its token), the
    /// conversation was not voided (its generation) and the tenant is not offboarded.
    static func requireHeld(_ lease: TenantLease, _ db: Database) throws {
        guard try Bool.fetchOne(
            db, cached: "SELECT 1 FROM tenants WHERE id = ? AND lease_token = ? AND generation = ? AND state <> 'offboarded'",
            arguments: [lease.tenantID, lease.token, lease.generation]
        ) != nil else { throw LeaseLost(tenantID: lease.tenantID) }
    }

    func credentials(_ tenantID: String, _ db: Database) throws -> ProviderCredentials? {
        guard let sealed = try String.fetchOne(db, cached: "SELECT sealed FROM tenant_credentials WHERE tenant_id = ?", arguments: [tenantID]) else {
            return nil
        }
        return try decoder.decode(ProviderCredentials.self, from: try box.open(sealed, context: "credentials:\(tenantID)"))
    }
}
