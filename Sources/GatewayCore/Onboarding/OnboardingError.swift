import Foundation

/// Everything the onboarding service can refuse, with a stable code; the server maps each to one HTTP status.
public enum OnboardingError: Error, Sendable, Equatable {
    case validationFailed([FieldError])
    case tenantNotFound
    case tenantExists(tenantID: String)
    case providerNotConfigured(ProviderKind)
    case credentialsNotAvailable
    case credentialsRejected
    case invalidState(TenantState, action: String)
    case providerUnavailable(reason: String)
    case webhookTokenUnknown
    case webhookMalformed
    case webhookRejected
    /// The provider has no customer-facing URL; the text says what the customer does instead.
    case onboardingLinkNotSupported(ProviderKind, String)
    /// Another actor holds the tenant's lease (talks to its provider) and did not let go in time.
    case tenantBusy
    /// The tenant changed (offboarded, corrected) while its provider was being asked: the answer was not kept.
    case tenantChanged
    /// The provider knows no user for this customer yet, so no key can be proven theirs.
    case providerUserUnknown(ProviderKind)
    /// Fields the provider already holds cannot change now (`ProfileFreeze`).
    case profileFrozen([String])
    /// Another live tenant of this provider holds the company (its tax id), and with it the company's
    /// credentials: a second is refused, naming nobody.
    case companyAlreadyOnboarded
    /// The database could not be reached or written (an outage, a full disk): nothing was changed; try again.
    case storageFailure
    /// The database refused something that is not an outage (a bug, a row it cannot read): a 500, not a retry.
    case internalFailure
    /// A stored tenant names a provider this build does not register: a 500 that names the row in the log.
    case unknownProvider(tenantID: String, provider: ProviderKind)
    /// The provider hands out no short-lived tokens (its credentials are the only secret there is).
    case accessTokensNotSupported(ProviderKind)
    /// The provider's API cannot be called through the gateway.
    case proxyNotSupported(ProviderKind)
    /// The tenant's stored credentials were refused by the provider (`suspended`, `credentials_revoked`).
    case credentialsRevoked
    /// The provider refused the stored credentials just now; a credential check follows.
    case credentialsRefused

    public var code: String {
        switch self {
        case .validationFailed: "validation_failed"
        case .tenantNotFound: "tenant_not_found"
        case .tenantExists: "tenant_exists"
        case .providerNotConfigured: "provider_not_configured"
        case .credentialsNotAvailable: "credentials_not_available"
        case .credentialsRejected: "credentials_rejected"
        case .invalidState: "invalid_state"
        case .providerUnavailable: "provider_unavailable"
        case .webhookTokenUnknown: "webhook_not_found"
        case .webhookMalformed: "webhook_malformed"
        case .webhookRejected: "webhook_rejected"
        case .onboardingLinkNotSupported: "onboarding_link_not_supported"
        case .tenantBusy: "tenant_busy"
        case .tenantChanged: "tenant_changed"
        case .profileFrozen: "profile_frozen"
        case .providerUserUnknown: "provider_user_unknown"
        case .companyAlreadyOnboarded: "company_already_onboarded"
        case .storageFailure: "storage_unavailable"
        case .internalFailure, .unknownProvider: "internal_error"
        case .accessTokensNotSupported: "access_tokens_not_supported"
        case .proxyNotSupported: "proxy_not_supported"
        case .credentialsRevoked, .credentialsRefused: "credentials_revoked"
        }
    }

    /// A sentence for the partner; never provider error text or secrets.
    public var detail: String {
        switch self {
        case .validationFailed(let errors): "The request has \(errors.count) invalid field(s)."
        case .tenantNotFound: "No tenant has this id."
        case .tenantExists(let id): "Tenant \(id) already exists for this provider and external_id with a different profile; correct it with PATCH /v1/tenants/\(id)."
        case .providerNotConfigured(let provider): "The provider \(provider.rawValue) is not configured on this gateway."
        case .credentialsNotAvailable: "This tenant has no credentials yet."
        case .credentialsRejected: "The provider did not accept these credentials."
        case .invalidState(let state, let action): "A tenant in state \(state.rawValue) cannot be \(action)."
        case .providerUnavailable: "The provider could not be reached; try again later."
        case .webhookTokenUnknown: "Unknown webhook endpoint."
        case .webhookMalformed: "The webhook body is not what this provider sends."
        case .webhookRejected: "The webhook does not belong to this tenant."
        case .onboardingLinkNotSupported(let provider, let instead): "\(provider.rawValue) has no URL for the customer: \(instead)."
        case .tenantBusy: "Another request is talking to this tenant's provider right now; try again in a moment."
        case .tenantChanged: "The tenant changed (offboarded or corrected) while its provider was being asked; that answer was not kept."
        case .providerUserUnknown(let provider):
            "\(provider.rawValue) knows no user for this customer yet: they must finish signing up (see next_action) before a key can be checked."
        case .profileFrozen(let fields):
            "The provider already holds \(fields.joined(separator: ", ")); these fields cannot change now. Offboard and onboard again, or ask an operator to resubmit."
        case .companyAlreadyOnboarded:
            "Another live tenant of this provider already holds this company. Offboard that tenant first, or ask an operator to transfer the company (docs/providers.md)."
        case .storageFailure: "The gateway cannot reach or write its database right now. Try again shortly."
        case .internalFailure, .unknownProvider: "Something went wrong on our side; the request id helps us find it."
        case .accessTokensNotSupported(let provider):
            "\(provider.rawValue) has no short-lived tokens: its credentials are the only secret, so use the provider proxy (or credentials:read)."
        case .proxyNotSupported(let provider): "\(provider.rawValue) cannot be called through the gateway's provider proxy."
        case .credentialsRevoked:
            "The provider refused this tenant's stored credentials: the customer must reconnect (see the tenant's next_action)."
        case .credentialsRefused:
            "The provider refused this tenant's stored credentials just now; the gateway checks them shortly, and the tenant will say what the customer must do."
        }
    }
}
