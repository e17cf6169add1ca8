import Foundation

/// The work a tenant should have queued after a decision. At most one piece of work per tenant is queued.
public enum WorkPlan: Sendable, Equatable {
    /// Ask the provider to onboard the tenant (first call, or again after a transient failure).
    case submit(retryAfter: TimeInterval?)
    /// Ask the provider how the tenant is doing.
    case check(Cadence, retryAfter: TimeInterval?)
    /// Nothing left to do for this tenant.
    case none

    /// How soon checks repeat: while waiting on someone (backing off from ~30 s to ~1 h), or a daily health check.
    public enum Cadence: String, Sendable, Equatable {
        case awaiting
        case maintenance
    }
}

/// An event the decision asks to record, before ids and snapshots are attached.
public struct PlannedEvent: Sendable, Equatable {
    public var type: TenantEvent.Kind
    public var previousState: TenantState?

    public init(_ type: TenantEvent.Kind, previousState: TenantState? = nil) {
        self.type = type
        self.previousState = previousState
    }
}

/// The state machine's answer: the tenant after the observation, what to record and what to schedule.
public struct Decision: Sendable, Equatable {
    public var tenant: Tenant
    public var events: [PlannedEvent]
    public var work: WorkPlan
    /// False when the observation was stale or said nothing new: nothing about the tenant must be written.
    public var changed: Bool
    /// True when the waiting period starts anew (state or next action changed), so backoff restarts.
    public var resetsBackoff: Bool
    /// The credentials to store, replacing the tenant's; nil leaves what is stored as it is. Storage writes these and
    /// nothing else, so credentials the rules refuse (late, unbound, for an offboarded tenant) are never written.
    public var credentials: ProviderCredentials?

    public init(tenant: Tenant, events: [PlannedEvent], work: WorkPlan, changed: Bool, resetsBackoff: Bool, credentials: ProviderCredentials? = nil) {
        self.tenant = tenant
        self.events = events
        self.work = work
        self.changed = changed
        self.resetsBackoff = resetsBackoff
        self.credentials = credentials
    }

    public var stateChanged: Bool { events.contains { $0.type == .stateChanged || $0.type == .offboarded } }
}

/// Commands that make no sense in the tenant's current state.
public enum TransitionError: Error, Sendable, Equatable {
    case notAllowed(command: Command, state: TenantState)
}
