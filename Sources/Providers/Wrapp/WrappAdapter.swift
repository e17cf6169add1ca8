import AsyncHTTPClient
import Foundation
import GatewayCore
import NIOHTTP1

/// The Wrapp Partners API (`providers.md`): `external_login` to start, `embedded_check_user` to follow,
/// `/login` to prove an api_key, and the unsigned "user created" webhook.
public struct WrappAdapter: OnboardingProvider, WebhookInterpreting {
    public struct Configuration: Sendable {
        /// Resolved on each call: in sandbox mode it is the gateway's own address, known once its port is bound.
        public var baseURL: @Sendable () -> String
        public var partnerAPIKey: String

        public init(baseURL: @escaping @Sendable () -> String, partnerAPIKey: String) {
            self.baseURL = { let url = baseURL(); return url.hasSuffix("/") ? String(url.dropLast()) : url }
            self.partnerAPIKey = partnerAPIKey
        }
    }

    public let kind = ProviderKind.wrapp
    /// `external_login` for a customer Wrapp knows answers that customer again: repeating it is harmless.
    let configuration: Configuration
    let http: ProviderHTTPClient

    public init(configuration: Configuration, http: ProviderHTTPClient) {
        self.configuration = configuration
        self.http = http
    }

    /// Wrapp's field names, as our request's dotted names.
    static let fieldNames = ["email": "profile.email", "phone": "profile.phone", "partner_user_id": "external_id"]

    // MARK: - OnboardingProvider

    public func submit(_ tenant: ProviderTenant, previousAttempts: Int) async -> ProviderAnswer {
        // external_login is safe to repeat (it logs the same user in again), so an unknown earlier outcome needs no care.
        switch await loginURL(for: tenant) {
        case .success(let url):
            return ProviderAnswer(.actionRequired(NextAction(type: .redirectToURL, url: url), providerStatus: "login_url_issued"))
        case .failure(let failure):
            return failure.answer
        }
    }

    public func check(_ tenant: ProviderTenant) async -> ProviderAnswer {
        let body = try? JSONSerialization.data(withJSONObject: ["partner_user_id": tenant.externalID])
        let result = await http.send(.POST, configuration.baseURL() + "/embedded_check_user", headers: partnerHeaders, json: body)
        let response: ProviderResponse
        switch result {
        case .failure(let failure): return WrappFailure.transport(failure).answer
        case .success(let value): response = value
        }
        if let failure = WrappFailure.classify(response, allowNotFound: true) {
            return failure.answer
        }
        // An unknown user comes back as 404, as an error body, or as {"user": null}: all mean "not created yet".
        // A 200 that is not JSON at all says nothing: ask again later.
        let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        if response.status == 200, object == nil {
            return WrappFailure.malformed(status: response.status).answer
        }
        guard response.status == 200, let object, let user = object["user"] as? String, !user.isEmpty
        else {
            return ProviderAnswer(.waiting(providerStatus: "login_url_issued"))
        }
        let subscriptionActive = (object["active_subscription"] as? Bool) ?? false

        if subscriptionActive {
            return tenant.hasCredentials
                ? ProviderAnswer(.ready(providerStatus: "subscription_active"))
                : ProviderAnswer(.actionRequired(NextAction(type: .provideCredentials), providerStatus: "user_exists_no_api_key"))
        }
        guard tenant.hasCredentials else {
            return ProviderAnswer(.actionRequired(NextAction(type: .provideCredentials), providerStatus: "user_exists_no_api_key"))
        }
        // A user with a key and no active subscription: not usable. Whether that is a lapse or an onboarding the
        // customer has to finish (and where they go) is the state machine's to say.
        return ProviderAnswer(.lapsed(providerStatus: "subscription_inactive"))
    }

