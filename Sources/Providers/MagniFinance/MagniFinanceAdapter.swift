import Foundation
import GatewayCore
import NIOHTTP1

/// The MagniFinance IPPN partner API (`providers.md`): AddPartner to register or request access, and
/// GetPartnerAccessTokens, the only status signal there is (no webhooks), polled until access is granted.
public struct MagniFinanceAdapter: OnboardingProvider {
    public struct Configuration: Sendable {
        /// Resolved on each call: in sandbox mode it is the gateway's own address, known once its port is bound.
        public var baseURL: @Sendable () -> String
        public var email: String
        public var token: String
        /// The IPPN main user's password; only the access-token call takes it, so it goes nowhere else.
        public var password: String

        public init(baseURL: @escaping @Sendable () -> String, email: String, token: String, password: String) {
            self.baseURL = { let url = baseURL(); return url.hasSuffix("/") ? String(url.dropLast()) : url }
            self.email = email
            self.token = token
            self.password = password
        }
    }

    public let kind = ProviderKind.magnifinance
    let configuration: Configuration
    let http: ProviderHTTPClient

    public init(configuration: Configuration, http: ProviderHTTPClient) {
        self.configuration = configuration
        self.http = http
    }

    /// MagniFinance's AddPartner fields, as our request's dotted names.
    static let fieldNames = [
        "CompanyTaxId": "profile.company.tax_id", "UserName": "profile.contact_name", "UserEmail": "profile.email",
        "UserPhone": "profile.phone", "CompanyLegalName": "profile.company.legal_name", "CompanyAddress": "profile.company.address",
        "CompanyCity": "profile.company.city", "CompanyPostCode": "profile.company.post_code", "CompanyCountry": "profile.company.country",
    ]

    // MARK: - OnboardingProvider

