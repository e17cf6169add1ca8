import Foundation
import GatewayCore

/// One MagniFinance partner access token; a partner may hold several.
public struct MagniFinanceAccessToken: Codable, Sendable, Equatable {
    public var token: String
    public var description: String?

    public init(token: String, description: String?) {
        self.token = token
        self.description = description
    }
}

/// The access tokens a MagniFinance company granted the partner.
public struct MagniFinanceCredentials: Codable, Sendable, Equatable {
    public var accessTokens: [MagniFinanceAccessToken]

    enum CodingKeys: String, CodingKey {
        case accessTokens = "access_tokens"
    }

    public init(accessTokens: [MagniFinanceAccessToken]) {
        self.accessTokens = accessTokens
    }

    /// MagniFinance's typed view of stored credentials; nil when they are another provider's or not this shape.
    public init?(_ credentials: ProviderCredentials) {
        guard credentials.provider == .magnifinance, let typed = try? credentials.decode(MagniFinanceCredentials.self) else { return nil }
        self = typed
    }

    public var credentials: ProviderCredentials {
        let tokens: [JSONValue] = accessTokens.map { token in
            var object: [String: JSONValue] = ["token": .string(token.token)]
            if let description = token.description { object["description"] = .string(description) }
            return .object(object)
        }
        return ProviderCredentials(provider: .magnifinance, fields: ["access_tokens": .array(tokens)])
    }
}

extension ProviderCredentials {
    /// MagniFinance credentials.
    public static func magnifinance(accessTokens: [MagniFinanceAccessToken]) -> ProviderCredentials {
        MagniFinanceCredentials(accessTokens: accessTokens).credentials
    }
}

/// Printed by mistake, the tokens never show (its `description` field is MagniFinance's label for the token).
extension MagniFinanceAccessToken: CustomDebugStringConvertible, CustomReflectable {
    public var debugDescription: String { "MagniFinanceAccessToken(values redacted)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension MagniFinanceCredentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "MagniFinanceCredentials(\(accessTokens.count) tokens, values redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