    /// Proves a key is genuine *and this customer's*: `/login` proves a key valid, not whose, and the webhook that
    /// brings it is unsigned. So the key is tried with the email Wrapp itself reports for the tenant's own
    /// `partner_user_id` (`embedded_check_user`), never with ids taken from the same payload. Only an explicit
    /// refusal is `invalid`; an unknown user, a 5xx, HTML or a `200` that cannot be read is `unavailable` (ask again).
    ///
    /// The proof takes three reads, and all three must succeed in one go. So that a flaky Wrapp still lets it through,
    /// one transient failure (not a `429` or anything with `Retry-After`) is tried again at once: at most four requests
    /// in all, which the work lease (four provider timeouts and more) covers.
    public func verify(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> CredentialCheck {
        guard let typed = WrappCredentials(credentials) else { return .invalid(reason: "not Wrapp credentials") }
        let (userID, apiKey) = (typed.wrappUserID, typed.apiKey)
        var spareRetries = 1
        func mayRetry(_ transient: Bool) async -> Bool {
            guard transient, spareRetries > 0 else { return false }
            spareRetries -= 1
            try? await Task.sleep(for: Self.verificationRetryPause)
            return true
        }
        var email: String?
        while email == nil {
            switch await registeredEmail(of: tenant) {
            case .failure(let failure):
                if await mayRetry(failure.mayRepeatAtOnce) { continue }
                return .unavailable(reason: failure.reason, retryAfter: failure.retryAfter)
            case .success(nil):
                return .customerUnknown
            case .success(let found?):
                email = found
            }
        }
        // The key is this customer's; then the user id stored beside it must be the same user's.
        for fields in [["api_key": apiKey, "email": email ?? ""], ["api_key": apiKey, "wrapp_user_id": userID]] {
            while true {
                let (check, mayRepeat) = await login(fields)
                if await mayRetry(mayRepeat) { continue }
                guard check == .valid else { return check }
                break
            }
        }
        return .valid
    }

    /// The pause before a verification read that failed transiently is tried again.
    static let verificationRetryPause = Duration.milliseconds(200)

    /// One `/login`: valid, an explicit refusal, or unknown; `mayRepeat` when it is unknown for a reason that may
    /// pass at once (not a `429`, nor anything with `Retry-After`).
    func login(_ fields: [String: String]) async -> (check: CredentialCheck, mayRepeat: Bool) {
        let (answer, mayRepeat) = await jwtLogin(fields)
        switch answer {
        case .issued: return (.valid, false)
        case .refused(let reason): return (.invalid(reason: reason), false)
        case .unavailable(let reason, let retryAfter): return (.unavailable(reason: reason, retryAfter: retryAfter), mayRepeat)
        }
    }

    /// One `/login`, with the JWT it gives and when that expires (its `exp`, bounded; 23 h when it cannot be read).
    func jwtLogin(_ fields: [String: String]) async -> (answer: TokenAnswer, mayRepeat: Bool) {
        let body = try? JSONSerialization.data(withJSONObject: fields)
        switch await http.send(.POST, configuration.baseURL() + "/login", headers: partnerHeaders, json: body) {
        case .failure(let failure):
            return (.unavailable(reason: WrappFailure.transport(failure).reason, retryAfter: nil), true)
        case .success(let response):
            if response.status == 200, !response.isHTML,
                let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
                let data = object["data"] as? [String: Any], let attributes = data["attributes"] as? [String: Any],
                let jwt = attributes["jwt"] as? String, !jwt.isEmpty, jwt.utf8.count <= 8192
            {
                return (.issued(IssuedToken(token: jwt, expiresAt: Self.expiry(ofJWT: jwt, now: Date()))), false)
            }
            if Self.isExplicitRefusal(response) {
                return (.refused(reason: ErrorBody(response).summary), false)
            }
            let retryAfter = response.retryAfter()
            return (
                .unavailable(reason: "Wrapp /login answered \(response.status) with \(ErrorBody(response).shape)", retryAfter: retryAfter),
                response.status != 429 && retryAfter == nil
            )
        }
    }

    /// When a JWT expires: its `exp` claim, held between a minute and a week from now (it is the provider's number);
    /// when it cannot be read, 23 h, an hour inside the 24 h Wrapp documents.
    public static func expiry(ofJWT jwt: String, now: Date) -> Date {
        let fallback = now.addingTimeInterval(23 * 3600)
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].utf8.count <= 4096 else { return fallback }
        var text = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text), let claims = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let exp = (claims["exp"] as? NSNumber)?.doubleValue, exp.isFinite
        else { return fallback }
        // A readable exp is believed within a minute and a week from now: a past or imminent one is not stretched to a
        // day (every call would fail with it), a far one is not kept for months.
        let lifetime = min(max(exp - now.timeIntervalSince1970, 60), 7 * 86_400)
        return now.addingTimeInterval(lifetime)
    }

    /// `401`/`403`, or `{"errors": [{"title": "Not valid user"}]}` with any 4xx or 200: Wrapp says no.
    static func isExplicitRefusal(_ response: ProviderResponse) -> Bool {
        guard !response.isHTML else { return false }
        if response.status == 401 || response.status == 403 { return true }
        guard response.status < 500, response.status != 429,
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
            let errors = object["errors"] as? [[String: Any]]
        else { return false }
        return errors.contains { ($0["title"] as? String)?.lowercased().contains("not valid user") == true }
    }

    /// The email Wrapp holds for the tenant's `partner_user_id`; nil when Wrapp knows no such user yet.
    func registeredEmail(of tenant: ProviderTenant) async -> Result<String?, WrappFailure> {
        let body = try? JSONSerialization.data(withJSONObject: ["partner_user_id": tenant.externalID])
        let response: ProviderResponse
        switch await http.send(.POST, configuration.baseURL() + "/embedded_check_user", headers: partnerHeaders, json: body) {
        case .failure(let failure): return .failure(.transport(failure))
        case .success(let value): response = value
        }
        if let failure = WrappFailure.classify(response, allowNotFound: true) { return .failure(failure) }
        guard response.status == 200 else { return .success(nil) }
        guard let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            return .failure(.malformed(status: response.status))
        }
        return .success((object["user"] as? String).flatMap { $0.isEmpty ? nil : $0 })
    }

    public func onboardingURL(for tenant: ProviderTenant) async -> OnboardingURL {
        switch await loginURL(for: tenant) {
        case .success(let url): .url(url)
        case .failure(let failure): .unavailable(reason: failure.reason)
        }
    }

    // MARK: - Webhook

    public func interpretWebhook(_ body: Data) -> WebhookNotice? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let partnerUserID = object["partner_user_id"] as? String, !partnerUserID.isEmpty
        else { return nil }
        let userID = object["wrapp_user_id"].flatMap { ($0 as? String) ?? ($0 as? Int).map(String.init) }
        let apiKey = object["api_key"] as? String
        if (userID == nil) != (apiKey == nil) { return nil }
        let credentials = userID.flatMap { id in apiKey.map { ProviderCredentials.wrapp(wrappUserID: id, apiKey: $0) } }
        return WebhookNotice(externalID: partnerUserID, credentials: credentials)
    }

    // MARK: - Calls

    var partnerHeaders: [(String, String)] { [("X-PARTNER-API-KEY", configuration.partnerAPIKey)] }

    func loginURL(for tenant: ProviderTenant) async -> Result<String, WrappFailure> {
        var fields: [String: String] = ["partner_user_id": tenant.externalID]
        fields["email"] = tenant.profile.email
        fields["phone"] = tenant.profile.phone
        // Wrapp keeps no partner-level webhook setting: the endpoint goes with every call.
        fields["webhook_endpoint"] = tenant.webhookURL
        let body = try? JSONSerialization.data(withJSONObject: fields)
        switch await http.send(.POST, configuration.baseURL() + "/external_login", headers: partnerHeaders, json: body) {
        case .failure(let failure):
            return .failure(.transport(failure))
        case .success(let response):
            if let failure = WrappFailure.classify(response, allowNotFound: false) { return .failure(failure) }
            guard let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
                let url = object["login_url"] as? String, url.hasPrefix("http")
            else { return .failure(.malformed(status: response.status)) }
            return .success(url)
        }
    }
}

