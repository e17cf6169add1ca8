import Foundation

/// What an adapter needs to know about a tenant to talk to its provider: the customer's data, never the tenant's
/// state (what a finding means in each state is the state machine's to say).
public struct ProviderTenant: Sendable, Equatable {
    public var tenantID: String
    public var externalID: String
    public var profile: Profile
    /// Whether the gateway holds credentials for the customer (a provider's status can depend on it).
    public var hasCredentials: Bool
    /// What the provider said last (`provider_status`): a fact of the provider's own, for one without a status
    /// endpoint to repeat rather than overwrite.
    public var providerStatus: String?
    /// Where the provider should POST its webhook for this tenant (`receivesWebhooks`), built from `GATEWAY_PUBLIC_URL`.
    public var webhookURL: String?

    public init(tenantID: String, externalID: String, profile: Profile, hasCredentials: Bool, webhookURL: String? = nil, providerStatus: String? = nil) {
        self.providerStatus = providerStatus
        self.tenantID = tenantID
        self.externalID = externalID
        self.profile = profile
        self.hasCredentials = hasCredentials
        self.webhookURL = webhookURL
    }
}

/// A provider's answer: what it says about the tenant, and any credentials it handed over (already verified).
public struct ProviderAnswer: Sendable, Equatable {
    public var finding: Finding
    public var credentials: ProviderCredentials?
    /// What the provider or the transport said, for the log only: provider text is never shown to partners.
    public var diagnostic: String?
    /// A submission's answer that says for sure the provider took nothing (429, the connection refused): the recorded
    /// intent is dropped, so the next attempt is a first one, not a reconcile.
    public var nothingSubmitted = false
    /// A credential health check's verdict on the stored credentials (`CredentialBroker.checkCredentials`).
    public var verdict: CredentialVerdict?
    /// What the provider reports about the ready customer (`provider_details`).
    public var details: ProviderDetails?
    /// A token a credential check logged in for (it is kept, rather than thrown away, in case the provider voids
    /// older ones at each login).
    public var issuedToken: IssuedToken?

    public init(_ finding: Finding, credentials: ProviderCredentials? = nil, diagnostic: String? = nil) {
        self.finding = finding
        self.credentials = credentials
        self.diagnostic = diagnostic
    }
}

/// Whether the provider accepts a set of credentials as genuine.
public enum CredentialCheck: Sendable, Equatable {
    case valid
    case invalid(reason: String)
    /// The provider answered that it knows no user for this customer yet: the key cannot be bound to anyone.
    case customerUnknown
    case unavailable(reason: String, retryAfter: TimeInterval?)
}

/// One adapter per provider. Adapters translate the provider's HTTP API into findings: they report what the provider
/// says, never branch on the tenant's state, and never decide states (the state machine does). What the provider can
/// do is its module's `ProviderCapabilities`.
public protocol OnboardingProvider: Sendable {
    var kind: ProviderKind { get }

    /// Ask the provider to onboard the tenant. `previousAttempts` > 0 means an earlier call's outcome is unknown.
    func submit(_ tenant: ProviderTenant, previousAttempts: Int) async -> ProviderAnswer

    /// Ask the provider how the tenant is doing now.
    func check(_ tenant: ProviderTenant) async -> ProviderAnswer

    /// Prove that credentials are genuine before they are kept (a login with them, bound to this customer).
    func verify(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> CredentialCheck

    /// A fresh URL where the customer continues onboarding, where the provider has such a thing.
    func onboardingURL(for tenant: ProviderTenant) async -> OnboardingURL

    /// Before a first submission, what the provider can already tell, with nothing submitted: an answer ends the
    /// attempt (MagniFinance: the company is already someone else's partner, or the provider cannot be asked);
    /// nil goes on to `submit`.
    func preflight(_ tenant: ProviderTenant) async -> ProviderAnswer?
}

extension OnboardingProvider {
    public func preflight(_ tenant: ProviderTenant) async -> ProviderAnswer? { nil }
}

/// The answer to "give the customer a fresh provider URL".
public enum OnboardingURL: Sendable, Equatable {
    case url(String)
    /// The provider has no customer-facing URL (the customer approves by email, say).
    case notSupported
    case unavailable(reason: String)
}

/// What a provider's webhook says, once parsed by its adapter.
public struct WebhookNotice: Sendable, Equatable {
    /// The partner's id for the customer, as the provider echoes it.
    public var externalID: String
    /// Credentials the webhook carries; not yet verified.
    public var credentials: ProviderCredentials?

    public init(externalID: String, credentials: ProviderCredentials?) {
        self.externalID = externalID
        self.credentials = credentials
    }
}

/// Providers that send webhooks parse them; nil means the body is not what this provider sends.
public protocol WebhookInterpreting: Sendable {
    func interpretWebhook(_ body: Data) -> WebhookNotice?
}
