import Foundation

/// What the partner app needs to act for the tenant at its provider. Stored only encrypted.
public enum ProviderCredentials: Sendable, Equatable {
    case wrapp(wrappUserID: String, apiKey: String)
    case magnifinance(accessTokens: [MagniFinanceAccessToken])

    public var provider: ProviderKind {
        switch self {
        case .wrapp: .wrapp
        case .magnifinance: .magnifinance
        }
    }
}

/// One MagniFinance partner access token; a partner may hold several.
public struct MagniFinanceAccessToken: Codable, Sendable, Equatable {
    public var token: String
    public var description: String?

    public init(token: String, description: String?) {
        self.token = token
        self.description = description
    }
}

extension ProviderCredentials: Codable {
    enum CodingKeys: String, CodingKey {
        case provider
        case wrappUserID = "wrapp_user_id"
        case apiKey = "api_key"
        case accessTokens = "access_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(ProviderKind.self, forKey: .provider) {
        case .wrapp:
            self = .wrapp(
                wrappUserID: try container.decode(String.self, forKey: .wrappUserID),
                apiKey: try container.decode(String.self, forKey: .apiKey)
            )
        case .magnifinance:
            self = .magnifinance(accessTokens: try container.decode([MagniFinanceAccessToken].self, forKey: .accessTokens))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(provider, forKey: .provider)
        switch self {
        case .wrapp(let userID, let apiKey):
            try container.encode(userID, forKey: .wrappUserID)
            try container.encode(apiKey, forKey: .apiKey)
        case .magnifinance(let tokens):
            try container.encode(tokens, forKey: .accessTokens)
        }
    }
}
