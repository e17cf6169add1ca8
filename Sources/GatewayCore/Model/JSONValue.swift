import Foundation

/// Any JSON value: what the core keeps of a provider's credentials without knowing their shape (the module does).
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // Whole numbers as integers (`200`, never `200.0`), within the range a Double holds exactly.
            if value == value.rounded(), abs(value) <= 9_007_199_254_740_992 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// A string, or `null` when there is none.
    public init(_ text: String?) {
        self = text.map(JSONValue.string) ?? .null
    }

    /// A whole number, or `null` when there is none.
    public init(_ number: Int?) {
        self = number.map { .number(Double($0)) } ?? .null
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// Every string inside, depth first: what a scan for leaked secrets looks for.
    public var strings: [String] {
        switch self {
        case .string(let value): [value]
        case .array(let values): values.flatMap(\.strings)
        case .object(let values): values.keys.sorted().flatMap { values[$0]!.strings }
        case .null, .bool, .number: []
        }
    }
}
