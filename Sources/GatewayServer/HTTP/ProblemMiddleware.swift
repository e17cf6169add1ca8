import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Gives every request an id (`X-Request-ID`, taken from the request when it is sane) and turns every error into a
/// problem+json response, so nothing ever falls through to an empty 500.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let allowedMethods: AllowedMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let incoming = request.headers[.requestID]
        context.requestID = incoming.flatMap { $0.count <= 128 && $0.allSatisfy { $0.isASCII && !$0.isWhitespace } ? $0 : nil }
            ?? UUID().uuidString.lowercased()
        context.logger[metadataKey: "request.id"] = .string(context.requestID)

        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            // The router found no route: a known path asked with another method is a 405.
            let allowed = allowedMethods.methods(for: request.uri.path)
            if !allowed.isEmpty, !allowed.contains(request.method.rawValue) {
                let list = allowed.union(allowed.contains("GET") ? ["HEAD"] : []).sorted().joined(separator: ", ")
                response = Problem(
                    .methodNotAllowed, code: "method_not_allowed", detail: "This path accepts \(list).", headers: [.allow: list]
                ).response(requestID: context.requestID)
            } else {
                response = Self.problem(for: error, context: context).response(requestID: context.requestID)
            }
        } catch {
            response = Self.problem(for: error, context: context).response(requestID: context.requestID)
        }
        response.headers[.requestID] = context.requestID
        return response
    }

    static func problem(for error: any Error, context: Context) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as OnboardingError:
            if case .storageFailure = error { context.logger.error("request failed", metadata: ["error.code": "\(error.code)"]) }
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
