import GatewayCore

/// The providers this build ships: the one registry line to add a provider to. Tests add their own modules beside
/// these (`Gateway.build(…, modules:)`).
public enum ProviderModules {
    public static let shipped: [any ProviderModule] = [WrappModule(), MagniFinanceModule(), InvoiceXpressModule()]
}

extension ProviderRegistry {
    /// The registry of these modules.
    public init(modules: [any ProviderModule]) {
        self.init(modules.map { $0 as any ProviderDefinition })
    }
}
