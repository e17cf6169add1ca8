import Foundation
import GatewayCore
import Hummingbird

/// Reads a JSON object body strictly: a size limit, an object at the top, no unknown fields, and every type
/// problem reported with its dotted field name, all at once.
struct JSONBody {
    static let defaultLimit = 1 << 20

    static func read(_ request: Request, limit: Int = defaultLimit) async throws -> [String: Any] {
        if let type = request.headers[.contentType], !type.lowercased().contains("json") {
            throw Problem(.unsupportedMediaType, code: "unsupported_media_type", detail: "Send the body as application/json.")
        }
        var request = request
        let buffer = try await request.collectBody(upTo: limit)
        guard buffer.readableBytes > 0 else {
            throw Problem(.badRequest, code: "malformed_json", detail: "The request needs a JSON object body.")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed]) as? [String: Any] else {
            throw Problem(.badRequest, code: "malformed_json", detail: "The body is not a JSON object.")
        }
        return object
    }

    /// The same object, as JSON values the core and the provider modules read.
    static func values(_ object: [String: Any]) throws -> [String: JSONValue] {
        guard let data = try? JSONSerialization.data(withJSONObject: object),
            case .object(let values) = try JSONDecoder().decode(JSONValue.self, from: data)
        else { throw Problem(.badRequest, code: "malformed_json", detail: "The body is not a JSON object.") }
        return values
    }
}

/// Typed access to one JSON object, collecting field errors into a shared list.
final class FieldReader {
    let object: [String: Any]
    let prefix: String
    private let sink: ErrorSink

    final class ErrorSink {
        var errors: [FieldError] = []
    }

    init(_ object: [String: Any], prefix: String = "", sink: ErrorSink = ErrorSink()) {
        self.object = object
        self.prefix = prefix
        self.sink = sink
    }

    var errors: [FieldError] { sink.errors }

    func path(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix).\(key)" }

    func fail(_ key: String, _ code: String, _ message: String) {
        sink.errors.append(FieldError(field: path(key), code: code, message: message))
    }

    /// Refuses fields the endpoint does not know, so a typo is not silently ignored.
    func allowOnly(_ keys: Set<String>) {
        for key in object.keys.sorted() where !keys.contains(key) {
            fail(key, "unknown_field", "This field is not accepted here.")
        }
    }

    func string(_ key: String, required: Bool = false) -> String? {
        switch object[key] {
        case nil, is NSNull:
            if required { fail(key, "required", "This field is required.") }
            return nil
        case let value as String:
            return value.trimmingCharacters(in: .whitespacesAndNewlines)
        default:
            fail(key, "invalid_type", "Must be a string.")
            return nil
        }
    }

    func object(_ key: String, required: Bool = false) -> FieldReader? {
        switch object[key] {
        case nil, is NSNull:
            if required { fail(key, "required", "This field is required.") }
            return nil
        case let value as [String: Any]:
            return FieldReader(value, prefix: path(key), sink: sink)
        default:
            fail(key, "invalid_type", "Must be an object.")
            return nil
        }
    }

    /// A whole number in `range`; `true`/`false` and fractions are not numbers here.
    func integer(_ key: String, in range: ClosedRange<Int>, required: Bool = false) -> Int? {
        switch object[key] {
        case nil, is NSNull:
            if required { fail(key, "required", "This field is required.") }
            return nil
        case let number as NSNumber where !Self.isBoolean(number):
            guard let value = Int(exactly: number.doubleValue), range.contains(value) else {
                fail(key, "out_of_range", "A whole number from \(range.lowerBound) to \(range.upperBound).")
                return nil
            }
            return value
        default:
            fail(key, "invalid_type", "Must be a whole number.")
            return nil
        }
    }

    func boolean(_ key: String, required: Bool = false) -> Bool? {
        switch object[key] {
        case nil, is NSNull:
            if required { fail(key, "required", "This field is required.") }
            return nil
        case let number as NSNumber where Self.isBoolean(number):
            return number.boolValue
        default:
            fail(key, "invalid_type", "Must be true or false.")
            return nil
        }
    }

    /// JSON `true`/`false` arrive as NSNumbers of type `c`; numbers never do.
    static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    func stringMap(_ key: String) -> [String: String]? {
        switch object[key] {
        case nil, is NSNull:
            return nil
        case let value as [String: Any]:
            var map: [String: String] = [:]
            for (name, entry) in value {
                if let text = entry as? String { map[name] = text } else { fail("\(key).\(name)", "invalid_type", "Values must be strings.") }
            }
            return map
        default:
            fail(key, "invalid_type", "Must be an object of strings.")
            return nil
        }
    }

    func throwIfInvalid() throws {
        if !errors.isEmpty { throw Problem.validation(errors) }
    }
}

extension Profile {
    /// Reads `profile` as the contract names its fields.
    static func read(_ reader: FieldReader) -> Profile {
        reader.allowOnly(["email", "phone", "contact_name", "company"])
        var company: Company?
        if let companyReader = reader.object("company") {
            companyReader.allowOnly(["tax_id", "legal_name", "address", "city", "post_code", "country"])
            company = Company(
                taxID: companyReader.string("tax_id"), legalName: companyReader.string("legal_name"),
                address: companyReader.string("address"), city: companyReader.string("city"),
                postCode: companyReader.string("post_code"), country: companyReader.string("country")
            )
        }
        return Profile(email: reader.string("email"), phone: reader.string("phone"), contactName: reader.string("contact_name"), company: company)
    }
}
