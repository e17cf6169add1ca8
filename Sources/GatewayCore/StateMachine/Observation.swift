import Foundation

/// What a provider's answer (to a call, a poll or a webhook) says about a tenant, in provider-neutral words.
/// Adapters produce these; only the state machine decides what they mean for the tenant.
public enum Finding: Sendable, Equatable {
    /// Nothing new: the provider still waits on the same thing.
    case waiting(providerStatus: String)
    /// The end customer must act; `NextAction` says how.
    case actionRequired(NextAction, providerStatus: String)
    /// Onboarded and usable.
    case ready(providerStatus: String)
    /// Was usable and is not any more (e.g. a lapsed subscription).
    case lapsed(providerStatus: String)
    /// The provider refused the data for good.
    case rejected(TenantError, providerStatus: String)
    /// The provider could not be asked (timeout, 5xx, 429, garbage): try again later.
    case unavailable(reason: String, retryAfter: TimeInterval?)
}

/// Commands that come from the partner or an operator rather than from a provider.
public enum Command: Sendable, Equatable {
    /// A `failed` tenant is submitted again (after its data was corrected).
    case retry
    /// A tenant waiting on its customer is submitted again (an operator's explicit resubmission).
    case resubmit
    case offboard
}

/// Credentials that arrived with an observation, and how far they can be trusted.
public struct CredentialOffer: Sendable, Equatable {
    public enum Origin: Sendable, Equatable {
        /// Fetched from the provider with the gateway's own partner credentials (MagniFinance access tokens).
        case provider
        /// Brought by an unsigned webhook, then proven to be this customer's. Never replaces credentials a tenant has.
        case webhook
        /// Supplied by hand (`PUT …/credentials`) and verified; replaces what the tenant has.
        case partner
    }

    public var credentials: ProviderCredentials
    public var origin: Origin
    /// False when exactly these credentials are stored and the tenant already shows them as available.
    public var isNew: Bool

    public init(_ credentials: ProviderCredentials, origin: Origin, isNew: Bool) {
        self.credentials = credentials
        self.origin = origin
        self.isNew = isNew
    }
}

/// One input to the state machine: a finding or a command, with where and when it came from.
public struct Observation: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case finding(Finding)
        case command(Command)
    }

    public var kind: Kind
    public var source: ChangeSource
    /// When the evidence was taken (for a poll: when the question was asked), not when it was processed.
    public var at: Date
    /// Verified credentials that arrived with this observation; the decision says whether they are kept.
    public var credentials: CredentialOffer?
    /// A credential health check's verdict on the stored credentials, when one was made.
    public var verdict: CredentialVerdict?
    /// What the provider reports about the ready customer, when it was read.
    public var details: ProviderDetails?

    public init(
        _ kind: Kind, source: ChangeSource, at: Date, credentials: CredentialOffer? = nil, verdict: CredentialVerdict? = nil,
        details: ProviderDetails? = nil
    ) {
        self.verdict = verdict
        self.details = details
        self.kind = kind
        self.source = source
        self.at = at
        self.credentials = credentials
    }

    public static func finding(
        _ finding: Finding, source: ChangeSource, at: Date, credentials: CredentialOffer? = nil, verdict: CredentialVerdict? = nil,
        details: ProviderDetails? = nil
    ) -> Observation {
        Observation(.finding(finding), source: source, at: at, credentials: credentials, verdict: verdict, details: details)
    }

    public static func command(_ command: Command, source: ChangeSource, at: Date) -> Observation {
        Observation(.command(command), source: source, at: at)
    }
}
