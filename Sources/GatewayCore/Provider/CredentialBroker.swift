import Foundation

/// A short-lived token the provider gave for a customer's credentials (Wrapp: a JWT from `/login`), or the token the
/// provider takes as it is (MagniFinance: the partner's access token, with no expiry). Sealed when stored.
public struct IssuedToken: Sendable, Equatable, Codable {
    public var token: String
    /// When the provider stops taking it; nil when it does not expire.
    public var expiresAt: Date?
    /// When the gateway received it (its own clock).
    public var issuedAt: Date?

    public init(token: String, expiresAt: Date?, issuedAt: Date? = nil) {
        self.token = token
        self.expiresAt = expiresAt
        self.issuedAt = issuedAt
    }

    /// Whether it can be handed out at `now` with more than `margin` seconds of its life left. A token whose whole
    /// life is shorter than twice the margin is kept for half its life instead, so a short-lived token (or a margin
    /// set too wide) never makes every request log in again.
    public func usable(at now: Date, margin: TimeInterval) -> Bool {
        guard let expiresAt else { return true }
        var margin = margin
        if let issuedAt { margin = min(margin, max(0, expiresAt.timeIntervalSince(issuedAt)) / 2) }
        return expiresAt.timeIntervalSince(now) > margin
    }
}

extension IssuedToken: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "IssuedToken(token: ***, expiresAt: \(expiresAt.map { "\($0)" } ?? "nil"))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["token": "***", "expiresAt": expiresAt as Any]) }
}

/// How a provider answered a request for a token.
public enum TokenAnswer: Sendable, Equatable {
    case issued(IssuedToken)
    /// The provider refused the stored credentials explicitly (`401`/`403`, "Not valid user").
    case refused(reason: String)
    case unavailable(reason: String, retryAfter: TimeInterval?)
}

/// Where the provider proxy may send a tenant's calls, and what it adds to each: the credentials, as headers or
/// query parameters. Whatever the caller sent under those names is removed first.
public struct ProxyTarget: Sendable {
    /// The provider API's base URL: every proxied path is appended under it, and nothing else is reachable.
    public var baseURL: String
    public var headers: [(name: String, value: String)]
    public var query: [(name: String, value: String)]
    /// Header names (lower case) that carry this provider's credentials: dropped from the caller's request, and from
    /// the provider's answer.
    public var credentialHeaders: Set<String>
    /// Query parameter names that carry credentials: dropped from the caller's query.
    public var credentialQuery: Set<String>
    /// The host is named after the customer's account (`{account}.app.invoicexpress.com`): traces show the rest only.
    public var hostNamesCustomer = false

    public init(
        baseURL: String, headers: [(name: String, value: String)] = [], query: [(name: String, value: String)] = [],
        credentialHeaders: Set<String> = [], credentialQuery: Set<String> = []
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.headers = headers
        self.query = query
        self.credentialHeaders = Set(credentialHeaders.map { $0.lowercased() })
        self.credentialQuery = credentialQuery
    }
}

/// What a credential health check found: only an explicit refusal counts against the credentials.
public enum CredentialVerdict: Sendable, Equatable {
    case working
    /// The provider refused the credentials; `nextAction` is what the customer does about it.
    case refused(reason: String, nextAction: NextAction?)
    /// Nothing could be learnt (a timeout, a 5xx, a page that cannot be read): nothing changes.
    case unknown(reason: String)

    public var result: String {
        switch self {
        case .working: "working"
        case .refused: "refused"
        case .unknown: "unknown"
        }
    }
}

/// The last credential health check of a tenant, for the console and the admin API (not the partner's tenant).
public struct CredentialCheckRecord: Sendable, Equatable, Codable {
    /// `working`, `refused` or `unknown`.
    public var result: String
    public var at: Date
    /// Our own words (never the provider's text): why it was refused or unknown.
    public var reason: String?

    public init(result: String, at: Date, reason: String?) {
        self.result = result
        self.at = at
        self.reason = reason.map { String($0.prefix(200)) }
    }

