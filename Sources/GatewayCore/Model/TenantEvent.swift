import Foundation

/// Where a piece of evidence or a command came from; recorded with every transition.
public enum ChangeSource: String, Codable, Sendable {
    case api
    case webhook
    case poll
    case admin
}

/// An entry of a tenant's history, and later an outbound event. Never holds credentials.
public struct TenantEvent: Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case created = "tenant.created"
        case stateChanged = "tenant.state_changed"
        case credentialsAvailable = "tenant.credentials_available"
        /// The provider refused the stored credentials: the tenant is `suspended`, `last_error.code` `credentials_revoked`.
        case credentialsInvalid = "tenant.credentials_invalid"
        /// Credentials refused earlier work again (the customer re-linked, or new ones were supplied).
        case credentialsRestored = "tenant.credentials_restored"
        case offboarded = "tenant.offboarded"
    }

    public var id: String
    public var tenantID: String
    public var type: Kind
    public var createdAt: Date
    public var previousState: TenantState?
    public var source: ChangeSource
    /// The tenant as it was right after the change.
    public var tenant: Tenant

    public init(
        id: String, tenantID: String, type: Kind, createdAt: Date,
        previousState: TenantState?, source: ChangeSource, tenant: Tenant
    ) {
        self.id = id
        self.tenantID = tenantID
        self.type = type
        self.createdAt = createdAt
        self.previousState = previousState
        self.source = source
        self.tenant = tenant
    }
}
