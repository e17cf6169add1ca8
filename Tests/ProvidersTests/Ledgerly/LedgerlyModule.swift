import Foundation
import GatewayCore
import Providers

extension ProviderKind {
    /// Ledgerly: a provider that exists only in these tests.
    static let ledgerly = ProviderKind(rawValue: "ledgerly")!
}

/// Ledgerly, a made-up invoicing provider registered only in tests: the proof that a provider is one folder. Its
/// partner API invites a customer (`POST /signups`, not idempotent), sends them to a URL, posts the customer's API
/// token to a webhook once they finish, and lets a token be typed in and checked (`GET /accounts/{id}`).
struct LedgerlyModule: ProviderModule {
    /// Defects to build in on purpose, so the conformance kit is seen to catch them (`LedgerlyTests`).
    var flaws: Set<LedgerlyAdapter.Flaw> = []

    let kind = ProviderKind.ledgerly
    let displayName = "Ledgerly"
    let capabilities = ProviderCapabilities(
        receivesWebhooks: true, acceptsTypedCredentials: true, hasOnboardingURL: true, submissionIsIdempotent: false
    )

    func validate(_ profile: Profile) -> [FieldError] {
        ProfileValidator.isBlank(profile.email) ? [ProfileValidator.required("profile.email", "Ledgerly needs the customer's email.")] : []
    }

    /// Ledgerly is given the email only.
    func holds(_ field: String) -> Bool { field == "profile.email" }

    var credentialInputFields: [CredentialInputField] { [CredentialInputField("account_id", maxLength: 64), CredentialInputField("api_token")] }

    func configuration(from env: inout EnvironmentReader) -> ProviderConfiguration? {
        let url = env.url("LEDGERLY_BASE_URL", default: "https://api.ledgerly.invalid/v1")
        guard let key = env.string("LEDGERLY_PARTNER_KEY"), let url else { return nil }
        return ProviderConfiguration(baseURL: url, baseURLVariable: "LEDGERLY_BASE_URL", values: ["partner_key": key])
    }

    func sandboxConfiguration(secret: (String, String) -> String) -> ProviderConfiguration {
        ProviderConfiguration(
            baseURL: "/sandbox/ledgerly", baseURLVariable: "LEDGERLY_BASE_URL", values: ["partner_key": secret("ledgerly_partner_key", "sandbox-ledgerly-")]
        )
    }

    func makeAdapter(_ configuration: ProviderConfiguration, baseURL: @escaping @Sendable () -> String, http: ProviderHTTPClient) -> any OnboardingProvider {
        LedgerlyAdapter(baseURL: baseURL, partnerKey: configuration["partner_key"], http: http, flaws: flaws)
    }

    func makeSimulator(_ configuration: ProviderConfiguration, publicBaseURL: @escaping @Sendable () -> String) -> any ProviderSimulator {
        LedgerlySimulator(partnerKey: configuration["partner_key"], publicBaseURL: publicBaseURL)
    }

    var faultOperations: [String] { ["signups", "signup", "accounts"] }

    var openAPI: ProviderOpenAPI {
        ProviderOpenAPI(
            schemas: [
                "LedgerlyCredentials": .object([
                    "type": .string("object"),
                    "required": .array([.string("provider"), .string("account_id"), .string("api_token")]),
                    "properties": .object([
                        "provider": .object(["type": .string("string"), "const": .string("ledgerly")]),
                        "account_id": .object(["type": .string("string"), "maxLength": .number(64)]),
                        "api_token": .object(["type": .string("string")]),
                    ]),
                ]),
            ],
            credentialsSchema: "LedgerlyCredentials",
            credentialsExample: .object(["provider": .string("ledgerly"), "account_id": .string("acc_1"), "api_token": .string("lg-token-of-the-customer")]),
            createExample: .object([
                "provider": .string("ledgerly"), "external_id": .string("cust-1"), "profile": .object(["email": .string("maria@example.com")]),
            ])
        )
    }
}
