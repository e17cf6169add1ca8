import Foundation
import GatewayCore
import Providers

/// What the conformance kit must be told about one provider module to drive it as a customer and a provider would.
/// Everything else it asks the module itself (capabilities, fault operations, OpenAPI fragments). A new module's author
/// writes one of these and runs `ProviderConformance` over it (`Tests/ProvidersTests/ConformanceTests.swift`).
public struct ConformanceSubject: Sendable, CustomStringConvertible {
    public var module: any ProviderModule
    /// A profile the module's rules and its provider accept, for a new customer with this external id.
    public var profile: @Sendable (_ externalID: String) -> Profile
    /// The simulated operation a first submission calls first: the kit puts its faults there.
    public var submitOperation: String
    /// A profile the provider itself refuses a field of (the gateway's own rules may let it through).
    public var refusedProfile: @Sendable (_ externalID: String) -> Profile
    /// How many accounts the simulated provider opened for this customer (a second is a duplicate).
    public var accountsOpened: @Sendable (_ simulator: any ProviderSimulator, _ externalID: String, _ profile: Profile) async -> Int
    /// Does at the simulated provider what the customer does to finish onboarding (a test helper), after the gateway's
    /// first submission.
    public var finishOnboarding: @Sendable (_ harness: SandboxHarness, _ externalID: String, _ profile: Profile) async throws -> Void
    /// Where `capabilities.receivesWebhooks`: the webhook URL the provider was given for this customer, and a body the
    /// provider would post about another customer (for the binding check).
    public var webhookURL: (@Sendable (_ simulator: any ProviderSimulator, _ externalID: String) async -> String?)?
    public var webhookBody: (@Sendable (_ externalID: String) -> Data)?

    public init(
        module: any ProviderModule, profile: @escaping @Sendable (String) -> Profile, submitOperation: String,
        refusedProfile: @escaping @Sendable (String) -> Profile,
        accountsOpened: @escaping @Sendable (any ProviderSimulator, String, Profile) async -> Int,
        finishOnboarding: @escaping @Sendable (SandboxHarness, String, Profile) async throws -> Void,
        webhookURL: (@Sendable (any ProviderSimulator, String) async -> String?)? = nil,
        webhookBody: (@Sendable (String) -> Data)? = nil
    ) {
        self.module = module
        self.profile = profile
        self.submitOperation = submitOperation
        self.refusedProfile = refusedProfile
        self.accountsOpened = accountsOpened
        self.finishOnboarding = finishOnboarding
        self.webhookURL = webhookURL
        self.webhookBody = webhookBody
    }

    public var description: String { module.kind.rawValue }
}

/// One fault class every adapter must survive: "unavailable, ask again later", never a rejection, never a credential.
public struct FaultClass: Sendable, CustomStringConvertible {
    public var name: String
    public var fault: @Sendable (_ operation: String) -> SimulatedFault
    /// The `Retry-After` the answer must carry, where the fault sends one.
    public var retryAfter: TimeInterval?

    public var description: String { name }

    /// How long the slow faults hold their answer back: past the kit's timeout (`ProviderConformance.timeout`).
    public static let slow = 3500

    /// The kit's classes: 5xx, an HTML page, 429 with and without `Retry-After`, a malformed 200, a reset, a timeout.
    public static let all: [FaultClass] = [
        FaultClass(name: "500 with a JSON error", fault: { SimulatedFault(operation: $0, status: 500, style: .message) }),
        FaultClass(name: "502 with an HTML page", fault: { SimulatedFault(operation: $0, status: 502, style: .html) }),
        FaultClass(name: "429 with Retry-After", fault: { SimulatedFault(operation: $0, status: 429, style: .message, retryAfter: 7) }, retryAfter: 7),
        FaultClass(name: "429 without Retry-After", fault: { SimulatedFault(operation: $0, status: 429, style: .error) }),
        FaultClass(name: "a 200 that is not JSON", fault: { SimulatedFault(operation: $0, status: 200, style: .garbage) }),
        FaultClass(name: "a connection reset", fault: { SimulatedFault(operation: $0, status: 200, style: .reset) }),
        FaultClass(name: "a timeout", fault: { SimulatedFault(operation: $0, status: 503, style: .message, delayMilliseconds: slow) }),
        FaultClass(name: "a late success", fault: { SimulatedFault(operation: $0, status: 200, style: .lateSuccess, delayMilliseconds: slow) }),
    ]
}
