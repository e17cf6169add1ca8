import Foundation

/// The kinds of durable work. `submit` and `check` are a tenant's own (at most one queued); `webhook` processes
/// one stored inbox entry.
public enum WorkKind: String, Sendable, Codable {
    case submit
    case check
    case webhook
}

/// A piece of due work claimed by a worker, leased so no other worker runs it meanwhile.
public struct WorkItem: Sendable, Equatable {
    public var id: Int64
    public var tenantID: String
    public var kind: WorkKind
    /// Attempts so far, this one included.
    public var attempts: Int
    public var inboxID: Int64?
    /// The tenant's lease, taken with the claim: only its holder talks to the provider about this tenant.
    public var lease: TenantLease
    /// The API request that queued the work (its X-Request-ID), when one did.
    public var requestID: String?
    /// That request's span (W3C `traceparent`), when tracing was on: the work's span continues its trace.
    public var traceParent: String?

    public init(
        id: Int64, tenantID: String, kind: WorkKind, attempts: Int, inboxID: Int64? = nil, lease: TenantLease, requestID: String? = nil,
        traceParent: String? = nil
    ) {
        self.id = id
        self.requestID = requestID
        self.traceParent = traceParent
        self.lease = lease
        self.tenantID = tenantID
        self.kind = kind
        self.attempts = attempts
        self.inboxID = inboxID
    }
}

/// A tenant's next piece of work as it is written to the queue.
public struct ScheduledWork: Sendable, Equatable {
    public var kind: WorkKind
    public var runAt: Date
    public var attempts: Int
    /// Set when the caller runs the work itself right away, so workers leave it alone until then.
    public var leasedUntil: Date?
    /// The API request the work is queued for. Read from `RequestScope` by the caller in its own task: a store may run
    /// the code that builds an update in another task (SQLite's group commit), where the scope is someone else's.
    public var requestID: String?
    /// The span of that request (`RequestScope.traceParent`), read the same way.
    public var traceParent: String?

    public init(kind: WorkKind, runAt: Date, attempts: Int, leasedUntil: Date? = nil, requestID: String? = nil, traceParent: String? = nil) {
        self.kind = kind
        self.requestID = requestID
        self.traceParent = traceParent
        self.runAt = runAt
        self.attempts = attempts
        self.leasedUntil = leasedUntil
    }
}

/// What an update sees: the tenant as committed, its decrypted credentials and its queued work's attempt count.
public struct TenantContext: Sendable {
    public var tenant: Tenant
    public var credentials: ProviderCredentials?
    public var workAttempts: Int
    /// A submission was about to be made whose outcome is not known yet: ask the provider before calling again.
    public var submissionPending: Bool

    public init(tenant: Tenant, credentials: ProviderCredentials?, workAttempts: Int, submissionPending: Bool = false) {
        self.tenant = tenant
        self.credentials = credentials
        self.workAttempts = workAttempts
        self.submissionPending = submissionPending
    }
}

/// Everything one state change writes, committed together or not at all.
public struct TenantUpdate: Sendable {
    public var tenant: Tenant
    public var events: [TenantEvent]
    /// New credentials to store (encrypted), replacing the old ones.
    public var credentials: ProviderCredentials?
    /// The tenant's next work; `nil` removes any queued `submit`/`check` work.
    public var work: ScheduledWork?
    /// When false, the tenant row is left as it is and only the work is rescheduled.
    public var writesTenant: Bool
    /// When true, queued work is left as it is (`work` is ignored).
    public var keepsWork = false
    /// Offboarding: erase personal data and secrets everywhere the tenant left them (history, inbox, audit
    /// details, kept responses, credentials, tokens).
    public var erasesPersonalData = false
    /// A definite answer to a submission arrived: forget the pending intent.
    public var clearsSubmission = false
    /// A submission's outcome is unknown as of this moment (it timed out, the connection reset): the settle period
    /// before the provider is asked again counts from here, not from when the call started.
    public var submissionUnsettledAt: Date?
    /// The writer is done with the tenant: its lease (the `fence`, which the store has checked) is let go in the same
    /// transaction, as `releaseLease` would, saving that commit.
    public var releasesLease = false

    public init(tenant: Tenant, events: [TenantEvent], credentials: ProviderCredentials?, work: ScheduledWork?, writesTenant: Bool) {
        self.tenant = tenant
        self.events = events
        self.credentials = credentials
        self.work = work
        self.writesTenant = writesTenant
    }
}

