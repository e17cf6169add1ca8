import Foundation
import GatewayCore

extension ProviderKind {
    /// InvoiceXpress (Portugal).
    public static let invoicexpress = ProviderKind(rawValue: "invoicexpress")!
}

/// InvoiceXpress as one module: the partner's account creates an account for the customer
/// (`POST /api/accounts/create.json`), whose answer carries the account's own API key, so the tenant is `active` at
/// once. A customer who already uses InvoiceXpress ("Vat Number is already used") types in their account name and
/// key instead, checked by one authenticated read. No webhooks, no status endpoint, no customer URL.
public struct InvoiceXpressModule: ProviderModule {
    public init() {}

    public let kind = ProviderKind.invoicexpress
    public let displayName = "InvoiceXpress"
    /// Creating twice is not known to be harmless (and without a `fiscal_id` it would open a second account), so an
    /// unknown outcome settles and is never submitted again blindly.
    public let capabilities = ProviderCapabilities(
        acceptsTypedCredentials: true, submissionIsIdempotent: false,
        // The API key is the only secret InvoiceXpress has: no token is handed out, the proxy adds the key.
        proxiesCalls: true, watchesCredentialHealth: true
    )

    public var withoutOnboardingURL: String {
        "the account is created at once; a customer who already uses InvoiceXpress types in their account name and API key"
    }

    /// `tax_country` codes the reference documents; others are in an appendix we do not hold.
    static let taxCountries = ["PT": "1", "IE": "2", "GB": "3"]

    /// An account name is the first label of its host (`{name}.app.invoicexpress.com`): a DNS label, so a name typed in
    /// can never point a call at another host.
    public static func isAccountName(_ text: String) -> Bool {
        ASCIIPatterns.isLowercaseDNSLabel(text)
    }

    // MARK: - Rules

    public func validate(_ profile: Profile) -> [FieldError] {
        var errors: [FieldError] = []
        if ProfileValidator.isBlank(profile.company?.legalName) {
            errors.append(ProfileValidator.required("profile.company.legal_name", "InvoiceXpress needs the company's name."))
        }
        if ProfileValidator.isBlank(profile.email) {
            errors.append(ProfileValidator.required("profile.email", "InvoiceXpress needs the account owner's email."))
        }
        if let country = profile.company?.country, !ProfileValidator.isBlank(country), Self.taxCountries[country] == nil, CountryCodes.assigned.contains(country) {
            errors.append(FieldError(field: "profile.company.country", code: "invalid", message: "InvoiceXpress takes PT, IE or GB here."))
        }
        // Portugal is InvoiceXpress's default tax country: a tax id without a country is a Portuguese NIF.
        if let taxID = profile.company?.taxID, !ProfileValidator.isBlank(taxID), ProfileValidator.isBlank(profile.company?.country),
            !TaxIdentifiers.isValidPortugueseNIF(taxID)
        {
            errors.append(FieldError(field: "profile.company.tax_id", code: "invalid_tax_id", message: "Not a valid Portuguese NIF: nine digits with a correct check digit."))
        }
        return errors
    }

    /// The account is created from the whole profile.
    public func holds(_ field: String) -> Bool { field.hasPrefix("profile.") }

    public var credentialInputFields: [CredentialInputField] {
        [CredentialInputField("account_name", maxLength: 63), CredentialInputField("api_key", maxLength: 256)]
    }

    /// The account name must be a host label; the account's URL follows from it.
    public func credentials(fromInput object: [String: JSONValue]) -> CredentialInput {
        switch typedCredentials(fromInput: object) {
        case .refused(let errors):
            return .refused(errors)
        case .accepted(var credentials):
            guard let name = credentials.fields["account_name"]?.stringValue, Self.isAccountName(name) else {
                return .refused([FieldError(field: "account_name", code: "invalid", message: "An account name is lowercase letters, digits and dashes, as in its address {name}.app.invoicexpress.com.")])
            }
            credentials.fields["account_url"] = .string("https://\(name).app.invoicexpress.com")
            return .accepted(credentials)
        }
    }

    // MARK: - Configuration

