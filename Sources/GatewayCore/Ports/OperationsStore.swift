import Foundation

/// The numbers an operator watches (`GET /admin/stats`).
public struct OperationsStats: Sendable, Equatable {
    /// provider → state → count.
    public var tenants: [String: [String: Int]]
    /// kind → queued count.
    public var queuedWork: [String: Int]
    /// How long the longest-overdue piece of work has been due.
    public var oldestDueSeconds: TimeInterval?
    /// Tenants waiting (pending or action_required) longer than the threshold.
    public var stuckCount: Int
    public var stuckSample: [String]

    public init(tenants: [String: [String: Int]], queuedWork: [String: Int], oldestDueSeconds: TimeInterval?, stuckCount: Int, stuckSample: [String]) {
        self.tenants = tenants
        self.queuedWork = queuedWork
        self.oldestDueSeconds = oldestDueSeconds
        self.stuckCount = stuckCount
        self.stuckSample = stuckSample
    }
}

/// A piece of queued work as operators see it.
public struct QueuedWork: Sendable, Equatable {
    public var kind: WorkKind
    public var runAt: Date
    public var attempts: Int
    public var lastError: String?

    public init(kind: WorkKind, runAt: Date, attempts: Int, lastError: String?) {
        self.kind = kind
        self.runAt = runAt
        self.attempts = attempts
        self.lastError = lastError
    }
}

/// Read models and housekeeping for operators.
public protocol OperationsStore: Sendable {
    /// Tenants whose external id, email or tax id is `q` (email case-insensitively), newest first.
    func searchTenants(q: String?, state: TenantState?, provider: ProviderKind?, limit: Int, before: String?) async throws -> Page<Tenant>
    func operationsStats(now: Date, stuckAfter: TimeInterval) async throws -> OperationsStats
    func queued(tenantID: String) async throws -> [QueuedWork]
    func audit(tenantID: String?, limit: Int, before: Int64?) async throws -> Page<(id: Int64, entry: AuditEntry)>
    /// A consistent copy of the database at `path`, made while serving.
    func backup(to path: String) async throws
    /// Set when the store cannot copy itself (a database the gateway does not own the files of): how the operator
    /// backs it up instead. Holds no secret.
    var backupAdvice: String? { get }
}

extension OperationsStore {
    public var backupAdvice: String? { nil }

    /// Every audit entry (of one tenant, or all), oldest first: a convenience for tests and tools, which page
    /// through `audit(tenantID:limit:before:)`.
    public func auditEntries(tenantID: String?) async throws -> [AuditEntry] {
        var entries: [AuditEntry] = []
        var before: Int64?
        while true {
            let page = try await audit(tenantID: tenantID, limit: 500, before: before)
            entries += page.items.map(\.entry)
            guard let next = page.next, let id = Int64(next) else { break }
            before = id
        }
        return entries.reversed()
    }
}