/// A webhook waiting in the inbox with its processing queued.
public struct QueuedWebhook: Sendable, Equatable {
    public var inboxID: Int64
    public var workID: Int64

    public init(inboxID: Int64, workID: Int64) {
        self.inboxID = inboxID
        self.workID = workID
    }
}

/// The tenant a webhook URL's token names: what intake checks before it stores the payload.
public struct WebhookRecipient: Sendable, Equatable {
    public var tenantID: String
    public var provider: ProviderKind
    /// The partner's id for the customer, which a payload must name.
    public var externalID: String

    public init(tenantID: String, provider: ProviderKind, externalID: String) {
        self.tenantID = tenantID
        self.provider = provider
        self.externalID = externalID
    }
}

/// Filters and paging for tenant lists, newest first.
public struct TenantQuery: Sendable, Equatable {
    public var provider: ProviderKind?
    public var state: TenantState?
    public var externalID: String?
    public var limit: Int
    /// The id of the last tenant of the previous page.
    public var before: String?

    public init(provider: ProviderKind? = nil, state: TenantState? = nil, externalID: String? = nil, limit: Int = 20, before: String? = nil) {
        self.provider = provider
        self.state = state
        self.externalID = externalID
        self.limit = limit
        self.before = before
    }
}

/// One page of a list and the position after its last item (nil when there is no more).
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var next: String?

    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }
}

/// Who did what to which tenant, for `GET /admin/audit`. Details never hold secrets.
public struct AuditEntry: Sendable, Equatable {
    public var at: Date
    public var actor: String
    public var action: String
    public var tenantID: String?
    public var details: [String: String]

    public init(at: Date, actor: String, action: String, tenantID: String?, details: [String: String] = [:]) {
        self.at = at
        self.actor = actor
        self.action = action
        self.tenantID = tenantID
        self.details = details
    }
}

/// Who did something, as the audit log names them: a key's name or `admin`, and the client's address.
public struct Actor: Sendable, Equatable {
    public var name: String
    public var ip: String?

    public init(name: String, ip: String? = nil) {
        self.name = name
        self.ip = ip
    }
}

extension AuditEntry {
    /// An entry naming `actor`, with the client's address among the details.
    public init(at: Date, actor: Actor, action: String, tenantID: String?, details: [String: String] = [:]) {
        var details = details
        details["ip"] = actor.ip
        self.init(at: at, actor: actor.name, action: action, tenantID: tenantID, details: details)
    }
}

/// The result of inserting a new tenant: created, or an existing one held the same `(provider, external_id)`.
public enum InsertOutcome: Sendable {
    /// Inserted, with the tenant's lease held by the caller, who makes the first provider call.
    case inserted(TenantLease)
    case existing(Tenant)
    /// Another live tenant of the provider holds the company (`companyKey`).
    case companyTaken
}

extension TenantStore {
    /// Extends a lease before a provider call that submits nothing.
    public func renewLease(_ lease: TenantLease, now: Date, until: Date) async throws -> Bool {
        try await renewLease(lease, now: now, until: until, movesMark: false)
    }
}

/// Durable state of tenants, their history, credentials, inbox, queue and audit.
/// Implementations encrypt credentials and inbox payloads and hash tokens: callers hand over plaintext.
public protocol TenantStore: Sendable {
    /// Inserts a tenant with its first events and work, its lease held by `leaseOwner` until `leaseUntil`.
    /// `companyKey`: where the provider's credentials belong to a company (MagniFinance), its tax id; a live tenant of
    /// the same provider already holding it makes the answer `.companyTaken` and inserts nothing.
    func insert(
        _ tenant: Tenant, events: [TenantEvent], work: ScheduledWork, webhookToken: String?, companyKey: String?,
        leaseOwner: String, leaseUntil: Date
    ) async throws -> InsertOutcome
    func tenant(id: String) async throws -> Tenant?
    /// Whether a live tenant of `provider` other than `excluding` holds the company with this tax id.
    func companyHeld(provider: ProviderKind, taxID: String, excluding tenantID: String) async throws -> Bool
    func tenants(_ query: TenantQuery) async throws -> Page<Tenant>
    /// The tenant as the API shows it, from the rendering kept beside it (`TenantRepresentation`); one of another
    /// shape's version is rendered again from the row, and kept.
    func storedTenant(id: String) async throws -> StoredTenant?
    /// A page of `tenants(_:)` as kept renderings, in the same order.
    func storedTenants(_ query: TenantQuery) async throws -> Page<StoredTenant>
    func events(tenantID: String?, after: Int64?, limit: Int) async throws -> Page<TenantEvent>