// MARK: - Credentials ready to use

extension WrappAdapter: CredentialBroker {
    /// A JWT from `/login` with the stored key; the Invoice API takes it as `Authorization: Bearer`.
    public func accessToken(with credentials: ProviderCredentials) async -> TokenAnswer {
        guard let typed = WrappCredentials(credentials) else { return .refused(reason: "not Wrapp credentials") }
        return await jwtLogin(["api_key": typed.apiKey, "wrapp_user_id": typed.wrappUserID]).answer
    }

    public var tokenUse: [String: String] { ["Authorization": "Bearer {token}"] }
    public var tokensNeedLogin: Bool { true }

    /// The Invoice API lives under the same base as the Partners API; calls carry the JWT, never the partner key.
    public func proxyTarget(for credentials: ProviderCredentials, token: IssuedToken?) -> ProxyTarget? {
        guard let token else { return nil }
        return ProxyTarget(
            baseURL: configuration.baseURL(), headers: [("Authorization", "Bearer \(token.token)")],
            credentialHeaders: ["authorization", "x-partner-api-key"]
        )
    }

    /// `embedded_check_user` for the customer's standing (as `check`), then `/login` with the stored key (only its
    /// explicit refusal is a refusal), then `/tenant_details` with the JWT: it must name this customer, and says
    /// whether they may invoice, their plan and next payment. Three requests a day per active tenant.
    public func checkCredentials(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> ProviderAnswer {
        var answer = await check(tenant)
        guard let typed = WrappCredentials(credentials) else {
            answer.verdict = .refused(reason: "not Wrapp credentials", nextAction: NextAction(type: .provideCredentials))
            return answer
        }
        let jwt: String
        switch await jwtLogin(["api_key": typed.apiKey, "wrapp_user_id": typed.wrappUserID]).answer {
        case .refused(let reason):
            // `/login` carries our partner key too: when Wrapp just refused the partner's own calls, its 401 is about
            // that key, not the customer's, and must not suspend every tenant.
            if case .unavailable = answer.finding {
                answer.verdict = .unknown(reason: "Wrapp refused /login while the partner's own calls were failing: \(reason)")
                return answer
            }
            answer.verdict = .refused(reason: "Wrapp /login refused the stored key", nextAction: NextAction(type: .provideCredentials))
            return answer
        case .unavailable(let reason, _):
            answer.verdict = .unknown(reason: reason)
            return answer
        case .issued(let token):
            jwt = token.token
            answer.issuedToken = token
        }
        switch await tenantDetails(jwt: jwt) {
        case .success(let object):
            if let named = object["partner_user_id"] as? String, !named.isEmpty, named != tenant.externalID {
                // The key was bound to this customer when it was kept; an answer naming someone else is odd, not
                // Wrapp's refusal of the key (the binding through tenant_details is inferred, not documented).
                answer.verdict = .unknown(reason: "Wrapp /tenant_details names another partner_user_id")
                return answer
            }
            answer.verdict = .working
            answer.details = Self.details(from: object, readAt: Date())
        case .failure(let reason):
            // The key logged in: it works, whatever the details read said.
            answer.verdict = .working
            answer.diagnostic = reason.description
        }
        return answer
    }

    /// `GET /tenant_details` with the JWT: the object, or why it could not be read.
    func tenantDetails(jwt: String) async -> Result<[String: Any], TenantDetailsFailure> {
        switch await http.send(.GET, configuration.baseURL() + "/tenant_details", headers: [("Authorization", "Bearer \(jwt)")]) {
        case .failure(let failure):
            return .failure(TenantDetailsFailure(WrappFailure.transport(failure).reason))
        case .success(let response):
            guard response.status == 200, !response.isHTML, let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
                return .failure(TenantDetailsFailure("Wrapp /tenant_details answered \(response.status) with \(ErrorBody(response).shape)"))
            }
            // Some answers wrap it as JSON:API (`data.attributes`).
            if let data = object["data"] as? [String: Any], let attributes = data["attributes"] as? [String: Any] { return .success(attributes) }
            return .success(object)
        }
    }

