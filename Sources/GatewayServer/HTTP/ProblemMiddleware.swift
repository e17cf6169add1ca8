import Foundation
import Glibc
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Turns every error into a problem+json response carrying the request's id (given by `RequestScopeMiddleware`), so
/// nothing ever falls through to an empty 500.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let allowedMethods: AllowedMethods
    /// Errors of the database that mean "cannot be reached or written now" (the stores classify their own).
    var isStorageOutage: @Sendable (any Error) -> Bool = { $0 is StorageUnavailable }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if context.requestID.isEmpty { context.requestID = RequestScopeMiddleware.requestID(for: request) }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = answer(error, request: request, context: context)
        }
        response.headers[.requestID] = context.requestID
        return response
    }

    /// The problem response for an error. Synchronous and not inlined: what it builds stays off the async frame that
    /// every request carries for as long as it runs.
    @inline(never)
    func answer(_ error: any Error, request: Request, context: Context) -> Response {
        if let error = error as? HTTPError, error.status == .notFound, error.body == nil {
            // The router found no route: a known path asked with another method is a 405.
            let allowed = allowedMethods.methods(for: request.uri.path)
            if !allowed.isEmpty, !allowed.contains(request.method.rawValue) {
                let list = allowed.union(allowed.contains("GET") ? ["HEAD"] : []).sorted().joined(separator: ", ")
                return Problem(
                    .methodNotAllowed, code: "method_not_allowed", detail: "This path accepts \(list).", headers: [.allow: list]
                ).response(requestID: context.requestID)
            }
            return Self.problem(for: error, context: context).response(requestID: context.requestID)
        }
        if isStorageOutage(error) {
            context.logger.error("request failed: storage unavailable", metadata: ["error.type": "\(String(describing: type(of: error)))"])
            return Problem(OnboardingError.storageFailure).response(requestID: context.requestID)
        }
        return Self.problem(for: error, context: context).response(requestID: context.requestID)
    }

    /// A random (version 4) UUID in lower case, made without Foundation's UUID and its string round trips.
    static func newRequestID() -> String {
        // One call for the 16 bytes (the standard generator makes a system call per 8).
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, 16) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func problem(for error: any Error, context: Context) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as OnboardingError:
            if error == .storageFailure || error == .internalFailure { context.logger.error("request failed", metadata: ["error.code": "\(error.code)"]) }
            return Problem(error)
        case is NIOTooManyBytesError:
            return Problem(.contentTooLarge, code: "payload_too_large", detail: "The request body is larger than this endpoint accepts.")
        case let error as HTTPError:
            let code = switch error.status {
            case .notFound: "not_found"
            case .methodNotAllowed: "method_not_allowed"
            case .contentTooLarge: "payload_too_large"
            case .badRequest: "bad_request"
            default: "http_\(error.status.code)"
            }
            return Problem(error.status, code: code, detail: error.body ?? error.status.reasonPhrase)
        default:
            context.logger.error("unexpected error", metadata: ["error.type": "\(String(describing: type(of: error)))"])
            return Problem(.internalServerError, code: "internal_error", detail: "Something went wrong on our side; the request id helps us find it.")
        }
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-ID")!
}