    /// Reads the tenant, lets `change` decide, and writes the result, all in one transaction.
    /// Returns the tenant as committed, or nil when it does not exist.
    /// `fence`: the write is made from a provider's answer under this lease; it throws `LeaseLost` (and writes nothing)
    /// when the lease was taken over or the conversation voided. `voids`: the write voids conversations in flight.
    func update(
        tenantID: String, fence: TenantLease?, voids: Bool, _ change: @escaping @Sendable (TenantContext) throws -> TenantUpdate?
    ) async throws -> Tenant?

    /// The access token kept for the tenant's current credentials, opened; nil when there is none, or it can no longer
    /// be opened (it is a cache: the caller logs in again).
    func accessToken(tenantID: String) async throws -> IssuedToken?
    /// Keeps an access token beside the tenant's credentials (sealed), fenced by `lease`: `LeaseLost` when the lease
    /// was taken over or the conversation voided (an offboarding), and nothing is written. Replacing the credentials
    /// drops it.
    func saveAccessToken(_ token: IssuedToken, lease: TenantLease) async throws

    /// Takes the tenant's lease if it is free (or ran out). Each acquisition gets a new fencing token.
    func acquireLease(tenantID: String, owner: String, now: Date, until: Date) async throws -> LeaseAttempt
    /// Extends a lease before a provider call; false when it is no longer the holder's (taken over, or voided).
    /// `movesMark`: the call is a submission that renews because it did not start right after its mark
    /// (`recordSubmission`): it waited for its turn, or the mark's commit was slow. An unsettled mark moves to `now`,
    /// so its settle period counts from the call's start, not from before the wait.
    func renewLease(_ lease: TenantLease, now: Date, until: Date, movesMark: Bool) async throws -> Bool
    /// Lets the lease go (a no-op when it was taken over meanwhile).
    func releaseLease(_ lease: TenantLease) async throws
    /// Records, fenced, that a submission is about to be made, before the call: after a crash or a lost answer the
    /// next attempt knows to ask the provider first. When an earlier submission's outcome is unknown and less than
    /// `settle` has passed since it became so, nothing is recorded and the answer says until when to wait. Without
    /// `marks`, it only says what earlier submissions left. With `renewUntil`, a mark also extends the lease to then, as
    /// `renewLease` would (the call it precedes then needs no renewal of its own: one commit instead of two).
    func recordSubmission(_ lease: TenantLease, at: Date, settle: TimeInterval, marks: Bool, renewUntil: Date?) async throws -> SubmissionRecord
    /// Makes the tenant's own work due by `now` (queueing a check if it has none), for a request that found it busy, or
    /// a provider's `401` that asks for a credential check (which may pass a later time).
    func expedite(tenantID: String, now: Date) async throws

    func credentials(tenantID: String) async throws -> ProviderCredentials?
    func webhookToken(tenantID: String) async throws -> String?
    /// Who a webhook token names, in one read of three columns (webhook intake's hot path: nothing more is needed
    /// before the payload is stored, and a full tenant's decoding was a tenth of an intake's CPU).
    func webhookRecipient(forToken token: String) async throws -> WebhookRecipient?

    /// Stores a webhook payload and queues its processing; false when the same payload was stored before.
    /// `bearsCredentials`: the payload brings a key, so it is processed on its own, never finished with another's
    /// check.
    func receiveWebhook(tenantID: String, payload: Data, at: Date, bearsCredentials: Bool) async throws -> Bool
    func webhookPayload(inboxID: Int64) async throws -> Data?
    func finishWebhook(inboxID: Int64, workID: Int64, outcome: String, at: Date) async throws
    /// The tenant's other webhooks still queued that bring no key (as intake found), received at `receivedBy` or
    /// before, oldest first, at most `limit`: those a status check asked now answers as well as one of their own would.
    /// No payload is opened.
    func queuedWebhooks(tenantID: String, excluding workID: Int64, receivedBy: Date, limit: Int) async throws -> [QueuedWebhook]
    /// Finishes several of the tenant's webhooks in one transaction, fenced by `lease` (`LeaseLost`, and nothing
    /// finished, when it was taken over or the conversation voided).
    func finishWebhooks(_ webhooks: [(inboxID: Int64, workID: Int64)], outcome: String, at: Date, lease: TenantLease) async throws