    struct TenantDetailsFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// What `tenant_details` says that a partner can act on, each value checked: booleans as booleans, the plan's name
    /// as short text, the next payment's date as `YYYY-MM-DD` and its amount as a decimal number's text.
    public static func details(from object: [String: Any], readAt: Date) -> ProviderDetails {
        var values: [String: ProviderDetails.Value] = [:]
        for key in ["issue_invoice_status", "has_plan"] {
            if let flag = object[key] as? Bool { values[key] = .bool(flag) }
        }
        if let name = object["plan_name"] as? String, !name.isEmpty {
            values["plan_name"] = .string(String(name.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(100).map(Character.init)))
        }
        if let date = object["next_payment_date"] as? String, let day = Self.day(date) {
            values["next_payment_date"] = .string(day)
        }
        let amount = (object["next_payment_amount"] as? String) ?? (object["next_payment_amount"] as? NSNumber).map { "\($0)" }
        if let amount, amount.utf8.count <= 20, let number = Double(amount), number.isFinite, number >= 0,
           amount.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
            values["next_payment_amount"] = .string(amount)
        }
        return ProviderDetails(values: values, readAt: readAt)
    }

    /// `2027-01-15` (or the day of `2027-01-15T…`), when it is a real calendar day.
    static func day(_ text: String) -> String? {
        let day = String(text.prefix(10))
        guard text.utf8.count <= 40, day.utf8.count == 10 else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        guard let date = formatter.date(from: day), formatter.string(from: date) == day else { return nil }
        return day
    }
}