    public init(_ verdict: CredentialVerdict, at: Date) {
        switch verdict {
        case .working: self.init(result: "working", at: at, reason: nil)
        case .refused(let reason, _): self.init(result: "refused", at: at, reason: reason)
        case .unknown(let reason): self.init(result: "unknown", at: at, reason: reason)
        }
    }
}

/// What the provider reports about a ready customer beyond "ready" (Wrapp: invoicing allowed, plan, next payment), as
/// the tenant's `provider_details`. Values are short strings or booleans, bounded by the adapter that reads them.
public struct ProviderDetails: Sendable, Equatable, Codable {
    public enum Value: Sendable, Equatable, Codable {
        case string(String)
        case bool(Bool)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let flag = try? container.decode(Bool.self) { self = .bool(flag) } else { self = .string(try container.decode(String.self)) }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let text): try container.encode(text)
            case .bool(let flag): try container.encode(flag)
            }
        }
    }

    /// The most fields kept, and the longest value: a provider's answer is outside data.
    public static let maxFields = 16
    public static let maxValueLength = 200

    public var values: [String: Value]
    public var readAt: Date

    public init(values: [String: Value], readAt: Date) {
        var kept: [String: Value] = [:]
        for key in values.keys.sorted().prefix(Self.maxFields) where key != "read_at" && !key.isEmpty && key.count <= 64 {
            switch values[key] {
            case .string(let text)?: kept[key] = .string(String(text.prefix(Self.maxValueLength)))
            case let value?: kept[key] = value
            case nil: break
            }
        }
        self.values = kept
        self.readAt = readAt
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// `{"plan_name": "Pro", …, "read_at": "…"}`: the values beside the time they were read.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (key, value) in values { try container.encode(value, forKey: Key(stringValue: key)) }
        try container.encode(readAt, forKey: Key(stringValue: "read_at"))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        var values: [String: Value] = [:]
        var readAt = Date(timeIntervalSince1970: 0)
        for key in container.allKeys {
            if key.stringValue == "read_at" {
                readAt = try container.decode(Date.self, forKey: key)
            } else if let value = try? container.decode(Value.self, forKey: key) {
                values[key.stringValue] = value
            }
        }
        self.init(values: values, readAt: readAt)
    }
}

/// An adapter whose provider takes calls with the customer's credentials: it hands out tokens, says where the proxy
/// may go, and checks that stored credentials still work. Which of these a provider does is its capabilities'
/// (`issuesAccessTokens`, `proxiesCalls`, `watchesCredentialHealth`).
public protocol CredentialBroker: Sendable {
    /// A token for the customer's credentials (a login, for a provider with short-lived tokens).
    func accessToken(with credentials: ProviderCredentials) async -> TokenAnswer

    /// How the partner presents the token: header name to value, `{token}` standing for the token.
    var tokenUse: [String: String] { get }

    /// Whether tokens come from a login with the credentials (kept, renewed, and carried by proxied calls); else
    /// `accessToken` reads them from the credentials, with no provider call, and proxied calls carry the credentials.
    var tokensNeedLogin: Bool { get }

    /// Where the proxy sends the tenant's calls and what it adds; nil when the credentials cannot be used so.
    func proxyTarget(for credentials: ProviderCredentials, token: IssuedToken?) -> ProxyTarget?

    /// Whether the stored credentials still work, with what the provider says of the customer now: the answer's
    /// `finding` as `check` gives it, its `verdict` about the credentials, and any `details`. Only an explicit refusal
    /// is `refused`.
    func checkCredentials(_ credentials: ProviderCredentials, for tenant: ProviderTenant) async -> ProviderAnswer
}

extension CredentialBroker {
    public func accessToken(with credentials: ProviderCredentials) async -> TokenAnswer {
        .refused(reason: "this provider hands out no tokens")
    }

    public var tokenUse: [String: String] { [:] }
    public var tokensNeedLogin: Bool { false }
}

extension OnboardingProvider {
    /// The adapter as a `CredentialBroker`, when it is one.
    public var broker: (any CredentialBroker)? { self as? any CredentialBroker }
}