    public func submit(_ tenant: ProviderTenant, previousAttempts: Int) async -> ProviderAnswer {
        guard let taxID = tenant.profile.company?.taxID else {
            return ProviderAnswer(.rejected(TenantError(code: "validation_failed", message: "A company tax id is required.", errors: [
                FieldError(field: "profile.company.tax_id", code: "required", message: "MagniFinance needs the company's tax id."),
            ], at: Date()), providerStatus: "not_submitted"))
        }
        // AddPartner is not idempotent: after an attempt whose outcome we never learnt, ask before calling again.
        // Tokens now are that attempt's: the first attempt's preflight found none, so no one else's partnership
        // was there before it.
        if previousAttempts > 0 {
            switch await accessTokens(taxID: taxID) {
            case .granted(let tokens): return ready(tokens)
            case .unavailable(let reason, let retryAfter, let diagnostic):
                return ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter), diagnostic: diagnostic)
            case .notGranted: break
            }
        }
        switch await addPartner(tenant.profile, taxID: taxID, previousAttempts: previousAttempts) {
        case .accepted:
            switch await accessTokens(taxID: taxID) {
            case .granted(let tokens):
                return ready(tokens)
            case .notGranted:
                // A company that is already a MagniFinance client must approve the partnership by email.
                return ProviderAnswer(.actionRequired(NextAction(type: .awaitApproval), providerStatus: "access_requested"))
            case .unavailable(let reason, let retryAfter, let diagnostic):
                // AddPartner went through but whether access is granted is unknown: not an answer. The submission
                // stays recorded, so the next attempt asks for the tokens first and never registers the company twice.
                return ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter), diagnostic: diagnostic)
            }
        case .rejected(let errors):
            return ProviderAnswer(.rejected(
                TenantError(code: "provider_rejected", message: "MagniFinance refused the company's details.", errors: errors, at: Date()),
                providerStatus: "rejected"
            ))
        case .alreadyRequested:
            // MagniFinance says the partnership exists. After an attempt of ours whose outcome was lost, that is our
            // own request awaiting the client's approval. On a first attempt it is someone else's request: waiting
            // would hand this tenant the tokens the day that company approves someone else.
            guard previousAttempts > 0 else { return Self.alreadyPartner() }
            return ProviderAnswer(.actionRequired(NextAction(type: .awaitApproval), providerStatus: "access_requested"))
        case .unavailable(let reason, let retryAfter, let diagnostic):
            return ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter), diagnostic: diagnostic)
        case .notProcessed(let reason, let retryAfter, let diagnostic):
            // MagniFinance did not take the call (429, the connection refused): on a first attempt nothing was
            // submitted, so nothing is left to reconcile (a reconcile could mistake someone else's request for ours).
            var answer = ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter), diagnostic: diagnostic)
            answer.nothingSubmitted = previousAttempts == 0
            return answer
        }
    }

    /// Tokens are answered for any tax id that is a partner of our account, whoever asks: tokens there before this
    /// tenant's first AddPartner are someone else's partnership, never this tenant's.
    public func preflight(_ tenant: ProviderTenant) async -> ProviderAnswer? {
        guard let taxID = tenant.profile.company?.taxID else { return nil }
        switch await accessTokens(taxID: taxID) {
        case .granted: return Self.alreadyPartner()
        case .unavailable(let reason, let retryAfter, let diagnostic):
            return ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter), diagnostic: diagnostic)
        case .notGranted: return nil
        }
    }

    public func check(_ tenant: ProviderTenant) async -> ProviderAnswer {
        guard let taxID = tenant.profile.company?.taxID else { return ProviderAnswer(.waiting(providerStatus: "not_submitted")) }
        switch await accessTokens(taxID: taxID) {
        case .granted(let tokens): return ready(tokens)
        case .notGranted: return ProviderAnswer(.waiting(providerStatus: "access_requested"))
        case .unavailable(let reason, let retryAfter, let diagnostic):
            return ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter), diagnostic: diagnostic)
        }
    }

    public func verify(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> CredentialCheck {
        // MagniFinance tokens come only from MagniFinance; nothing typed in by hand is taken.
        .invalid(reason: "MagniFinance access tokens cannot be supplied by hand")
    }

    public func onboardingURL(for tenant: ProviderTenant) async -> OnboardingURL {
        .notSupported
    }

    /// The company is a partner (or has a request pending) through someone else's onboarding: refused for good,
    /// naming nobody. An operator who confirmed the customer owns the company may transfer it (`docs/providers.md`).
    static func alreadyPartner() -> ProviderAnswer {
        ProviderAnswer(.rejected(TenantError(
            code: "company_already_onboarded",
            message: "This company is already a partner through another onboarding; its access cannot be given to this tenant.",
            errors: [FieldError(field: "profile.company.tax_id", code: "company_already_onboarded", message: "Another onboarding holds this company.")],
            at: Date()
        ), providerStatus: "partner_elsewhere"))
    }

    func ready(_ tokens: [MagniFinanceAccessToken]) -> ProviderAnswer {
        ProviderAnswer(.ready(providerStatus: "access_granted"), credentials: .magnifinance(accessTokens: tokens))
    }

    // MARK: - Calls

    enum AddPartnerResult {
        case accepted
        case rejected([FieldError])
        /// The answer says the partnership already exists (requested earlier, not yet approved).
        case alreadyRequested
        case unavailable(String, TimeInterval?, diagnostic: String? = nil)
        /// Refused before it was processed (429, the connection refused): nothing was submitted.
        case notProcessed(String, TimeInterval?, diagnostic: String? = nil)
    }

    enum TokensResult {
        case granted([MagniFinanceAccessToken])
        case notGranted
        case unavailable(String, TimeInterval?, diagnostic: String? = nil)
    }

    var authHeaders: [(String, String)] { [("Email", configuration.email), ("Token", configuration.token)] }

    func addPartner(_ profile: Profile, taxID: String, previousAttempts: Int) async -> AddPartnerResult {
        var fields: [String: String] = ["CompanyTaxId": taxID]
        fields["UserName"] = profile.contactName
        fields["UserEmail"] = profile.email
        fields["UserPhone"] = profile.phone
        fields["CompanyLegalName"] = profile.company?.legalName
        fields["CompanyAddress"] = profile.company?.address
        fields["CompanyCity"] = profile.company?.city
        fields["CompanyPostCode"] = profile.company?.postCode
        fields["CompanyCountry"] = profile.company?.country
        let body = try? JSONSerialization.data(withJSONObject: fields)
        let response: ProviderResponse
        switch await http.send(.POST, configuration.baseURL() + "/partner", headers: authHeaders, json: body) {
        case .failure(.unreachable(let detail)) where detail.lowercased().contains("connection refused"):
            return .notProcessed(Self.describe(.unreachable(detail)), nil, diagnostic: detail)
        case .failure(let failure): return .unavailable(Self.describe(failure), nil, diagnostic: Self.diagnostic(failure))
        case .success(let value): response = value
        }
        if response.status == 429 {
            return .notProcessed("MagniFinance AddPartner answered 429", response.retryAfter())
        }
        if response.status >= 500 || response.isHTML {
            return .unavailable("MagniFinance AddPartner answered \(response.status)\(response.isHTML ? " with an HTML page" : "")", response.retryAfter())
        }
        guard let envelope = MagniFinanceEnvelope(response.body) else {
            return .unavailable("MagniFinance AddPartner answered \(response.status) with an unreadable body", nil)
        }
        if response.status == 401 || envelope.errorCode == MagniFinanceEnvelope.authenticationError {
            return .unavailable("MagniFinance refused the IPPN Email/Token", nil)
        }
        guard envelope.isError || !(200..<300).contains(response.status) else { return .accepted }
        // Only an answer that says the partnership exists counts as "requested" (checked first: it may come as a
        // 400 too); any other unexplained refusal stays transient rather than leave the tenant awaiting an
        // approval nobody asked for.
        if envelope.saysPartnershipExists {
            return .alreadyRequested
        }
        if envelope.isDataRejection || response.status == 400 {
            return .rejected(Self.fieldErrors(envelope))
        }
        return .unavailable("MagniFinance AddPartner failed: \(envelope.summary)", nil, diagnostic: envelope.humanReadable)
    }

    /// `explicitOnly`: "not granted" only when MagniFinance says so (`PartnershipNotFound`); a bare 404 without its
    /// envelope (something in front of it) is unavailable. A credential check suspends on nothing less.
    func accessTokens(taxID: String, explicitOnly: Bool = false) async -> TokensResult {
        var components = URLComponents(string: configuration.baseURL() + "/partner/accessTokens")
        components?.queryItems = [URLQueryItem(name: "partnerTaxId", value: taxID)]
        guard let url = components?.string else { return .unavailable("bad MagniFinance base URL", nil) }
        let headers = authHeaders + [("Password", configuration.password)]
        let response: ProviderResponse
        switch await http.send(.GET, url, headers: headers) {
        case .failure(let failure): return .unavailable(Self.describe(failure), nil, diagnostic: Self.diagnostic(failure))
        case .success(let value): response = value
        }
        if response.status == 429 || response.status >= 500 || response.isHTML {
            return .unavailable("MagniFinance accessTokens answered \(response.status)", response.retryAfter())
        }
        guard let envelope = MagniFinanceEnvelope(response.body) else {
            return response.status == 404 && !explicitOnly ? .notGranted : .unavailable("MagniFinance accessTokens answered an unreadable body", nil)
        }
        if envelope.isError || !(200..<300).contains(response.status) {
            if envelope.isPartnershipNotFound || (response.status == 404 && !explicitOnly) { return .notGranted }
            return .unavailable("MagniFinance accessTokens failed: \(envelope.summary)", nil)
        }
        let entries = envelope.object as? [Any]
        let tokens = (entries ?? []).compactMap { entry -> MagniFinanceAccessToken? in
            guard let item = entry as? [String: Any], let token = item["AccessToken"] as? String, !token.isEmpty else { return nil }
            return MagniFinanceAccessToken(token: token, description: item["Description"] as? String)
        }
        // A success whose object is not a list, or a list with no token we can read, is a shape we do not know: a
        // credential check must not take it for a withdrawn partnership (one format change would suspend everyone).
        if explicitOnly, tokens.isEmpty, entries == nil || entries?.isEmpty == false {
            return .unavailable("MagniFinance accessTokens answered a list it does not usually give", nil)
        }
        return tokens.isEmpty ? .notGranted : .granted(tokens)
    }

    static func fieldErrors(_ envelope: MagniFinanceEnvelope) -> [FieldError] {
        var errors = envelope.validationErrors.map { item in
            FieldError(
                field: item.field.map { fieldNames[$0] ?? "profile" } ?? "profile",
                code: item.type.map(snakeCase) ?? "rejected", message: "MagniFinance refused this value."
            )
        }
        if errors.isEmpty, envelope.errorCode == MagniFinanceEnvelope.invalidTaxID {
            errors.append(FieldError(field: "profile.company.tax_id", code: "invalid_tax_id", message: "MagniFinance does not accept this tax id."))
        }
        if errors.isEmpty {
            errors.append(FieldError(field: "profile", code: "rejected", message: "MagniFinance refused the company's details."))
        }
        return errors
    }

    static func snakeCase(_ text: String) -> String {
        var result = ""
        for character in text {
            if character.isUppercase, !result.isEmpty { result.append("_") }
            result.append(Character(character.lowercased()))
        }
        return result
    }

    static func describe(_ failure: TransportFailure) -> String {
        switch failure {
        case .timedOut: "MagniFinance did not answer in time"
        case .unreachable: "MagniFinance could not be reached"
        }
    }

    static func diagnostic(_ failure: TransportFailure) -> String? {
        if case .unreachable(let detail) = failure { return detail }
        return nil
    }
}

