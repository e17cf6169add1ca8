import Foundation
import GatewayCore

/// A small JSON Schema check for the modules' OpenAPI fragments: the keywords they use (`type`, `required`,
/// `properties`, `additionalProperties: false`, `const`, `enum`, `minLength`, `maxLength`, `items`, and `$ref` to
/// `#/components/schemas/…`). An unknown keyword is itself a failure, so a fragment cannot say more than is checked.
public struct SchemaCheck: Sendable {
    public let schemas: [String: JSONValue]

    public init(schemas: [String: JSONValue]) {
        self.schemas = schemas
    }

    static let known: Set<String> = [
        "type", "required", "properties", "additionalProperties", "const", "enum", "minLength", "maxLength", "items", "$ref", "description",
    ]

    /// Every way `value` breaks `schema`, by JSON path; empty when it matches.
    public func problems(_ value: JSONValue, against schema: JSONValue, at path: String = "$") -> [String] {
        guard case .object(let rules) = schema else { return ["\(path): the schema is not an object"] }
        var problems: [String] = []
        for key in rules.keys.sorted() where !Self.known.contains(key) { problems.append("\(path): unknown keyword \(key)") }
        if case .string(let ref)? = rules["$ref"] {
            let name = ref.replacingOccurrences(of: "#/components/schemas/", with: "")
            guard let target = schemas[name] else { return problems + ["\(path): $ref to \(ref), which the module does not define"] }
            return problems + self.problems(value, against: target, at: path)
        }
        if let type = rules["type"] {
            let types: [String] = switch type {
            case .string(let one): [one]
            case .array(let many): many.compactMap(\.stringValue)
            default: []
            }
            if !types.contains(where: { Self.matches(value, type: $0) }) { problems.append("\(path): not of type \(types.joined(separator: " or "))") }
        }
        if let constant = rules["const"], constant != value { problems.append("\(path): not the constant the schema names") }
        if case .array(let allowed)? = rules["enum"], !allowed.contains(value) { problems.append("\(path): not one of the schema's values") }
        if case .string(let text) = value {
            if case .number(let max)? = rules["maxLength"], Double(text.lengthForLimits) > max { problems.append("\(path): longer than \(Int(max))") }
            if case .number(let min)? = rules["minLength"], Double(text.lengthForLimits) < min { problems.append("\(path): shorter than \(Int(min))") }
        }
        if case .object(let object) = value {
            if case .array(let required)? = rules["required"] {
                for name in required.compactMap(\.stringValue) where object[name] == nil { problems.append("\(path).\(name): required") }
            }
            let properties: [String: JSONValue] = if case .object(let p)? = rules["properties"] { p } else { [:] }
            for (name, item) in object.sorted(by: { $0.key < $1.key }) {
                if let rule = properties[name] {
                    problems += self.problems(item, against: rule, at: "\(path).\(name)")
                } else if rules["additionalProperties"] == .bool(false) {
                    problems.append("\(path).\(name): not allowed")
                }
            }
        }
        if case .array(let items) = value, let rule = rules["items"] {
            for (index, item) in items.enumerated() { problems += self.problems(item, against: rule, at: "\(path)[\(index)]") }
        }
        return problems
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("object", .object), ("array", .array), ("boolean", .bool), ("null", .null), ("number", .number): true
        case ("integer", .number(let number)): number == number.rounded()
        default: false
        }
    }
}
