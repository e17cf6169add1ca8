import Foundation
import GatewayCore

/// A Wrapp customer's credentials: the user id and the `api_key` that `/login` exchanges for a JWT.
public struct WrappCredentials: Codable, Sendable, Equatable {
    public var wrappUserID: String
    public var apiKey: String

    public init(wrappUserID: String, apiKey: String) {
        self.wrappUserID = wrappUserID
        self.apiKey = apiKey
    }

    enum CodingKeys: String, CodingKey {
        case wrappUserID = "wrapp_user_id"
        case apiKey = "api_key"
    }

    /// Wrapp's typed view of stored credentials; nil when they are another provider's or not this shape.
    public init?(_ credentials: ProviderCredentials) {
        guard credentials.provider == .wrapp, let typed = try? credentials.decode(WrappCredentials.self) else { return nil }
        self = typed
    }

    public var credentials: ProviderCredentials {
        ProviderCredentials(provider: .wrapp, fields: ["wrapp_user_id": .string(wrappUserID), "api_key": .string(apiKey)])
    }
}

extension ProviderCredentials {
    /// Wrapp credentials.
    public static func wrapp(wrappUserID: String, apiKey: String) -> ProviderCredentials {
        WrappCredentials(wrappUserID: wrappUserID, apiKey: apiKey).credentials
    }
}

/// Printed by mistake, the key never shows.
extension WrappCredentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "WrappCredentials(values redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
