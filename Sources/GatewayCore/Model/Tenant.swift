import Foundation

/// The six states of the public contract; how each provider maps onto them is in `docs/providers.md`.
public enum TenantState: String, Codable, Sendable, CaseIterable {
    case pending
    case actionRequired = "action_required"
    case active
    case suspended
    case failed
    case offboarded
}

/// What the end customer must do next while a tenant is `action_required`.
public struct NextAction: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case redirectToURL = "redirect_to_url"
        case awaitApproval = "await_approval"
        case provideCredentials = "provide_credentials"
    }

    public var type: Kind
    public var url: String?

    public init(type: Kind, url: String? = nil) {
        self.type = type
        self.url = url
    }
}

/// One field-level problem, named by the request's own dotted path (`profile.company.tax_id`).
public struct FieldError: Codable, Sendable, Equatable {
    public var field: String
    public var code: String
    public var message: String

    public init(field: String, code: String, message: String) {
        self.field = field
        self.code = code
        self.message = message
    }
}

/// Why a tenant is `failed` (or why the last attempt went wrong), as shown to the partner.
public struct TenantError: Codable, Sendable, Equatable {
    public var code: String
    public var message: String
    public var errors: [FieldError]
    public var at: Date

    /// `last_error.code` of a tenant whose stored credentials the provider refused.
    public static let credentialsRevoked = "credentials_revoked"

    public init(code: String, message: String, errors: [FieldError] = [], at: Date) {
        self.code = code
        self.message = message
        self.errors = errors
        self.at = at
    }
}

/// A customer being onboarded onto one provider: the domain's central record.
public struct Tenant: Sendable, Equatable {
    public var id: String
    public var provider: ProviderKind
    public var externalID: String
    public var state: TenantState
    public var nextAction: NextAction?
    public var providerStatus: String?
    public var profile: Profile
    public var metadata: [String: String]
    public var credentialsAvailable: Bool
    public var lastError: TenantError?
    public var createdAt: Date
    public var updatedAt: Date
    public var stateChangedAt: Date
    /// The time of the newest provider evidence applied; older evidence is stale and cannot move the tenant.
    public var evidenceAt: Date?
    /// What the provider reports about the ready customer (`provider_details`), with when it was read.
    public var providerDetails: ProviderDetails?
    /// The last credential health check (the console's and the admin API's; not in the partner's tenant).
    public var credentialCheck: CredentialCheckRecord?

    /// The stored credentials were refused by the provider (`suspended`, `credentials_revoked`).
    public var credentialsRevoked: Bool { lastError?.code == TenantError.credentialsRevoked }

    public init(
        id: String, provider: ProviderKind, externalID: String, state: TenantState,
        nextAction: NextAction? = nil, providerStatus: String? = nil, profile: Profile,
        metadata: [String: String] = [:], credentialsAvailable: Bool = false, lastError: TenantError? = nil,
        createdAt: Date, updatedAt: Date, stateChangedAt: Date, evidenceAt: Date? = nil, providerDetails: ProviderDetails? = nil,
        credentialCheck: CredentialCheckRecord? = nil
    ) {
        self.providerDetails = providerDetails
        self.credentialCheck = credentialCheck
        self.id = id
        self.provider = provider
        self.externalID = externalID
        self.state = state
        self.nextAction = nextAction
        self.providerStatus = providerStatus
        self.profile = profile
        self.metadata = metadata
        self.credentialsAvailable = credentialsAvailable
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.stateChangedAt = stateChangedAt
        self.evidenceAt = evidenceAt
    }
}