    /// `{account}` in the base URL is an account's name: its host in production, a path in the sandbox.
    static let defaultBaseURL = "https://{account}.app.invoicexpress.com"

    public func configuration(from env: inout EnvironmentReader) -> ProviderConfiguration? {
        let template = env.string("INVOICEXPRESS_BASE_URL", default: Self.defaultBaseURL)
        if !template.contains("{account}") || URL(string: template.replacingOccurrences(of: "{account}", with: "account"))?.host == nil {
            env.problem("INVOICEXPRESS_BASE_URL must be an http(s) URL with {account} where the account's name goes, like \(Self.defaultBaseURL)")
        }
        switch (env.string("INVOICEXPRESS_ACCOUNT_NAME"), env.string("INVOICEXPRESS_API_KEY")) {
        case (let name?, let key?):
            guard Self.isAccountName(name) else {
                env.problem("INVOICEXPRESS_ACCOUNT_NAME must be an account name as in its address {name}.app.invoicexpress.com (lowercase letters, digits, dashes)")
                return nil
            }
            return ProviderConfiguration(
                baseURL: template.hasSuffix("/") ? String(template.dropLast()) : template, baseURLVariable: "INVOICEXPRESS_BASE_URL",
                values: ["account_name": name, "api_key": key]
            )
        case (nil, nil):
            return nil
        default:
            env.problem("INVOICEXPRESS_ACCOUNT_NAME and INVOICEXPRESS_API_KEY go together: set both or neither")
            return nil
        }
    }

    public func sandboxConfiguration(secret: (String, String) -> String) -> ProviderConfiguration {
        ProviderConfiguration(baseURL: "/sandbox/invoicexpress/{account}", baseURLVariable: "INVOICEXPRESS_BASE_URL", values: [
            "account_name": "sandbox-partner", "api_key": secret("invoicexpress_api_key", "sandbox-ix-"),
        ])
    }

    public func makeAdapter(_ configuration: ProviderConfiguration, baseURL: @escaping @Sendable () -> String, http: ProviderHTTPClient) -> any OnboardingProvider {
        InvoiceXpressAdapter(
            baseURL: baseURL, partnerAccount: configuration["account_name"], partnerKey: configuration["api_key"], http: http, random: SystemRandomness()
        )
    }

    public func makeSimulator(_ configuration: ProviderConfiguration, publicBaseURL: @escaping @Sendable () -> String) -> any ProviderSimulator {
        InvoiceXpressSimulator(partnerAccount: configuration["account_name"], partnerKey: configuration["api_key"], publicBaseURL: publicBaseURL)
    }

    public var faultOperations: [String] { ["accounts/create", "clients"] }

    // MARK: - OpenAPI

    public var openAPI: ProviderOpenAPI {
        ProviderOpenAPI(
            schemas: [
                "InvoiceXpressCredentials": .object([
                    "type": .string("object"),
                    "required": .array([.string("provider"), .string("account_name"), .string("account_url"), .string("api_key")]),
                    "properties": .object([
                        "provider": .object(["type": .string("string"), "const": .string("invoicexpress")]),
                        "account_id": .object(["type": .string("string")]),
                        "account_name": .object(["type": .string("string")]),
                        "account_url": .object(["type": .string("string")]),
                        "api_key": .object(["type": .string("string")]),
                    ]),
                ]),
            ],
            credentialsSchema: "InvoiceXpressCredentials",
            credentialsExample: .object([
                "provider": .string("invoicexpress"), "account_name": .string("exemplo-lda"),
                "account_url": .string("https://exemplo-lda.app.invoicexpress.com"), "api_key": .string("ix-api-key-of-the-account"),
            ]),
            createExample: .object([
                "provider": .string("invoicexpress"), "external_id": .string("co-2"),
                "profile": .object([
                    "email": .string("rui@example.pt"), "contact_name": .string("Rui Costa"),
                    "company": .object(["tax_id": .string("503504564"), "legal_name": .string("Exemplo Dois Lda"), "country": .string("PT")]),
                ]),
            ])
        )
    }
}
