import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import Tracing

/// The outermost part of `EdgeMiddleware`: gives the request its id (`X-Request-ID` when the caller sent a sane one)
/// and its client address (through trusted proxies only); `EdgeMiddleware` runs everything inside `RequestScope` so
/// every line logged on its behalf carries the id, and this writes one access log line when it is answered: method,
/// route template, status, duration, client.
/// When tracing is on, the request is a server span (continuing the caller's `traceparent`) named by its route,
/// and everything it does, provider calls included, is inside it. (Hummingbird's own tracing middleware is not used:
/// it records the path as sent, secrets included.)
/// The path is logged as its route template (`/webhooks/wrapp/{token}`), never as sent: webhook tokens and
/// onboarding links are secrets, and ids in paths would make the lines unsearchable by route anyway.
struct RequestScopeMiddleware: Sendable {
    typealias Context = GatewayRequestContext

    let trusted: [CIDR]
    /// The registered providers' ids: the one segment after `webhooks` that is shown as it is.
    let providers: Set<String>
    let accessLog: Logger

    /// The request's id, client address and span. Synchronous and not inlined, like `finish`: an async function's
    /// frame lives as long as the request, and this one's stays small (`docs/performance.md`, memory).
    @inline(never)
    func begin(_ request: Request, context: Context) -> Scope {
        var context = context
        context.requestID = Self.requestID(for: request)
        ClientAddress.resolve(request, context: &context, trusted: trusted)
        context.logger[metadataKey: "request.id"] = .string(context.requestID)
        context.logger[metadataKey: "client.ip"] = .string(context.clientIP ?? "-")
        let started = ContinuousClock.now
        var parent = InstrumentationContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(request.headers, into: &parent, using: HeaderExtractor())
        // Probes and scrapes (every few seconds, per replica) make no traces, as they make no info lines.
        var span: (any Span)?
        if !Self.quietRoutes.contains(request.uri.path) {
            let started = startSpan("\(request.method.rawValue)", context: parent, ofKind: .server)
            started.attributes["http.request.method"] = request.method.rawValue
            started.attributes["request.id"] = context.requestID
            started.attributes["client.address"] = context.clientIP
            span = started
        }
        return Scope(context: context, span: span, started: started)
    }

    /// What `begin` set up for a request, held by reference: the frames of the closures that run the request hold
    /// one pointer, not a copy of the context each.
    final class Scope: Sendable {
        let context: Context
        let span: (any Span)?
        let started: ContinuousClock.Instant

        init(context: Context, span: (any Span)?, started: ContinuousClock.Instant) {
            self.context = context
            self.span = span
            self.started = started
        }
    }

    @inline(never)
    func finish(_ scope: Scope, _ request: Request, status: Int) {
        finish(scope.span, request, scope.context, status: status, since: scope.started)
    }

    private func finish(_ span: (any Span)?, _ request: Request, _ context: Context, status: Int, since started: ContinuousClock.Instant) {
        log(request, context, status: status, since: started)
        guard let span else { return }
        let route = context.endpointPath ?? Self.unmatched(request.uri.path, providers: providers)
        span.operationName = "\(request.method.rawValue) \(route)"
        span.attributes["http.route"] = route
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        span.end()
    }

    private func log(_ request: Request, _ context: Context, status: Int, since started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        let route = context.endpointPath
        accessLog.log(level: route.map { Self.quietRoutes.contains($0) } == true ? .debug : .info, "request", metadata: [
            "request.id": .string(context.requestID), "http.method": .string(request.method.rawValue),
            "http.route": .string(route ?? Self.unmatched(request.uri.path, providers: providers)), "http.status": .stringConvertible(status),
            "duration_ms": .string(Self.oneDecimal(milliseconds)), "client.ip": .string(context.clientIP ?? "-"),
        ])
    }

    /// `%.1f` without `String(format:)` (Foundation's formatter, per request). Our own clock's reading, never negative.
    static func oneDecimal(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        guard tenths.isFinite, tenths >= 0, tenths < 1e15 else { return String(format: "%.1f", value) }
        let whole = Int64(tenths)
        return "\(whole / 10).\(whole % 10)"
    }

    /// A path no route matched, masked as nginx's access log masks it: everything after a `webhooks` segment (but a
    /// provider's name) or an `onboard` segment may be a secret someone mistyped, wherever that segment stands and
    /// however it is spelt (case, percent-encoding). Other segments are logged as `_` unless plain (letters, digits,
    /// `-`, `_`, `.`), at most 8 of 64 characters.
    static func unmatched(_ path: String, providers: Set<String>) -> String {
        var shown: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: true).prefix(8) {
            let segment = String(raw).removingPercentEncoding?.lowercased() ?? "_"
            if let previous = shown.last, previous == "webhooks" {
                shown.append(providers.contains(segment) ? segment : "***")
                if shown.last == "***" { break }
                shown.append("***")
                break
            }
            if segment == "onboard" {
                shown += ["onboard", "***"]
                break
            }
            let plain = !segment.isEmpty && segment.count <= 64 && segment.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
            shown.append(segment == "webhooks" ? "webhooks" : plain ? String(raw) : "_")
        }
        return "/" + shown.joined(separator: "/")
    }

    /// The caller's `X-Request-ID` when it is 1 to 128 of `A-Z a-z 0-9 . _ : -`, else a new one: it is logged and
    /// stored with queued work, so nothing else (no control characters) gets in.
    static func requestID(for request: Request) -> String {
        request.headers[.requestID].flatMap { value in
            (1...128).contains(value.utf8.count) && value.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F || byte == 0x3A || byte == 0x2D
            } ? value : nil
        } ?? ProblemMiddleware.newRequestID()
    }

    /// Probes and scrapes come every few seconds: their access lines go at debug, so `info` holds the traffic.
    static let quietRoutes: Set<String> = ["/healthz", "/readyz", "/metrics"]
}

/// Reads a caller's trace headers (`traceparent`, `tracestate`) from the request.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}
