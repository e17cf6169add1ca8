import Foundation
import GatewayCore
import NIOHTTP1

/// InvoiceXpress's partner API as findings (`providers.md`, "InvoiceXpress"). The partner's key travels as `?api_key=`
/// in the URL, so no URL is ever put in a finding, a diagnostic or a log line; the HTTP client traces host and port
/// only and masks a query in transport errors.
///
/// The password the account needs is made here for the one call, never stored or logged: the customer sets their own
/// through InvoiceXpress's password reset (`docs/providers.md`).
struct InvoiceXpressAdapter: OnboardingProvider {
    let kind = ProviderKind.invoicexpress
    /// With `{account}` where an account's name goes.
    let baseURL: @Sendable () -> String
    let partnerAccount: String
    let partnerKey: String
    let http: ProviderHTTPClient
    let random: any Randomness

    /// The answers' field names, as our request's dotted names, for the messages InvoiceXpress is known to give.
    static let messageFields: [(needle: String, field: String)] = [
        ("email", "profile.email"), ("organization", "profile.company.legal_name"), ("name", "profile.company.legal_name"),
        ("vat", "profile.company.tax_id"), ("fiscal", "profile.company.tax_id"), ("phone", "profile.phone"),
    ]

    func url(account: String, path: String, key: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return baseURL().replacingOccurrences(of: "{account}", with: account) + path + (path.contains("?") ? "&" : "?")
            + "api_key=" + (key.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
    }

    // MARK: - OnboardingProvider

    func submit(_ tenant: ProviderTenant, previousAttempts: Int) async -> ProviderAnswer {
        let taxID = tenant.profile.company?.taxID.flatMap { $0.isEmpty ? nil : $0 }
        // After an attempt whose outcome was lost, a create without a fiscal id could open a second account: nothing
        // tells ours from none. The customer (who got InvoiceXpress's welcome email if it was made) gives the key.
        if previousAttempts > 0, taxID == nil {
            return ProviderAnswer(.actionRequired(NextAction(type: .provideCredentials), providerStatus: "outcome_unknown"))
        }
        guard let body = try? JSONSerialization.data(withJSONObject: ["account": accountFields(tenant.profile, taxID: taxID)]) else {
            return ProviderAnswer(.unavailable(reason: "the account could not be encoded", retryAfter: nil))
        }
        let answer: ProviderResponse
        switch await http.send(.POST, url(account: partnerAccount, path: "/api/accounts/create.json", key: partnerKey), json: body) {
        case .failure(let failure):
            return Self.unavailable(failure)
        case .success(let response):
            answer = response
        }
        switch answer.status {
        case 200, 201:
            guard let credentials = Self.credentials(fromCreated: answer.body) else { return Self.malformed(answer) }
            return ProviderAnswer(.ready(providerStatus: "account_created"), credentials: credentials)
        case 422:
            let message = Self.errorMessage(answer)
            if message.lowercased().contains("already used") {
                // Someone's account holds this fiscal id: an existing InvoiceXpress user, or (after a lost outcome) the
                // account our earlier call made. Either way its owner gives the key; no second account is made.
                return ProviderAnswer(.actionRequired(NextAction(type: .provideCredentials), providerStatus: "account_exists"), diagnostic: message)
            }
            let lowered = message.lowercased()
            let field = Self.messageFields.first { lowered.contains($0.needle) }?.field ?? "profile"
            guard !message.isEmpty else { return Self.failure(answer) }
            return ProviderAnswer(.rejected(
                TenantError(code: "provider_rejected", message: "InvoiceXpress refused the account's details.", errors: [
                    FieldError(field: field, code: "provider_rejected", message: "InvoiceXpress refused this value."),
                ], at: Date()),
                providerStatus: "rejected"
            ), diagnostic: message)
        default:
            // 401 (the partner's key), 429, 5xx, anything else: not the customer's answer. Ask again later.
            return Self.failure(answer)
        }
    }

    /// No status endpoint exists: an account, once made or typed in, is ready; without one the customer still has to
    /// give their key.
    func check(_ tenant: ProviderTenant) async -> ProviderAnswer {
        tenant.hasCredentials
            ? ProviderAnswer(.ready(providerStatus: "account_active"))
            : ProviderAnswer(.waiting(providerStatus: "awaiting_credentials"))
    }

    /// One authenticated read of the account's clients: `200` is the key working for that account; `401`, `403` or
    /// `404` is an explicit refusal.
    func verify(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> CredentialCheck {
        guard let name = credentials.fields["account_name"]?.stringValue, InvoiceXpressModule.isAccountName(name),
            let key = credentials.fields["api_key"]?.stringValue, !key.isEmpty
        else { return .invalid(reason: "not InvoiceXpress credentials") }
        switch await http.send(.GET, url(account: name, path: "/clients.json?page=1&per_page=1", key: key)) {
        case .failure(let failure):
            return .unavailable(reason: Self.unavailable(failure).diagnostic ?? "InvoiceXpress could not be reached", retryAfter: nil)
        case .success(let response):
            switch response.status {
            case 200:
                guard (try? JSONSerialization.jsonObject(with: response.body)) is [String: Any] else {
                    return .unavailable(reason: "InvoiceXpress answered 200 with an unexpected body", retryAfter: nil)
                }
                return .valid
            case 401, 403, 404: return .invalid(reason: "InvoiceXpress refused the key (\(response.status))")
            default: return .unavailable(reason: "InvoiceXpress answered \(response.status)", retryAfter: response.retryAfter())
            }
        }
    }

    func onboardingURL(for tenant: ProviderTenant) async -> OnboardingURL { .notSupported }

    // MARK: - Reading answers

    func accountFields(_ profile: Profile, taxID: String?) -> [String: String] {
        let names = (profile.contactName ?? "").split(separator: " ", maxSplits: 1).map(String.init)
        var fields: [String: String] = [
            "organization_name": profile.company?.legalName ?? "", "email": profile.email ?? "", "terms": "1", "language": "pt",
            "password": Self.password(random),
        ]
        if let taxID { fields["fiscal_id"] = taxID }
        if let country = profile.company?.country, let code = InvoiceXpressModule.taxCountries[country] { fields["tax_country"] = code }
        if let first = names.first, !first.isEmpty { fields["first_name"] = first }
        if names.count > 1 { fields["last_name"] = names[1] }
        if let phone = profile.phone, !phone.isEmpty { fields["phone"] = phone }
        return fields
    }

    /// 24 characters from four classes (about 140 bits), made for one call and forgotten.
    static func password(_ random: any Randomness) -> String {
        let classes = [Array("abcdefghijkmnopqrstuvwxyz"), Array("ABCDEFGHJKLMNPQRSTUVWXYZ"), Array("23456789"), Array("!#%+-=?@_")]
        let all = classes.flatMap { $0 }
        var characters = classes.map { $0[Int(random.bytes(1)[0]) % $0.count] }
        characters += random.bytes(20).map { all[Int($0) % all.count] }
        return String(characters)
    }

    /// `{"account": {"id", "name", "url", "api_key", …}}` as credentials; nil when the key or a usable name is missing.
    static func credentials(fromCreated body: Data) -> ProviderCredentials? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let account = object["account"] as? [String: Any],
            let key = account["api_key"] as? String, !key.isEmpty, key.count <= 256,
            let name = account["name"] as? String, InvoiceXpressModule.isAccountName(name)
        else { return nil }
        var fields: [String: JSONValue] = [
            "account_name": .string(name), "api_key": .string(key), "account_url": .string("https://\(name).app.invoicexpress.com"),
        ]
        if let id = account["id"] as? String, !id.isEmpty, id.count <= 64 {
            fields["account_id"] = .string(id)
        } else if let id = account["id"] as? NSNumber, let whole = Int64(exactly: id.doubleValue) {
            fields["account_id"] = .string(String(whole))
        }
        return ProviderCredentials(provider: .invoicexpress, fields: fields)
    }

    /// The one message of an error answer: JSON `{"errors": {"error": "…"}}` (v2) or XML `<errors><error>…</error></errors>`
    /// (v1), at most 300 characters.
    static func errorMessage(_ response: ProviderResponse) -> String {
        if let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] {
            if let errors = object["errors"] as? [String: Any], let text = errors["error"] as? String { return String(text.prefix(300)) }
            if let errors = object["errors"] as? [Any], let text = errors.first as? String { return String(text.prefix(300)) }
            if let text = object["error"] as? String { return String(text.prefix(300)) }
            return ""
        }
        let text = String(decoding: response.body.prefix(4096), as: UTF8.self)
        guard let start = text.range(of: "<error>"), let end = text.range(of: "</error>", range: start.upperBound..<text.endIndex) else { return "" }
        return String(text[start.upperBound..<end.lowerBound].prefix(300))
            .replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
    }

    static func failure(_ response: ProviderResponse) -> ProviderAnswer {
        let said = errorMessage(response)
        return ProviderAnswer(
            .unavailable(reason: "InvoiceXpress answered \(response.status)" + (response.isHTML ? " with an HTML page" : ""), retryAfter: response.retryAfter()),
            diagnostic: said.isEmpty ? nil : said
        )
    }

    static func malformed(_ response: ProviderResponse) -> ProviderAnswer {
        ProviderAnswer(.unavailable(reason: "InvoiceXpress answered \(response.status) with an unexpected body", retryAfter: nil))
    }

    static func unavailable(_ failure: TransportFailure) -> ProviderAnswer {
        switch failure {
        case .timedOut: ProviderAnswer(.unavailable(reason: "InvoiceXpress did not answer in time", retryAfter: nil), diagnostic: "timeout")
        case .unreachable(let detail): ProviderAnswer(.unavailable(reason: "InvoiceXpress could not be reached", retryAfter: nil), diagnostic: detail)
        }
    }
}
