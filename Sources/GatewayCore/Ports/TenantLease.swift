import Foundation

/// The right to talk to a tenant's provider, held by one actor at a time, and the fence every write made from a
/// provider's answer must pass: the write commits only while `token` is still the tenant's lease token (nobody took
/// the lease over) and `generation` its generation (nothing voided the conversation, e.g. an offboarding).
public struct TenantLease: Sendable, Equatable {
    public var tenantID: String
    public var token: Int64
    public var generation: Int64

    public init(tenantID: String, token: Int64, generation: Int64) {
        self.tenantID = tenantID
        self.token = token
        self.generation = generation
    }
}

/// How an attempt to take a tenant's lease ended.
public enum LeaseAttempt: Sendable, Equatable {
    case acquired(TenantLease)
    /// Someone else holds it until then.
    case busy(until: Date)
    case notFound
}

/// A fenced write found that its lease was taken over or its conversation voided: nothing was written.
public struct LeaseLost: Error, Sendable, Equatable {
    public var tenantID: String

    public init(tenantID: String) {
        self.tenantID = tenantID
    }
}