/// How a Wrapp call went wrong, and what that means for the tenant.
enum WrappFailure: Error {
    case transport(TransportFailure)
    case malformed(status: Int)
    case unavailable(status: Int, body: ErrorBody, retryAfter: TimeInterval?)
    case rejected(status: Int, items: [ErrorBody.Item])

    /// nil when the response is a success (2xx, or a 404 where that means "unknown user").
    static func classify(_ response: ProviderResponse, allowNotFound: Bool) -> WrappFailure? {
        switch response.status {
        case 200..<300 where !response.isHTML:
            return nil
        case 404 where allowNotFound:
            return nil
        case 400 where !response.isHTML, 409 where !response.isHTML, 422 where !response.isHTML:
            return .rejected(status: response.status, items: ErrorBody(response).items)
        default:
            // 401/403 (our partner key), 429, 5xx — including the 500 Wrapp gives for bad company data — and HTML
            // pages are not the customer's fault: wait and try again.
            return .unavailable(status: response.status, body: ErrorBody(response), retryAfter: response.retryAfter())
        }
    }

    var reason: String {
        switch self {
        case .transport(.timedOut): "Wrapp did not answer in time"
        case .transport(.unreachable): "Wrapp could not be reached"
        case .malformed(let status): "Wrapp answered \(status) with an unexpected body"
        case .unavailable(let status, let body, _): "Wrapp answered \(status) with \(body.shape)"
        case .rejected(let status, _): "Wrapp refused the data (\(status))"
        }
    }

    /// For the log only.
    var diagnostic: String? {
        switch self {
        case .transport(.unreachable(let detail)): detail
        case .unavailable(_, let body, _): body.summary
        case .rejected(_, let items): items.map { "\($0.field ?? "-"): \($0.message)" }.joined(separator: "; ")
        case .transport(.timedOut), .malformed: nil
        }
    }

    var answer: ProviderAnswer { ProviderAnswer(finding, diagnostic: diagnostic) }

    var retryAfter: TimeInterval? {
        if case .unavailable(_, _, let retryAfter) = self { return retryAfter }
        return nil
    }

    /// A failure that may pass if the same read is made again at once: not a refusal, a `429` or a `Retry-After`.
    var mayRepeatAtOnce: Bool {
        switch self {
        case .transport, .malformed: true
        case .unavailable(let status, _, let retryAfter): status != 429 && retryAfter == nil
        case .rejected: false
        }
    }

    var finding: Finding {
        switch self {
        case .unavailable(_, _, let retryAfter):
            return .unavailable(reason: reason, retryAfter: retryAfter)
        case .rejected(_, let items):
            let errors = items.isEmpty
                ? [FieldError(field: "profile", code: "rejected", message: "Wrapp refused the customer's details.")]
                : items.map { item in
                    FieldError(
                        field: item.field.map { WrappAdapter.fieldNames[$0] ?? "profile.\($0)" } ?? "profile",
                        code: "rejected", message: "Wrapp refused this value."
                    )
                }
            return .rejected(TenantError(code: "provider_rejected", message: "Wrapp refused the customer's details.", errors: errors, at: Date()), providerStatus: "rejected")
        case .transport, .malformed:
            return .unavailable(reason: reason, retryAfter: nil)
        }
    }
}
