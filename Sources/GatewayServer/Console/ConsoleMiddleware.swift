import Crypto
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore

/// What the console knows about a signed-in request.
struct ConsoleRequest: Sendable {
    /// The session's CSRF token, put in every form.
    var csrfToken: String
    /// The posted form (empty for GET).
    var form: [String: String]
}

/// Guards `/console`: no admin token configured, no console (404); the sign-in page and the stylesheet are open;
/// everything else needs a live session cookie (a GET without one goes to sign-in, anything else is refused), and
/// every POST needs the session's CSRF token. Every answer carries a strict CSP and is never framed or cached;
/// errors are answered as pages, not problem documents.
struct ConsoleMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    static let cookieName = "gw_console"
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        .cacheControl: "no-store",
    ]

    let enabled: Bool
    let sessions: ConsoleSessions
    let clock: any GatewayClock
    let open: Set<String> = ["/console/sign-in", "/console/assets/console.css"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard enabled else { throw HTTPError(.notFound) }
        var signedIn = false
        var response: Response
        do {
            response = try await guarded(request, context: context, signedIn: &signedIn, next: next)
        } catch {
            if Self.isUnexpected(error) {
                context.logger.error("console request failed", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            }
            response = Self.errorPage(error, signedIn: signedIn)
        }
        for field in Self.securityHeaders where response.headers[field.name] == nil {
            response.headers.append(field)
        }
        return response
    }

    private func guarded(
        _ request: Request, context: Context, signedIn: inout Bool, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var request = request
        var context = context
        let path = request.uri.path
        if open.contains(path) { return try await next(request, context) }
        guard let cookie = Self.cookie(in: request), let session = await sessions.session(for: cookie, now: clock.now()) else {
            if request.method == .get || request.method == .head {
                return Response(status: .seeOther, headers: [.location: "/console/sign-in"])
            }
            throw ConsoleRefusal(status: .forbidden, message: "You are not signed in (or your session ended). Sign in again.")
        }
        var form: [String: String] = [:]
        if request.method == .post {
            form = try await FormBody.read(&request)
            guard let presented = form["csrf"], constantTimeEqual(Data(presented.utf8), Data(session.csrfToken.utf8)) else {
                throw ConsoleRefusal(status: .forbidden, message: "This form did not come from your console session. Go back, reload the page and try again.")
            }
        }
        context.principal = .console
        context.console = ConsoleRequest(csrfToken: session.csrfToken, form: form)
        signedIn = true
        return try await next(request, context)
    }

    /// Errors a page explains by itself; anything else is also logged (by type: never the values it carries).
    static func isUnexpected(_ error: any Error) -> Bool {
        switch error {
        case is ConsoleRefusal, is Problem, is HTTPError, is NIOTooManyBytesError: false
        case let failure as OnboardingError: failure == .storageFailure || failure == .internalFailure
        default: true
        }
    }

    static func cookie(in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0] == cookieName, !parts[1].isEmpty { return parts[1] }
            }
        }
        return nil
    }

    static func errorPage(_ error: any Error, signedIn: Bool) -> Response {
        let status: HTTPResponse.Status
        let message: String
        var headers: HTTPFields = [:]
        switch error {
        case let refusal as ConsoleRefusal:
            status = refusal.status
            message = refusal.message
            headers = refusal.headers
        case let problem as Problem:
            status = problem.status
            message = ([problem.detail] + problem.errors.map { "\($0.field): \($0.message)" }).joined(separator: " ")
            headers = problem.headers
        case let failure as OnboardingError:
            let problem = Problem(failure)
            status = problem.status
            message = problem.detail
            headers = problem.headers
        case let http as HTTPError:
            status = http.status
            message = http.status == .notFound ? "There is nothing here." : "The request could not be handled."
        case is NIOTooManyBytesError:
            status = .contentTooLarge
            message = "The form is too large."
        default:
            status = .internalServerError
            message = "Something went wrong on our side; the log has the details."
        }
        let page = ConsoleLayout.page(
            title: status.reasonPhrase, csrf: nil, signedIn: signedIn,
            body: """
                <h1>\(status.reasonPhrase)</h1>
                <p class="notice error">\(message)</p>
                <p><a href="/console">Back to the overview</a></p>
                """
        )
        var response = ConsoleLayout.response(page, status: status)
        for field in headers { response.headers.append(field) }
        return response
    }
}

/// A console request refused with a page (not signed in, a missing CSRF token, too many sign-in attempts).
struct ConsoleRefusal: Error {
    var status: HTTPResponse.Status
    var message: String
    var headers: HTTPFields = [:]
}

/// An `application/x-www-form-urlencoded` body, at most 16 KiB.
enum FormBody {
    static func read(_ request: inout Request) async throws -> [String: String] {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/x-www-form-urlencoded") {
            throw ConsoleRefusal(status: .unsupportedMediaType, message: "Forms are sent as application/x-www-form-urlencoded.")
        }
        let buffer = try await request.collectBody(upTo: 16 * 1024)
        return parse(String(decoding: buffer.readableBytesView, as: UTF8.self))
    }

    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (part: Substring) in String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            guard let name = parts.first.map(decode), !name.isEmpty else { continue }
            let value = parts.count > 1 ? decode(parts[1]) : ""
            // A repeated field (checkboxes) keeps every value, comma-joined.
            fields[name] = fields[name].map { "\($0),\(value)" } ?? value
        }
        return fields
    }
}

/// The console's frame, applied by `EdgeMiddleware` outside its problem answers: every answer under `/console` — also
/// a 405 or 404 the router makes for a path or method the console does not have — carries the console's security
/// headers; and with no admin token configured, everything under `/console` is a plain 404, so nothing tells that a
/// console exists.
enum ConsoleFrame {
    static func isConsole(_ request: Request) -> Bool {
        let path = request.uri.path
        return path == "/console" || path.hasPrefix("/console/")
    }

    /// The console's security headers, where the page set none of its own.
    static func frame(_ response: inout Response) {
        for field in ConsoleMiddleware.securityHeaders where response.headers[field.name] == nil {
            response.headers.append(field)
        }
    }
}
