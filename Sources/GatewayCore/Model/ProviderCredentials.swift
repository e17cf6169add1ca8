import Foundation

/// What the partner app needs to act for the tenant at its provider: `{"provider": …, …fields}`. The core keeps the
/// fields as opaque JSON; the provider's module types them (its credentials codec) and its schema documents them.
/// Stored only sealed.
public struct ProviderCredentials: Sendable, Equatable {
    public var provider: ProviderKind
    /// Everything but `provider`.
    public var fields: [String: JSONValue]

    public init(provider: ProviderKind, fields: [String: JSONValue]) {
        self.provider = provider
        self.fields = fields.filter { $0.key != "provider" }
    }

    /// Typed credentials of a module, flattened beside `provider`.
    public init(provider: ProviderKind, encoding typed: some Encodable) throws {
        let data = try JSONEncoder().encode(typed)
        guard case .object(let fields) = try JSONDecoder().decode(JSONValue.self, from: data) else {
            // Never the value itself in the error: it holds secrets.
            throw EncodingError.invalidValue("(credentials)", .init(codingPath: [], debugDescription: "credentials encode as a JSON object"))
        }
        self.init(provider: provider, fields: fields)
    }

    /// The module's typed view of these credentials.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: JSONEncoder().encode(JSONValue.object(fields)))
    }

    /// Every secret-bearing string, for log scans and tests.
    public var strings: [String] { JSONValue.object(fields).strings }
}

extension ProviderCredentials: Codable {
    public init(from decoder: any Decoder) throws {
        guard case .object(var object) = try JSONValue(from: decoder), case .string(let name)? = object.removeValue(forKey: "provider"),
            let provider = ProviderKind(rawValue: name)
        else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "credentials need a provider id"))
        }
        self.init(provider: provider, fields: object)
    }

    public func encode(to encoder: any Encoder) throws {
        var object = fields
        object["provider"] = .string(provider.rawValue)
        try JSONValue.object(object).encode(to: encoder)
    }
}

/// Interpolated into a log line or an error by mistake, credentials show their provider and field names, never a value.
extension ProviderCredentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "ProviderCredentials(\(provider.rawValue): \(fields.keys.sorted().joined(separator: ", ")); values redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["provider": provider.rawValue], displayStyle: .struct) }
}
