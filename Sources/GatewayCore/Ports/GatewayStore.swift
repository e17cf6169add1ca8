import Foundation

/// Everything the gateway keeps, behind one value: SQLite in one process (`SQLiteStore`), or PostgreSQL shared by
/// several replicas (`PostgresStore`). The service and the HTTP layer see only the ports; this adds what assembling
/// and running a gateway needs besides them.
public protocol GatewayStore: TenantStore, APIKeyStore, IdempotencyStore, DeliveryStore, OperationsStore, MetricsStore, RetentionStore,
    EventFeed, OnboardingLinkStore
{
    /// Applies the migrations still missing; returns the versions applied now.
    @discardableResult
    func migrate() async throws -> [Int]
    /// True when the database answers and every migration is applied (`/readyz`).
    func isReady() async -> Bool
    /// Called once at start. A store only this process uses lets go of the leases and unfinished Idempotency-Key
    /// claims an earlier run left; a shared store leaves them to run out, as other replicas may hold them.
    func recoverFromEarlierRun(now: Date) async throws
    /// A gateway-wide secret (e.g. the onboarding-link key), made by `make` on first use and kept sealed. Replicas
    /// starting together agree on one value.
    func gatewaySecret(named name: String, make: @escaping @Sendable () -> Data) async throws -> Data
    /// Re-seals every stored secret under the newest key; returns how many values moved, per table.
    func resealWithNewestKey(batchSize: Int) async throws -> [String: Int]
    /// Lets go of connections and files.
    func close() async
    /// Circuit breakers every replica shares (PostgreSQL); nil where one process keeps them in memory (SQLite).
    var sharedCircuits: (any SharedCircuitStore)? { get }
}

extension GatewayStore {
    public var sharedCircuits: (any SharedCircuitStore)? { nil }
}

/// The database cannot be reached or written right now (an outage, a full disk, no connection in time): nothing was
/// changed, and the same request may be made again later. Answered `503 storage_unavailable` with `Retry-After`.
public struct StorageUnavailable: Error, Sendable, CustomStringConvertible {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { "storage unavailable: \(reason)" }
}

/// Withdrawn onboarding links: a partner whose link leaked revokes every link made so far for a tenant.
public protocol OnboardingLinkStore: Sendable {
    /// Links made at or before `at` are refused from now on.
    func revokeOnboardingLinks(tenantID: String, at: Date) async throws
    /// When the tenant's links were last revoked, if ever.
    func onboardingLinksRevokedAt(tenantID: String) async throws -> Date?
}
