import Foundation
import GatewayCore

extension ProviderKind {
    /// Wrapp (Greece, myDATA).
    public static let wrapp = ProviderKind(rawValue: "wrapp")!
}

/// Wrapp as one module: the customer logs in at a Wrapp URL, Wrapp posts the customer's key to a webhook, a
/// subscription can lapse, and a customer who already had an account types the key in.
public struct WrappModule: ProviderModule {
    public init() {}

    public let kind = ProviderKind.wrapp
    public let displayName = "Wrapp"
    public let capabilities = ProviderCapabilities(
        receivesWebhooks: true, readinessCanLapse: true, acceptsTypedCredentials: true, hasOnboardingURL: true,
        // `external_login` answers the same user again.
        submissionIsIdempotent: true,
        issuesAccessTokens: true, proxiesCalls: true, watchesCredentialHealth: true
    )

    // MARK: - Rules

    public func validate(_ profile: Profile) -> [FieldError] {
        var errors: [FieldError] = []
        if ProfileValidator.isBlank(profile.email) { errors.append(ProfileValidator.required("profile.email", "Wrapp needs the customer's email.")) }
        if ProfileValidator.isBlank(profile.phone) { errors.append(ProfileValidator.required("profile.phone", "Wrapp needs the customer's phone.")) }
        return errors
    }

    /// `external_login` takes the email and the phone; the rest stays ours.
    public func holds(_ field: String) -> Bool { ["profile.email", "profile.phone"].contains(field) }

    public var credentialInputFields: [CredentialInputField] { [CredentialInputField("wrapp_user_id"), CredentialInputField("api_key")] }

    // MARK: - Configuration

    public func configuration(from env: inout EnvironmentReader) -> ProviderConfiguration? {
        let url = env.url("WRAPP_BASE_URL", default: "https://wrapp.ai/api/v1")
        guard let key = env.string("WRAPP_PARTNER_API_KEY"), let url else { return nil }
        return ProviderConfiguration(baseURL: url, baseURLVariable: "WRAPP_BASE_URL", values: ["partner_api_key": key])
    }

    public func sandboxConfiguration(secret: (String, String) -> String) -> ProviderConfiguration {
        ProviderConfiguration(
            baseURL: "/sandbox/wrapp", baseURLVariable: "WRAPP_BASE_URL",
            values: ["partner_api_key": secret("wrapp_partner_key", "sandbox-partner-")]
        )
    }

    public func makeAdapter(_ configuration: ProviderConfiguration, baseURL: @escaping @Sendable () -> String, http: ProviderHTTPClient) -> any OnboardingProvider {
        WrappAdapter(configuration: .init(baseURL: baseURL, partnerAPIKey: configuration["partner_api_key"]), http: http)
    }

    public func makeSimulator(_ configuration: ProviderConfiguration, publicBaseURL: @escaping @Sendable () -> String) -> any ProviderSimulator {
        WrappSimulator(partnerAPIKey: configuration["partner_api_key"], publicBaseURL: publicBaseURL, sendWebhook: WrappSimulator.httpSender())
    }

    public var faultOperations: [String] { ["external_login", "embedded_check_user", "login"] }

    // MARK: - OpenAPI

    public var openAPI: ProviderOpenAPI {
        ProviderOpenAPI(
            schemas: [
                "WrappCredentials": .object([
                    "type": .string("object"),
                    "required": .array([.string("provider"), .string("wrapp_user_id"), .string("api_key")]),
                    "properties": .object([
                        "provider": .object(["type": .string("string"), "const": .string("wrapp")]),
                        "wrapp_user_id": .object(["type": .string("string")]),
                        "api_key": .object(["type": .string("string")]),
                    ]),
                ]),
            ],
            credentialsSchema: "WrappCredentials",
            credentialsExample: .object([
                "provider": .string("wrapp"), "wrapp_user_id": .string("12345"), "api_key": .string("wrapp-api-key-from-the-customer"),
            ]),
            createExample: .object([
                "provider": .string("wrapp"), "external_id": .string("cust-1"),
                "profile": .object(["email": .string("maria@example.com"), "phone": .string("+302101234567")]),
            ])
        )
    }
}