// MARK: - Credentials ready to use

extension MagniFinanceAdapter: CredentialBroker {
    /// The company's first access token, as it is: MagniFinance's tokens do not expire. The partner presents it with
    /// the IPPN email (`tokenUse`).
    public func accessToken(with credentials: ProviderCredentials) async -> TokenAnswer {
        guard let token = MagniFinanceCredentials(credentials)?.accessTokens.first?.token else {
            return .refused(reason: "no MagniFinance access token is stored")
        }
        return .issued(IssuedToken(token: token, expiresAt: nil))
    }

    public var tokenUse: [String: String] { ["Email": configuration.email, "Token": "{token}"] }

    /// Calls for the company carry the IPPN email and the company's access token; never the IPPN password.
    public func proxyTarget(for credentials: ProviderCredentials, token: IssuedToken?) -> ProxyTarget? {
        guard let token = MagniFinanceCredentials(credentials)?.accessTokens.first?.token else { return nil }
        return ProxyTarget(
            baseURL: configuration.baseURL(), headers: [("Email", configuration.email), ("Token", token)],
            credentialHeaders: ["email", "token", "password"]
        )
    }

    /// GetPartnerAccessTokens, as `check`: tokens listed are working credentials (fresher ones replace the stored);
    /// "partnership not found" for an onboarded company means it withdrew the partnership: refused, and the company
    /// approves again (`await_approval`). One request a day per active tenant.
    public func checkCredentials(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> ProviderAnswer {
        guard let taxID = tenant.profile.company?.taxID else {
            var answer = ProviderAnswer(.waiting(providerStatus: tenant.providerStatus ?? "access_granted"))
            answer.verdict = .unknown(reason: "no tax id to ask for")
            return answer
        }
        switch await accessTokens(taxID: taxID, explicitOnly: true) {
        case .granted(let tokens):
            // The same tokens in another order, or with another label, are the credentials already kept.
            let stored = MagniFinanceCredentials(credentials)?.accessTokens ?? []
            var answer = Set(tokens.map(\.token)) == Set(stored.map(\.token)) ? ready(stored) : ready(tokens)
            answer.verdict = .working
            return answer
        case .notGranted:
            var answer = ProviderAnswer(.waiting(providerStatus: "access_withdrawn"))
            answer.verdict = .refused(reason: "MagniFinance lists no access for the company any more", nextAction: NextAction(type: .awaitApproval))
            return answer
        case .unavailable(let reason, let retryAfter, let diagnostic):
            var answer = ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter), diagnostic: diagnostic)
            answer.verdict = .unknown(reason: reason)
            return answer
        }
    }
}
