import GatewayCore
import Providers

extension TenantStateMachine {
    /// The decision for a tenant of a shipped provider, with that provider's capabilities.
    static func decide(_ tenant: Tenant, _ observation: Observation) throws(TransitionError) -> Decision {
        let capabilities = ProviderModules.shipped.first { $0.kind == tenant.provider }?.capabilities ?? ProviderCapabilities()
        return try decide(tenant, observation, capabilities: capabilities)
    }
}
