import Foundation

/// A provider's id, as the API, the stores and the routes spell it (`wrapp`). Open: the core knows no provider by name.
/// Which ids exist is the `ProviderRegistry`'s to say; this type only guarantees the shape, so an id is always safe in a
/// URL path, a metric label and a log line.
public struct ProviderKind: RawRepresentable, Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// A lowercase letter, then up to 31 lowercase letters or digits.
    public init?(rawValue: String) {
        guard let first = rawValue.utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), rawValue.utf8.count <= 32,
            rawValue.utf8.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { return nil }
        self.rawValue = rawValue
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let kind = ProviderKind(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a provider id: \(text.prefix(40))"))
        }
        self = kind
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public static func < (a: ProviderKind, b: ProviderKind) -> Bool { a.rawValue < b.rawValue }
    public var description: String { rawValue }
}

/// What a provider can do, asked by the core, the server, the console and the stores instead of its name.
public struct ProviderCapabilities: Sendable, Equatable {
    /// The provider posts webhooks (`/webhooks/{provider}/{token}`); each tenant gets a secret URL token.
    public var receivesWebhooks = false
    /// An onboarded tenant can stop being usable later (a subscription lapses), so active tenants are re-checked.
    public var readinessCanLapse = false
    /// The customer's credentials may be typed in (`PUT /v1/tenants/{id}/credentials`), in `credentialInputFields`.
    public var acceptsTypedCredentials = false
    /// The provider gives a customer-facing URL to continue onboarding (`POST …/onboarding-link`).
    public var hasOnboardingURL = false
    /// Submitting twice is harmless. Where it is not, an unknown outcome settles (`GATEWAY_SETTLE_SECONDS`) and is
    /// reconciled before the provider is asked again.
    public var submissionIsIdempotent = false
    /// Credentials belong to a company (tax id) rather than to one customer's login: a company is held by at most one
    /// live tenant of the provider (`company_already_onboarded`).
    public var credentialsBelongToCompany = false
    /// The adapter is asked something before a first submission (`preflight`).
    public var checksBeforeSubmitting = false
    /// Short-lived access tokens are handed out (`POST …/access-token`, the adapter's `CredentialBroker`), never the
    /// long-lived secret.
    public var issuesAccessTokens = false
    /// Calls go through the provider proxy (`/v1/tenants/{id}/provider/…`) with the credentials injected.
    public var proxiesCalls = false
    /// Active tenants' credentials are re-checked on a schedule; an explicit refusal suspends the tenant
    /// (`credentials_revoked`).
    public var watchesCredentialHealth = false

    public init(
        receivesWebhooks: Bool = false, readinessCanLapse: Bool = false, acceptsTypedCredentials: Bool = false,
        hasOnboardingURL: Bool = false, submissionIsIdempotent: Bool = false, credentialsBelongToCompany: Bool = false,
        checksBeforeSubmitting: Bool = false, issuesAccessTokens: Bool = false, proxiesCalls: Bool = false,
        watchesCredentialHealth: Bool = false
    ) {
        self.issuesAccessTokens = issuesAccessTokens
        self.proxiesCalls = proxiesCalls
        self.watchesCredentialHealth = watchesCredentialHealth
        self.receivesWebhooks = receivesWebhooks
        self.readinessCanLapse = readinessCanLapse
        self.acceptsTypedCredentials = acceptsTypedCredentials
        self.hasOnboardingURL = hasOnboardingURL
        self.submissionIsIdempotent = submissionIsIdempotent
        self.credentialsBelongToCompany = credentialsBelongToCompany
        self.checksBeforeSubmitting = checksBeforeSubmitting
    }

    /// The capability names, as `docs/providers.md` and the closing notes list them.
    public var names: [String] {
        [
            ("receives_webhooks", receivesWebhooks), ("readiness_can_lapse", readinessCanLapse),
            ("accepts_typed_credentials", acceptsTypedCredentials), ("has_onboarding_url", hasOnboardingURL),
            ("submission_is_idempotent", submissionIsIdempotent), ("credentials_belong_to_company", credentialsBelongToCompany),
            ("checks_before_submitting", checksBeforeSubmitting), ("issues_access_tokens", issuesAccessTokens),
            ("proxies_calls", proxiesCalls), ("watches_credential_health", watchesCredentialHealth),
        ].filter(\.1).map(\.0)
    }
}
