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
    case retry
    case offboard
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
    /// Verified credentials that differ from the stored ones arrived with this observation.
    public var bringsNewCredentials: Bool

    public init(_ kind: Kind, source: ChangeSource, at: Date, bringsNewCredentials: Bool = false) {
        self.kind = kind
        self.source = source
        self.at = at
        self.bringsNewCredentials = bringsNewCredentials
    }

    public static func finding(_ finding: Finding, source: ChangeSource, at: Date, bringsNewCredentials: Bool = false) -> Observation {
        Observation(.finding(finding), source: source, at: at, bringsNewCredentials: bringsNewCredentials)
    }

    public static func command(_ command: Command, source: ChangeSource, at: Date) -> Observation {
        Observation(.command(command), source: source, at: at)
    }
}
