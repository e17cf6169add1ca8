import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// The real adapters pointed at the simulators of a running sandbox gateway, over loopback HTTP.
struct Adapters {
    let harness: SandboxHarness
    let wrapp: WrappAdapter
    let magni: MagniFinanceAdapter
    let wrappSimulator: WrappSimulator
    let magniSimulator: MagniFinanceSimulator

    /// `timeout` is generous by default: a loaded test machine must not turn an answer into a timeout; tests of timeouts
    /// pass their own.
    init(_ harness: SandboxHarness, timeout: TimeInterval = 10, wrappKey: String? = nil, magniToken: String? = nil) throws {
        self.harness = harness
        let base = harness.gateway.address.loopbackURL
        let config = harness.gateway.config
        let wrappConfig = try #require(config.providers[.wrapp])
        let magniConfig = try #require(config.providers[.magnifinance])
        wrapp = WrappAdapter(
            configuration: .init(baseURL: { base + "/sandbox/wrapp" }, partnerAPIKey: wrappKey ?? wrappConfig["partner_api_key"]),
            http: .live(timeout: timeout)
        )
        magni = MagniFinanceAdapter(
            configuration: .init(
                baseURL: { base + "/sandbox/magnifinance" }, email: magniConfig["email"],
                token: magniToken ?? magniConfig["token"], password: magniConfig["password"]
            ),
            http: .live(timeout: timeout)
        )
        wrappSimulator = try #require(harness.gateway.simulators?.first(WrappSimulator.self))
        magniSimulator = try #require(harness.gateway.simulators?.first(MagniFinanceSimulator.self))
    }

    static func wrappTenant(_ externalID: String = "cust-\(UUID().uuidString.prefix(8))", email: String = "maria@example.com",
                            hasCredentials: Bool = false) -> ProviderTenant {
        ProviderTenant(
            tenantID: "ten_test", externalID: externalID, profile: Profile(email: email, phone: "+302101234567"), hasCredentials: hasCredentials, webhookURL: "http://127.0.0.1:9/webhooks/wrapp/unused"
        )
    }

    static func magniTenant(_ taxID: String, legalName: String = "Exemplo Lda") -> ProviderTenant {
        ProviderTenant(
            tenantID: "ten_test", externalID: "co-\(taxID)",
            profile: Profile(email: "ana@example.pt", contactName: "Ana", company: Company(taxID: taxID, legalName: legalName, country: "PT")),
            hasCredentials: false
        )
    }
}

extension Finding {
    var isWaiting: Bool { if case .waiting = self { true } else { false } }
    var nextAction: NextAction? { if case .actionRequired(let action, _) = self { action } else { nil } }
    var rejection: TenantError? { if case .rejected(let error, _) = self { error } else { nil } }
    var retryAfter: TimeInterval? { if case .unavailable(_, let retryAfter) = self { retryAfter } else { nil } }
}
