import Foundation
import GatewayCore
import Hummingbird
import Logging

/// Outermost: gives the request its id (`X-Request-ID` when the caller sent a sane one) and its client address
/// (through trusted proxies only), runs everything inside `RequestScope` so every line logged on its behalf carries
/// the id, and writes one access log line when it is answered: method, route template, status, duration, client.
/// The path is logged as its route template (`/webhooks/wrapp/{token}`), never as sent: webhook tokens and
/// onboarding links are secrets, and ids in paths would make the lines unsearchable by route anyway.
struct RequestScopeMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let trusted: [CIDR]
    let accessLog: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = Self.requestID(for: request)
        ClientAddress.resolve(request, context: &context, trusted: trusted)
        context.logger[metadataKey: "request.id"] = .string(context.requestID)
        context.logger[metadataKey: "client.ip"] = .string(context.clientIP ?? "-")
        let started = ContinuousClock.now
        let scoped = context
        do {
            let response = try await RequestScope.$requestID.withValue(scoped.requestID) { try await next(request, scoped) }
            log(request, scoped, status: Int(response.status.code), since: started)
            return response
        } catch {
            // Errors become problem responses further in; one that escapes is answered 500 by the server.
            log(request, scoped, status: (error as? HTTPResponseError)?.status.code ?? 500, since: started)
            throw error
        }
    }

    private func log(_ request: Request, _ context: Context, status: Int, since started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        accessLog.info("request", metadata: [
            "request.id": .string(context.requestID), "http.method": .string(request.method.rawValue),
            "http.route": .string(context.endpointPath ?? Self.unmatched(request.uri.path)), "http.status": .stringConvertible(status),
            "duration_ms": .string(String(format: "%.1f", milliseconds)), "client.ip": .string(context.clientIP ?? "-"),
        ])
    }

    /// A path no route matched, as nginx's access log masks it: what follows `/webhooks/<provider>/` or `/onboard/`
    /// may be a secret someone guessed at or mistyped.
    static func unmatched(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard let first = parts.first?.lowercased() else { return "/" }
        switch first {
        case "webhooks": return parts.count > 1 ? "/webhooks/\(parts[1].prefix(32))/***" : "/webhooks"
        case "onboard": return "/onboard/***"
        default: return "/" + parts.prefix(8).map { String($0.prefix(64)) }.joined(separator: "/")
        }
    }

    /// The caller's `X-Request-ID` when it is short printable ASCII, else a new one.
    static func requestID(for request: Request) -> String {
        request.headers[.requestID].flatMap { $0.count <= 128 && $0.allSatisfy { $0.isASCII && !$0.isWhitespace } ? $0 : nil }
            ?? ProblemMiddleware.newRequestID()
    }
}
