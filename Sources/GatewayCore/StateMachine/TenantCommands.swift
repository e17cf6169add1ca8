import Foundation

/// What may be asked of a tenant in each state: the one answer the state machine, the API and the console share.
public enum TenantCommand: String, Sendable, CaseIterable {
    /// Ask the provider now (`POST …/refresh`, the console's "Refresh").
    case refresh
    /// Submit a `failed` tenant again.
    case retry
    /// Submit a tenant waiting on its customer again (an operator's, or the console's).
    case resubmit
    /// Submit a `failed` tenant again taking what the provider already holds for it (a company partnered through an
    /// earlier onboarding): an operator's audited transfer, through the admin API only.
    case transfer
    /// A fresh provider URL for the customer (`POST …/onboarding-link`).
    case onboardingLink = "onboarding_link"
    /// Credentials typed in (`PUT …/credentials`).
    case supplyCredentials = "supply_credentials"
    /// A profile or metadata correction (`PATCH`).
    case correct
    case offboard
}

extension Command {
    var tenantCommand: TenantCommand {
        switch self {
        case .retry: .retry
        case .resubmit: .resubmit
        case .offboard: .offboard
        }
    }
}

public enum TenantCommands {
    /// Why a command is refused.
    public enum Refusal: Sendable, Equatable {
        /// Not in this state (`409 invalid_state`).
        case state
        /// The provider cannot do it in any state.
        case provider
    }

    /// The commands a tenant in `state` of a provider with `capabilities` allows.
    public static func allowed(in state: TenantState, capabilities: ProviderCapabilities) -> Set<TenantCommand> {
        Set(TenantCommand.allCases.filter { refusal($0, in: state, capabilities: capabilities) == nil })
    }

    /// Nil when `command` is allowed; otherwise whether the state or the provider refuses it.
    public static func refusal(_ command: TenantCommand, in state: TenantState, capabilities: ProviderCapabilities) -> Refusal? {
        let live = state != .offboarded
        switch command {
        case .refresh, .correct, .offboard:
            return live ? nil : .state
        case .retry:
            return state == .failed ? nil : .state
        case .resubmit:
            return state == .actionRequired ? nil : .state
        case .transfer:
            return state == .failed ? nil : .state
        case .onboardingLink:
            guard live, state != .failed else { return .state }
            return capabilities.hasOnboardingURL ? nil : .provider
        case .supplyCredentials:
            guard [.actionRequired, .active, .suspended].contains(state) else { return .state }
            return capabilities.acceptsTypedCredentials ? nil : .provider
        }
    }
}