    /// Claims due work of tenants whose lease is free, at most one item per tenant, taking each tenant's lease.
    /// `quotas`, when given, caps the items per provider (the worker passes each provider's free call slots).
    func claimDueWork(now: Date, limit: Int, leaseUntil: Date, owner: String, quotas: [ProviderKind: Int]?) async throws -> [WorkItem]
    /// Puts claimed work back to run later (a transient failure of work that is not a tenant's own).
    func reschedule(workID: Int64, runAt: Date, lastError: String) async throws

    func audit(_ entry: AuditEntry) async throws

    /// Makes erased data unrecoverable from the database files (checkpoints the WAL).
    func flushErasures() async throws
}

extension TenantStore {
    /// An unfenced write that voids nothing (metadata, audit-only changes).
    public func update(tenantID: String, _ change: @escaping @Sendable (TenantContext) throws -> TenantUpdate?) async throws -> Tenant? {
        try await update(tenantID: tenantID, fence: nil, voids: false, change)
    }
}

/// What `recordSubmission` found and did.
public enum SubmissionRecord: Sendable, Equatable {
    /// No earlier submission is unsettled: this one is recorded.
    case first
    /// An earlier submission's outcome is unknown and has settled: this one is recorded, and must ask first.
    case afterUnknown
    /// An earlier submission's outcome is unknown and the provider may still be working on it: nothing recorded,
    /// nothing may be concluded or submitted before `until`.
    case settling(until: Date)

    /// The settle decision, shared by the stores: `earlier` is the unsettled mark, if any.
    public static func decide(earlier: Date?, at: Date, settle: TimeInterval) -> SubmissionRecord {
        guard let earlier else { return .first }
        let until = earlier.addingTimeInterval(settle)
        // A mark in the future beyond one settle period (a bad row, a clock gone back) never parks work for good.
        if at < until, earlier <= at.addingTimeInterval(settle) { return .settling(until: until) }
        return .afterUnknown
    }
}

extension TenantStore {
    /// Inserts a tenant whose provider's credentials are not a company's.
    public func insert(
        _ tenant: Tenant, events: [TenantEvent], work: ScheduledWork, webhookToken: String?, leaseOwner: String, leaseUntil: Date
    ) async throws -> InsertOutcome {
        try await insert(tenant, events: events, work: work, webhookToken: webhookToken, companyKey: nil, leaseOwner: leaseOwner, leaseUntil: leaseUntil)
    }

    /// Stores a webhook taken to bring a key: processed on its own, as every webhook was before they could share a
    /// check.
    public func receiveWebhook(tenantID: String, payload: Data, at: Date) async throws -> Bool {
        try await receiveWebhook(tenantID: tenantID, payload: payload, at: at, bearsCredentials: true)
    }

    /// Records a submission with no settle period; true when an earlier submission's outcome is unknown.
    public func recordSubmission(_ lease: TenantLease, at: Date) async throws -> Bool {
        try await recordSubmission(lease, at: at, settle: 0, marks: true, renewUntil: nil) != .first
    }
}

/// A stored row with a value this build cannot read (a provider it does not register, a state it does not know):
/// an error that names the row, never a default.
public struct UnreadableRow: Error, CustomStringConvertible, Sendable {
    public var table: String
    public var id: String
    public var column: String
    public var value: String

    public init(table: String, id: String, column: String, value: String) {
        self.table = table
        self.id = id
        self.column = column
        self.value = String(value.prefix(64))
    }

    public var description: String { "\(table) row \(id) has \(column) \"\(value)\", which this build does not know" }
}

extension ProviderKind {
    /// The provider id of a stored row; a malformed one names the row.
    public static func stored(_ text: String, table: String = "tenants", id: String) throws -> ProviderKind {
        guard let kind = ProviderKind(rawValue: text) else { throw UnreadableRow(table: table, id: id, column: "provider", value: text) }
        return kind
    }
}

extension TenantState {
    /// The state of a stored row; an unknown one names the row.
    public static func stored(_ text: String, id: String) throws -> TenantState {
        guard let state = TenantState(rawValue: text) else { throw UnreadableRow(table: "tenants", id: id, column: "state", value: text) }
        return state
    }
}
