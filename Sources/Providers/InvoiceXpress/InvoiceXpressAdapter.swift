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

    /// The answers' field names, as our request's dotted names, for the messages InvoiceXpress is known to give
    /// (first match wins: "first name" before a company's name).
    static let messageFields: [(needle: String, field: String)] = [
        ("email", "profile.email"), ("first name", "profile.contact_name"), ("last name", "profile.contact_name"),
        ("organization", "profile.company.legal_name"), ("company", "profile.company.legal_name"),
        ("vat", "profile.company.tax_id"), ("fiscal", "profile.company.tax_id"), ("nif", "profile.company.tax_id"), ("phone", "profile.phone"),
    ]

    /// RFC 3986's unreserved characters, ASCII only: a key is percent-encoded byte by byte.
    static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    func url(account: String, path: String, key: String) -> String {
        baseURL().replacingOccurrences(of: "{account}", with: account) + path + (path.contains("?") ? "&" : "?")
            + "api_key=" + (key.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? "")
    }

    /// Text from a transport error or the provider, with both keys taken out (as sent and as encoded) before it goes
    /// to a log line or an operator's page.
    func scrubbed(_ text: String?, keys: [String]) -> String? {
        guard var text else { return nil }
        for key in keys where !key.isEmpty {
            text = text.replacingOccurrences(of: key, with: "***")
            if let encoded = key.addingPercentEncoding(withAllowedCharacters: Self.unreserved) { text = text.replacingOccurrences(of: encoded, with: "***") }
        }
        return text
    }

    func scrubbed(_ answer: ProviderAnswer, keys: [String]) -> ProviderAnswer {
        var answer = answer
        answer.diagnostic = scrubbed(answer.diagnostic, keys: keys)
        return answer
    }

    // MARK: - OnboardingProvider

    func submit(_ tenant: ProviderTenant, previousAttempts: Int) async -> ProviderAnswer {
        scrubbed(await create(tenant, previousAttempts: previousAttempts), keys: [partnerKey])
    }

    private func create(_ tenant: ProviderTenant, previousAttempts: Int) async -> ProviderAnswer {
        let taxID = tenant.profile.company?.taxID.flatMap { $0.isEmpty ? nil : $0 }
        // After an attempt whose outcome was lost, a create without a fiscal id could open a second account: nothing
        // tells ours from none. The customer (who got InvoiceXpress's welcome email if it was made) gives the key.
        if previousAttempts > 0, taxID == nil {
            return ProviderAnswer(.actionRequired(NextAction(type: .provideCredentials), providerStatus: "outcome_unknown"))
        }
        guard let body = try? JSONSerialization.data(withJSONObject: ["account": accountFields(tenant.profile, taxID: taxID)]) else {
            return Self.notSent(ProviderAnswer(.unavailable(reason: "the account could not be encoded", retryAfter: nil)))
        }
        let answer: ProviderResponse
        switch await http.send(.POST, url(account: partnerAccount, path: "/api/accounts/create.json", key: partnerKey), json: body) {
        case .failure(.unreachable(let detail)) where detail.lowercased().contains("connection refused"):
            // Refused before anything was sent: nothing was created, nothing to settle.
            return Self.notSent(Self.unavailable(.unreachable(detail)))
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
            if Self.fiscalIDTaken(message) {
                // Someone's account holds this fiscal id: an existing InvoiceXpress user, or (after a lost outcome) the
                // account our earlier call made. Either way its owner gives the key; no second account is made.
                return ProviderAnswer(.actionRequired(NextAction(type: .provideCredentials), providerStatus: "account_exists"), diagnostic: message)
            }
            // An HTML page or a body with no error in it (a proxy's, a firewall's) is not InvoiceXpress refusing the
            // customer: nothing was made, ask again later.
            guard !message.isEmpty else { return Self.notSent(Self.failure(answer)) }
            let lowered = message.lowercased()
            if lowered.contains("password") {
                // The password is ours, not the customer's: not their refusal. Ask again (a new one is made each time).
                return Self.notSent(ProviderAnswer(.unavailable(reason: "InvoiceXpress refused the generated password", retryAfter: nil), diagnostic: message))
            }
            // A refusal: a message that names no known field is put under `profile`.
            let field = Self.messageFields.first { lowered.contains($0.needle) }?.field ?? "profile"
            return ProviderAnswer(.rejected(
                TenantError(code: "provider_rejected", message: "InvoiceXpress refused the account's details.", errors: [
                    FieldError(field: field, code: "provider_rejected", message: "InvoiceXpress refused this value."),
                ], at: Date()),
                providerStatus: "rejected"
            ), diagnostic: message)
        case 400..<500:
            // 401 (the partner's key), 429, any other refusal before processing: nothing was created. Ask again later.
            return Self.notSent(Self.failure(answer))
        default:
            // 5xx and anything else: the account may or may not exist. Unknown, so it settles.
            return Self.failure(answer)
        }
    }

    /// "Vat Number is already used in another account", or the same in Portuguese (the account language is `pt`).
    static func fiscalIDTaken(_ message: String) -> Bool {
        let text = message.lowercased()
        let aboutTaxID = ["vat", "fiscal", "nif", "contribuinte"].contains { text.contains($0) }
        let taken = ["already used", "already in use", "already taken", "utilizad", "em uso", "já existe", "already exists"].contains { text.contains($0) }
        return aboutTaxID && taken
    }

    static func notSent(_ answer: ProviderAnswer) -> ProviderAnswer {
        var answer = answer
        answer.nothingSubmitted = true
        return answer
    }

    /// No status endpoint exists: an account, once made or typed in, is ready; without one the customer still has to
    /// give their key, and what InvoiceXpress said last (`account_exists`, `outcome_unknown`) still stands.
    func check(_ tenant: ProviderTenant) async -> ProviderAnswer {
        tenant.hasCredentials
            ? ProviderAnswer(.ready(providerStatus: "account_active"))
            : ProviderAnswer(.waiting(providerStatus: tenant.providerStatus ?? "awaiting_credentials"))
    }

    /// One authenticated read of the account's clients: `200` is the key working for that account; `401`, `403` or
    /// `404` is an explicit refusal.
    func verify(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> CredentialCheck {
        guard let name = credentials.fields["account_name"]?.stringValue, InvoiceXpressModule.isAccountName(name),
            let key = credentials.fields["api_key"]?.stringValue, !key.isEmpty
        else { return .invalid(reason: "not InvoiceXpress credentials") }
        // The customer's host: unheard by the breaker (a typo there is not an outage) and out of traces.
        switch await http.unobserved().maskingFirstHostLabel().send(.GET, url(account: name, path: "/clients.json?page=1&per_page=1", key: key)) {
        case .failure(.timedOut):
            return .unavailable(reason: "InvoiceXpress did not answer in time", retryAfter: nil)
        case .failure:
            // A name that does not resolve, or an account host that is down: said without the detail, which could
            // carry the URL.
            return .unavailable(reason: "the account's InvoiceXpress address could not be reached", retryAfter: nil)
        case .success(let response):
            switch response.status {
            case 200:
                guard (try? JSONSerialization.jsonObject(with: response.body)) is [String: Any] else {
                    return .unavailable(reason: "InvoiceXpress answered 200 with an unexpected body", retryAfter: nil)
                }
                return .valid
            // A refusal is InvoiceXpress's own answer, not a page from something in front of it.
            case 401 where !response.isHTML, 403 where !response.isHTML, 404 where !response.isHTML:
                return .invalid(reason: "InvoiceXpress refused the key (\(response.status))")
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
            let key = account["api_key"] as? String, !key.isEmpty, key.utf8.count <= 256, key.allSatisfy({ $0.isASCII && !$0.isWhitespace }),
            let name = (account["name"] as? String)?.lowercased(), InvoiceXpressModule.isAccountName(name)
        else { return nil }
        var fields: [String: JSONValue] = [
            "account_name": .string(name), "api_key": .string(key), "account_url": .string("https://\(name).app.invoicexpress.com"),
        ]
        if let id = account["id"] as? String, !id.isEmpty, id.utf8.count <= 64 {
            fields["account_id"] = .string(id)
        } else if let id = account["id"] as? NSNumber, String(cString: id.objCType) != "c", let whole = Int64(exactly: id.doubleValue), (1...Int64(1) << 53).contains(whole) {
            fields["account_id"] = .string(String(whole))
        }
        return ProviderCredentials(provider: .invoicexpress, fields: fields)
    }

    /// The one message of an error answer: JSON `{"errors": {"error": "…"}}` (v2) or XML `<errors><error>…</error></errors>`
    /// (v1), at most 300 characters.
    static func errorMessage(_ response: ProviderResponse) -> String {
        bounded(rawErrorMessage(response))
    }

    /// At most 300 bytes of text, cut on a character.
    static func bounded(_ text: String) -> String {
        var result = ""
        for character in text where result.utf8.count + character.utf8.count <= 300 { result.append(character) }
        return result
    }

    static func rawErrorMessage(_ response: ProviderResponse) -> String {
        if let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] {
            let first = { (value: Any?) -> String? in
                if let text = value as? String { return text }
                if let list = value as? [Any] { return list.lazy.compactMap { ($0 as? String) ?? (($0 as? [String: Any]).flatMap { ($0["error"] ?? $0["message"]) as? String }) }.first }
                return nil
            }
            if let errors = object["errors"] as? [String: Any], let text = first(errors["error"]) ?? first(errors["message"]) { return text }
            if let text = first(object["errors"]) { return text }
            return first(object["error"]) ?? first(object["message"]) ?? ""
        }
        guard response.isXML else { return "" }
        let text = String(decoding: response.body.prefix(8192), as: UTF8.self)
        // The `error` element (not `errors`), attributes or not.
        guard let open = text.firstMatch(of: /<error(?:\s[^>]*)?>/), let end = text.range(of: "</error>", range: open.range.upperBound..<text.endIndex)
        else { return "" }
        var inner = String(text[open.range.upperBound..<end.lowerBound])
        if inner.hasPrefix("<![CDATA["), inner.hasSuffix("]]>") { return String(inner.dropFirst(9).dropLast(3)) }
        inner = decodeEntities(inner)
        return inner
    }

    /// XML's five entities and numeric references, decoded in one pass (`&amp;lt;` stays `&lt;`).
    static func decodeEntities(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            result += rest[..<amp]
            let tail = rest[amp...]
            guard let semicolon = tail.prefix(12).firstIndex(of: ";") else { result += "&"; rest = tail.dropFirst(); continue }
            let name = tail[tail.index(after: amp)..<semicolon]
            let named = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'"]
            var decoded: String?
            if let plain = named[String(name)] {
                decoded = plain
            } else if name.hasPrefix("#x"), let code = UInt32(name.dropFirst(2), radix: 16), let scalar = Unicode.Scalar(code) {
                decoded = String(Character(scalar))
            } else if name.hasPrefix("#"), let code = UInt32(name.dropFirst()), let scalar = Unicode.Scalar(code) {
                decoded = String(Character(scalar))
            }
            if let decoded {
                result += decoded
                rest = tail[tail.index(after: semicolon)...]
            } else {
                result += "&"
                rest = tail.dropFirst()
            }
        }
        return result + rest
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

// MARK: - Credentials ready to use

extension InvoiceXpressAdapter: CredentialBroker {
    /// No token exists but the account's API key, the long-lived secret: none is handed out (the capability is off);
    /// the proxy adds the key instead.
    func proxyTarget(for credentials: ProviderCredentials, token: IssuedToken?) -> ProxyTarget? {
        guard let name = credentials.fields["account_name"]?.stringValue, InvoiceXpressModule.isAccountName(name),
            let key = credentials.fields["api_key"]?.stringValue, !key.isEmpty
        else { return nil }
        var target = ProxyTarget(
            baseURL: baseURL().replacingOccurrences(of: "{account}", with: name), query: [("api_key", key)],
            credentialHeaders: ["api_key", "x-api-key"], credentialQuery: ["api_key"]
        )
        target.hostNamesCustomer = true
        return target
    }

    /// `check` (an account with a key is ready) and one read of the account's clients with the stored key
    /// (`verify`): `401`, `403` or `404` is a refusal, and the customer types in a key that works. One request a day
    /// per active tenant.
    func checkCredentials(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> ProviderAnswer {
        var answer = await check(tenant)
        switch await verify(credentials, for: tenant) {
        case .valid: answer.verdict = .working
        case .invalid(let reason): answer.verdict = .refused(reason: reason, nextAction: NextAction(type: .provideCredentials))
        case .customerUnknown: answer.verdict = .unknown(reason: "InvoiceXpress knows no such account yet")
        case .unavailable(let reason, _): answer.verdict = .unknown(reason: reason)
        }
        return answer
    }
}
