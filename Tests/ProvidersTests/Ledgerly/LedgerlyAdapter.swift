import Foundation
import GatewayCore
import NIOHTTP1
import Providers

/// Ledgerly's partner API as findings. `POST /signups` is not idempotent: after an attempt whose outcome was lost,
/// the signup is looked up by the partner's reference before anything is posted again.
struct LedgerlyAdapter: OnboardingProvider, WebhookInterpreting {
    let kind = ProviderKind.ledgerly
    let baseURL: @Sendable () -> String
    let partnerKey: String
    let http: ProviderHTTPClient
    var flaws: Set<Flaw> = []

    /// Defects the conformance kit must catch.
    enum Flaw: Sendable, Hashable {
        /// Posts again after a lost outcome instead of looking the signup up first.
        case noReconcile
        /// Takes a 429 for a refusal.
        case throttleIsRefusal
    }

    var partnerHeaders: [(String, String)] { [("X-Ledgerly-Partner", partnerKey)] }

    /// What stays as it is in one path segment (RFC 3986 unreserved).
    static let segment = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))

    func submit(_ tenant: ProviderTenant, previousAttempts: Int) async -> ProviderAnswer {
        if previousAttempts > 0, !flaws.contains(.noReconcile) {
            switch await signup(tenant.externalID) {
            case .found(let answer): return answer
            case .failed(let answer): return answer
            case .absent: break
            }
        }
        let body = try? JSONSerialization.data(withJSONObject: [
            "reference": tenant.externalID, "email": tenant.profile.email ?? "", "callback_url": tenant.webhookURL ?? "",
        ])
        switch await http.send(.POST, baseURL() + "/signups", headers: partnerHeaders, json: body) {
        case .failure(let failure):
            return Self.unavailable(failure)
        case .success(let response):
            switch response.status {
            case 201:
                return Self.invited(response) ?? Self.malformed(response)
            case 409 where !flaws.contains(.noReconcile):
                // Our reference is taken: an earlier attempt of ours went through. Its signup is the answer.
                switch await signup(tenant.externalID) {
                case .found(let answer), .failed(let answer): return answer
                case .absent: return ProviderAnswer(.unavailable(reason: "Ledgerly says the reference is taken but has no signup for it", retryAfter: nil))
                }
            case 422:
                return Self.refusal(response)
            case 429 where flaws.contains(.throttleIsRefusal):
                return ProviderAnswer(.rejected(TenantError(code: "provider_rejected", message: "refused", at: Date()), providerStatus: "rejected"))
            default:
                return Self.failure(response)
            }
        }
    }

    func check(_ tenant: ProviderTenant) async -> ProviderAnswer {
        switch await signup(tenant.externalID) {
        case .found(let answer), .failed(let answer): return answer
        case .absent: return ProviderAnswer(.waiting(providerStatus: "not_found"))
        }
    }

    func verify(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> CredentialCheck {
        guard let account = credentials.fields["account_id"]?.stringValue, let token = credentials.fields["api_token"]?.stringValue,
            let path = account.addingPercentEncoding(withAllowedCharacters: Self.segment)
        else { return .invalid(reason: "not Ledgerly credentials") }
        switch await http.send(.GET, baseURL() + "/accounts/\(path)", headers: [("Authorization", "Bearer \(token)")]) {
        case .failure(let failure):
            return .unavailable(reason: Self.unavailable(failure).diagnostic ?? "unreachable", retryAfter: nil)
        case .success(let response):
            switch response.status {
            case 200:
                // Valid, and bound to this customer: the account must be the one Ledgerly opened for our reference.
                let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
                guard let reference = object?["reference"] as? String else { return .unavailable(reason: "Ledgerly answered 200 with an unexpected body", retryAfter: nil) }
                return reference == tenant.externalID ? .valid : .invalid(reason: "the account is another customer's")
            case 401, 403: return .invalid(reason: "Ledgerly refused the token")
            case 404: return .customerUnknown
            default: return .unavailable(reason: "Ledgerly answered \(response.status)", retryAfter: response.retryAfter())
            }
        }
    }

    func onboardingURL(for tenant: ProviderTenant) async -> OnboardingURL {
        switch await signup(tenant.externalID) {
        case .found(let answer):
            if case .actionRequired(let next, _) = answer.finding, let url = next.url { return .url(url) }
            return .unavailable(reason: "the customer has nothing left to open")
        case .failed(let answer): return .unavailable(reason: answer.diagnostic ?? "Ledgerly is unavailable")
        case .absent: return .unavailable(reason: "no signup yet")
        }
    }

    func interpretWebhook(_ body: Data) -> WebhookNotice? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let reference = object["reference"] as? String,
            !reference.isEmpty
        else { return nil }
        var credentials: ProviderCredentials?
        if let account = object["account_id"] as? String, let token = object["api_token"] as? String {
            credentials = ProviderCredentials(provider: .ledgerly, fields: ["account_id": .string(account), "api_token": .string(token)])
        }
        return WebhookNotice(externalID: reference, credentials: credentials)
    }

    // MARK: - Calls

    enum Lookup {
        case found(ProviderAnswer)
        case failed(ProviderAnswer)
        case absent
    }

    func signup(_ reference: String) async -> Lookup {
        guard let path = reference.addingPercentEncoding(withAllowedCharacters: Self.segment) else { return .absent }
        switch await http.send(.GET, baseURL() + "/signups/\(path)", headers: partnerHeaders) {
        case .failure(let failure):
            return .failed(Self.unavailable(failure))
        case .success(let response):
            if response.status == 404 { return .absent }
            guard response.status == 200 else { return .failed(Self.failure(response)) }
            guard let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any], let status = object["status"] as? String else {
                return .failed(Self.malformed(response))
            }
            if status == "active" { return .found(ProviderAnswer(.ready(providerStatus: "active"))) }
            return .found(Self.invited(response) ?? Self.malformed(response))
        }
    }

    static func invited(_ response: ProviderResponse) -> ProviderAnswer? {
        guard let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any], let url = object["url"] as? String,
            url.hasPrefix("http")
        else { return nil }
        return ProviderAnswer(.actionRequired(NextAction(type: .redirectToURL, url: url), providerStatus: "invited"))
    }

    /// A field Ledgerly refuses, named as the partner sent it.
    static func refusal(_ response: ProviderResponse) -> ProviderAnswer {
        let names = ["email": "profile.email", "reference": "external_id"]
        let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        let errors = (object?["errors"] as? [[String: Any]] ?? []).prefix(20).map { item in
            FieldError(field: names[item["field"] as? String ?? ""] ?? "profile", code: "provider_rejected", message: "Ledgerly refused this value.")
        }
        guard !errors.isEmpty else { return failure(response) }
        return ProviderAnswer(.rejected(
            TenantError(code: "provider_rejected", message: "Ledgerly refused the customer's details.", errors: Array(errors), at: Date()),
            providerStatus: "rejected"
        ))
    }

    static func failure(_ response: ProviderResponse) -> ProviderAnswer {
        ProviderAnswer(.unavailable(reason: "Ledgerly answered \(response.status)", retryAfter: response.retryAfter()), diagnostic: "status \(response.status)")
    }

    static func malformed(_ response: ProviderResponse) -> ProviderAnswer {
        ProviderAnswer(.unavailable(reason: "Ledgerly answered \(response.status) with an unexpected body", retryAfter: nil))
    }

    static func unavailable(_ failure: TransportFailure) -> ProviderAnswer {
        switch failure {
        case .timedOut: ProviderAnswer(.unavailable(reason: "Ledgerly did not answer in time", retryAfter: nil), diagnostic: "timeout")
        case .unreachable(let detail): ProviderAnswer(.unavailable(reason: "Ledgerly could not be reached", retryAfter: nil), diagnostic: detail)
        }
    }
}
