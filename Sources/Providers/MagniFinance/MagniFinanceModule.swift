import Foundation
import GatewayCore

extension ProviderKind {
    /// MagniFinance (Portugal, IPPN).
    public static let magnifinance = ProviderKind(rawValue: "magnifinance")!
}

/// MagniFinance as one module: AddPartner registers the company (or asks an existing client's approval by email), and
/// the partner access tokens, polled, are the only status signal. No webhooks, no customer URL, nothing typed in.
public struct MagniFinanceModule: ProviderModule {
    public init() {}

    public let kind = ProviderKind.magnifinance
    public let displayName = "MagniFinance"
    public let capabilities = ProviderCapabilities(
        // GetPartnerAccessTokens answers for any tax id that is a partner of our IPPN account, whoever asks: tokens
        // found before this tenant's first AddPartner are someone else's (`preflight`).
        credentialsBelongToCompany: true, checksBeforeSubmitting: true,
        issuesAccessTokens: true, proxiesCalls: true, watchesCredentialHealth: true
    )

    public var withoutOnboardingURL: String { "the company approves the partnership by email" }

    // MARK: - Rules

    /// AddPartner's maximum lengths, counted as .NET counts (UTF-16 units).
    public var lengthLimits: LengthLimits? {
        LengthLimits(counting: .utf16, limits: [
            ("profile.company.tax_id", 20, { $0.company?.taxID }),
            ("profile.contact_name", 75, { $0.contactName }),
            ("profile.email", 75, { $0.email }),
            ("profile.phone", 50, { $0.phone }),
            ("profile.company.legal_name", 50, { $0.company?.legalName }),
            ("profile.company.address", 200, { $0.company?.address }),
            ("profile.company.city", 50, { $0.company?.city }),
            ("profile.company.post_code", 50, { $0.company?.postCode }),
        ])
    }

    public func validate(_ profile: Profile) -> [FieldError] {
        var errors: [FieldError] = []
        if ProfileValidator.isBlank(profile.company?.taxID) {
            errors.append(ProfileValidator.required("profile.company.tax_id", "MagniFinance needs the company's tax id."))
        }
        if ProfileValidator.isBlank(profile.company?.country) {
            errors.append(ProfileValidator.required("profile.company.country", "MagniFinance needs the company's country."))
        }
        if let company = profile.company, company.country == "PT", let postCode = company.postCode, !ProfileValidator.isBlank(postCode),
            !ASCIIPatterns.isPortuguesePostCode(postCode)
        {
            errors.append(FieldError(field: "profile.company.post_code", code: "invalid", message: "Portuguese post codes look like 1000-001."))
        }
        return errors
    }

    /// AddPartner takes the whole profile.
    public func holds(_ field: String) -> Bool { field.hasPrefix("profile.") }

    // MARK: - Configuration

    public func configuration(from env: inout EnvironmentReader) -> ProviderConfiguration? {
        let url = env.url("MAGNIFINANCE_BASE_URL", default: "https://bo.magnifinance.com/api/v1.1")
        switch (env.string("MAGNIFINANCE_EMAIL"), env.string("MAGNIFINANCE_TOKEN"), env.string("MAGNIFINANCE_PASSWORD")) {
        case (let email?, let token?, let password?):
            guard let url else { return nil }
            return ProviderConfiguration(
                baseURL: url, baseURLVariable: "MAGNIFINANCE_BASE_URL", values: ["email": email, "token": token, "password": password]
            )
        case (nil, nil, nil):
            return nil
        default:
            env.problem("MAGNIFINANCE_EMAIL, MAGNIFINANCE_TOKEN and MAGNIFINANCE_PASSWORD go together: set all three or none")
            return nil
        }
    }

    public func sandboxConfiguration(secret: (String, String) -> String) -> ProviderConfiguration {
        ProviderConfiguration(baseURL: "/sandbox/magnifinance", baseURLVariable: "MAGNIFINANCE_BASE_URL", values: [
            "email": "ippn-owner@sandbox.invalid",
            "token": secret("magnifinance_token", "sandbox-ippn-"), "password": secret("magnifinance_password", "sandbox-pw-"),
        ])
    }

    public func makeAdapter(_ configuration: ProviderConfiguration, baseURL: @escaping @Sendable () -> String, http: ProviderHTTPClient) -> any OnboardingProvider {
        MagniFinanceAdapter(
            configuration: .init(baseURL: baseURL, email: configuration["email"], token: configuration["token"], password: configuration["password"]),
            http: http
        )
    }

    public func makeSimulator(_ configuration: ProviderConfiguration, publicBaseURL: @escaping @Sendable () -> String) -> any ProviderSimulator {
        MagniFinanceSimulator(email: configuration["email"], token: configuration["token"], password: configuration["password"])
    }

    public var faultOperations: [String] { ["partner", "partner/accessTokens"] }

    // MARK: - OpenAPI

    public var openAPI: ProviderOpenAPI {
        ProviderOpenAPI(
            schemas: [
                "MagniFinanceCredentials": .object([
                    "type": .string("object"),
                    "required": .array([.string("provider"), .string("access_tokens")]),
                    "properties": .object([
                        "provider": .object(["type": .string("string"), "const": .string("magnifinance")]),
                        "access_tokens": .object(["type": .string("array"), "items": .object(["$ref": .string("#/components/schemas/MagniFinanceAccessToken")])]),
                    ]),
                ]),
                "MagniFinanceAccessToken": .object([
                    "type": .string("object"),
                    "required": .array([.string("token")]),
                    "properties": .object([
                        "token": .object(["type": .string("string")]),
                        "description": .object(["type": .string("string")]),
                    ]),
                ]),
            ],
            credentialsSchema: "MagniFinanceCredentials",
            credentialsExample: .object([
                "provider": .string("magnifinance"),
                "access_tokens": .array([.object(["token": .string("ippn-access-token-of-the-company"), "description": .string("Token 1")])]),
            ]),
            createExample: .object([
                "provider": .string("magnifinance"), "external_id": .string("co-1"),
                "profile": .object([
                    "email": .string("ana@example.pt"), "contact_name": .string("Ana Sousa"),
                    "company": .object([
                        "tax_id": .string("513495886"), "legal_name": .string("Exemplo Lda"), "country": .string("PT"), "post_code": .string("1000-001"),
                    ]),
                ]),
            ])
        )
    }
}
