import Foundation
import GatewayCore

/// One sandbox test helper of a module, mounted by the server at `/sandbox/test-helpers/<id>/<path>`. It acts on the
/// module's simulator as the customer or the provider would, never on the gateway's records.
public struct SandboxHelper: Sendable {
    public enum Method: String, Sendable {
        case get = "GET", post = "POST", put = "PUT", delete = "DELETE"
    }

    public var method: Method
    /// Relative, with `{name}` parameters: `customers/{partner_user_id}/complete-login`.
    public var path: String
    /// A JSON object body is required (read as every body is: `application/json`, at most 4 KiB); other helpers
    /// read none.
    public var takesBody: Bool
    public var handle: @Sendable (SandboxHelperRequest) async -> SandboxHelperAnswer

    public init(
        _ method: Method, _ path: String, takesBody: Bool = false, handle: @escaping @Sendable (SandboxHelperRequest) async -> SandboxHelperAnswer
    ) {
        self.method = method
        self.path = path
        self.takesBody = takesBody
        self.handle = handle
    }

    /// The parameter names of `path`, in order.
    public var parameterNames: [String] {
        path.split(separator: "/").compactMap { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? String(part.dropFirst().dropLast()) : nil
        }
    }
}

/// What a helper is asked: its path parameters and, where it takes one, its JSON object body.
public struct SandboxHelperRequest: Sendable {
    public var parameters: [String: String]
    public var body: JSONValue?

    public init(parameters: [String: String], body: JSONValue?) {
        self.parameters = parameters
        self.body = body
    }

    public subscript(_ name: String) -> String { parameters[name] ?? "" }
}

/// A helper's answer: `200` with a JSON body, or a refusal the server turns into `problem+json`.
public enum SandboxHelperAnswer: Sendable {
    case ok(JSONValue)
    case refused(status: Int, code: String, detail: String, errors: [FieldError])

    /// `200` with a module's `Encodable` answer.
    public static func encoding(_ value: some Encodable) -> SandboxHelperAnswer {
        guard let data = try? JSONEncoder().encode(value), let json = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            return .refused(status: 500, code: "internal_error", detail: "The helper's answer could not be encoded.", errors: [])
        }
        return .ok(json)
    }

    public static func notFound(_ detail: String) -> SandboxHelperAnswer {
        .refused(status: 404, code: "not_found", detail: detail, errors: [])
    }

    public static func conflict(_ detail: String) -> SandboxHelperAnswer {
        .refused(status: 409, code: "invalid_state", detail: detail, errors: [])
    }

    public static func invalid(_ errors: [FieldError]) -> SandboxHelperAnswer {
        .refused(status: 422, code: "validation_failed", detail: "The request has \(errors.count) invalid field(s).", errors: errors)
    }
}
