import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOHTTP1
import Providers
import Synchronization
import Tracing

/// Credentials ready to use: `POST /v1/tenants/{id}/access-token` (scope `tokens:issue`) and the provider proxy,
/// `/v1/tenants/{id}/provider/{path}` (scope `provider:proxy`). Neither ever answers the long-lived secret.
///
/// The proxy reaches only the tenant's provider API under its configured base URL: the path is decoded once, split
/// into segments and each encoded again, and `.`, `..`, empty segments, control characters, `?`, `#`, doubly encoded
/// characters and absolute URLs are refused. Only content negotiation, conditional and idempotency headers are sent on (never
/// hop-by-hop, credential, cookie or forwarding headers); the module's credentials are added. Redirects are refused, never followed. A `401` on a call that carried
/// a token gets one fresh login and one retry; a `401` that stands asks for a credential check. Anything else
/// (`429` and its `Retry-After` included) is the provider's answer, passed through; nothing is retried otherwise.
struct ProxyController {
    static let routeTemplate = "/v1/tenants/{id}/provider/{path}"
    /// The largest body sent on, and the longest path and query taken.
    static let maxBodyBytes = 1 << 20
    static let maxPathBytes = 2048
    static let maxQueryBytes = 4096
    /// The largest provider answer passed on (a PDF fits); larger answers `502`.
    static let maxAnswerBytes = 8 << 20

    let service: OnboardingService
    let http: ProviderHTTPClient
    let metrics: GatewayMetrics
    let slots: ProxySlots

    var endpoints: RouteCollection<GatewayRequestContext> {
        let routes = RouteCollection(context: GatewayRequestContext.self)
            .post(":id/access-token", use: accessToken)
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            routes.on(":id/provider/**", method: method, use: forward)
        }
        return routes
    }

    // MARK: - Access tokens

    struct AccessTokenResource: Encodable {
        var provider: String
        var token: String
        var expiresAt: Date?
        var use: [String: [String: String]]

        enum CodingKeys: String, CodingKey {
            case provider, token, use
            case expiresAt = "expires_at"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(provider, forKey: .provider)
            try c.encode(token, forKey: .token)
            try c.encode(expiresAt, forKey: .expiresAt)
            try c.encode(use, forKey: .use)
        }
    }

    /// No body, or `{"replace": "<token>"}`: the token the provider just refused (it expired early, or was revoked);
    /// a fresh login replaces it, unless the token kept is already another one.
    @Sendable func accessToken(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tokensIssue)
        var replace: String?
        var request = request
        // Room for the longest `replace` (8,192 characters) however JSON escapes them (`\u00e9` is six bytes for one).
        let body = try await request.collectBody(upTo: 64 * 1024)
        if body.readableBytes > 0 {
            if let type = request.headers[.contentType], !type.lowercased().contains("json") {
                throw Problem(.unsupportedMediaType, code: "unsupported_media_type", detail: "Send the body as application/json.")
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
                throw Problem(.badRequest, code: "malformed_json", detail: "The body is not a JSON object.")
            }
            let reader = FieldReader(object)
            reader.allowOnly(["replace"])
            replace = reader.string("replace", required: false)
            if let text = replace, text.isEmpty || text.count > 8192 { reader.fail("replace", "invalid", "The token the provider refused, 1 to 8,192 characters.") }
            guard reader.errors.isEmpty else { throw Problem.validation(reader.errors) }
        }
        let grant = try await service.accessToken(tenantID: context.parameters.require("id"), replacing: replace, actor: context.actor)
        let resource = AccessTokenResource(
            provider: grant.provider.rawValue, token: grant.token.token, expiresAt: grant.token.expiresAt, use: ["headers": grant.use]
        )
        return try .json(resource, headers: [.cacheControl: "no-store"])
    }

    // MARK: - Proxy

    @Sendable func forward(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.providerProxy)
        let tenantID = try context.parameters.require("id")
        let path = try Self.providerPath(request.uri.path, tenantID: tenantID)
        let query = try Self.callerQuery(request.uri.query)
        var request = request
        let body = try await request.collectBody(upTo: Self.maxBodyBytes)
        let bytes = body.readableBytes > 0 ? Data(body.readableBytesView) : nil

        var grant = try await service.proxyGrant(tenantID: tenantID)
        let provider = grant.tenant.provider
        guard slots.take(provider) else {
            metrics.proxyCall(provider: provider, status: 503, duration: .zero)
            throw Problem(
                .serviceUnavailable, code: "proxy_busy",
                detail: "Too many calls to this provider are going through the proxy at once; try again in a moment.",
                headers: [.retryAfter: "1"]
            )
        }
        defer { slots.give(provider) }
        let started = ContinuousClock.now
        let method = HTTPMethod(rawValue: request.method.rawValue)
        return try await withSpan("provider proxy", ofKind: .client) { span in
            span.attributes["provider.name"] = grant.tenant.provider.rawValue
            span.attributes["http.route"] = Self.routeTemplate
            span.attributes["tenant.id"] = tenantID
            var response = try await send(method, path: path, query: query, request: request, body: bytes, grant: grant, started: started)
            if response.status == 401, let used = grant.token {
                // The token may only have expired (or been rotated): one fresh login, one retry. Whatever stops that
                // (a refused login, a busy tenant, a provider that cannot be reached), the provider's 401 stands; so
                // does it when the token is the one just used (it was fresh: the login would change nothing).
                if let renewed = try? await service.proxyGrant(tenantID: tenantID, replacing: used), renewed.token?.token != used.token {
                    grant = renewed
                    span.attributes["provider.proxy.relogin"] = true
                    response = try await send(method, path: path, query: query, request: request, body: bytes, grant: grant, started: started)
                }
            }
            if response.status == 401 {
                await service.credentialsSuspect(grant.tenant)
            }
            span.attributes["http.response.status_code"] = response.status
            if response.status >= 500 { span.setStatus(SpanStatus(code: .error)) }
            metrics.proxyCall(provider: grant.tenant.provider, status: response.status, duration: ContinuousClock.now - started)
            return try Self.passThrough(response, target: grant.target)
        }
    }

    /// One request to the provider; a refusal of ours (a redirect, no answer) is counted with the time since `started`.
    private func send(
        _ method: HTTPMethod, path: [String], query: [(String, String)], request: Request, body: Data?, grant: ProxyGrant,
        started: ContinuousClock.Instant
    ) async throws -> ProviderResponse {
        let target = grant.target
        let url = try Self.url(target: target, path: path, query: query)
        var headers = Self.forwardedHeaders(request.headers, dropping: target.credentialHeaders)
        headers += target.headers.map { ($0.name, $0.value) }
        switch await http.forward(method, url, headers: headers, body: body, masksHost: target.hostNamesCustomer) {
        case .success(let response):
            if (300..<400).contains(response.status), response.status != 304 {
                let host = response.header("Location").flatMap { URL(string: $0)?.host } ?? "no Location"
                metrics.proxyCall(provider: grant.tenant.provider, status: 502, duration: ContinuousClock.now - started)
                throw Problem(
                    .badGateway, code: "provider_redirect_refused",
                    detail: "The provider answered \(response.status) to \(host); the proxy never follows a redirect (credentials would go with it)."
                )
            }
            return response
        case .failure(.timedOut):
            metrics.proxyCall(provider: grant.tenant.provider, status: 504, duration: ContinuousClock.now - started)
            throw Problem(.gatewayTimeout, code: "provider_timeout", detail: "The provider did not answer in time.")
        case .failure(.unreachable):
            metrics.proxyCall(provider: grant.tenant.provider, status: 502, duration: ContinuousClock.now - started)
            throw Problem(.badGateway, code: "provider_unreachable", detail: "The provider could not be reached, or its answer was too large to pass on.")
        }
    }

    // MARK: - What may go through

    /// The provider path's segments: the path after `/provider/` decoded once (an encoded `/` separates segments, as a
    /// generated client sends one path parameter), then split, then each segment checked. Nothing can step out of the
    /// base URL: no `.` or `..`, no empty segment, no absolute URL; no `\`, control character, `?` or `#` (a query
    /// goes in the query); no `%` left after decoding (a double encoding a provider might decode again).
    static func providerPath(_ rawPath: String, tenantID: String) throws -> [String] {
        let prefix = "/v1/tenants/\(tenantID)/provider/"
        guard rawPath.hasPrefix(prefix) else { throw invalidPath("The path must continue after /provider/.") }
        let tail = rawPath.dropFirst(prefix.count)
        guard !tail.isEmpty else { throw invalidPath("Name the provider path after /provider/.") }
        guard tail.utf8.count <= maxPathBytes else { throw invalidPath("The provider path is longer than \(maxPathBytes) bytes.") }
        guard let decoded = String(tail).removingPercentEncoding else { throw invalidPath("The path is not valid percent-encoding.") }
        var segments: [String] = []
        for (index, segment) in decoded.split(separator: "/", omittingEmptySubsequences: false).map(String.init).enumerated() {
            if index == 0, segment.contains(":") { throw invalidPath("An absolute URL is refused: give a path under the provider's API.") }
            guard !segment.isEmpty else { throw invalidPath("Empty path segments (//) are refused.") }
            guard segment != ".", segment != ".." else { throw invalidPath("Dot segments (. and ..) are refused.") }
            guard !segment.unicodeScalars.contains(where: { ["\\", "?", "#", "%"].contains($0) || $0.value < 0x20 || $0.value == 0x7F }) else {
                throw invalidPath("Backslashes, control characters, ? and # (a query goes in the query string) and doubly encoded characters are refused in the path.")
            }
            segments.append(segment)
        }
        return segments
    }

    static func invalidPath(_ message: String) -> Problem {
        Problem.validation(field: "path", code: "invalid_provider_path", message: message)
    }

    /// The caller's query, parsed and bounded; the credential parameters are dropped where the target is known.
    static func callerQuery(_ raw: String?) throws -> [(String, String)] {
        guard let raw, !raw.isEmpty else { return [] }
        guard raw.utf8.count <= maxQueryBytes else {
            throw Problem.validation(field: "query", code: "too_long", message: "The query is longer than \(maxQueryBytes) bytes.")
        }
        var items: [(String, String)] = []
        for pair in raw.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]), let value = parts.count > 1 ? decode(parts[1]) : "" else {
                throw Problem.validation(field: "query", code: "invalid", message: "The query is not valid percent-encoding.")
            }
            items.append((name, value))
        }
        return items
    }

    /// RFC 3986 unreserved characters: everything else in a segment or query value is percent-encoded again.
    static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    /// The target URL: the base, the re-encoded segments, the caller's query without credential names, then the
    /// module's. Checked once more: same scheme, host and port as the base, under its path.
    static func url(target: ProxyTarget, path: [String], query: [(String, String)]) throws -> String {
        let encode = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "" }
        var url = target.baseURL + "/" + path.map(encode).joined(separator: "/")
        let kept = query.filter { !target.credentialQuery.contains($0.0.lowercased()) } + target.query.map { ($0.name, $0.value) }
        if !kept.isEmpty { url += "?" + kept.map { encode($0.0) + "=" + encode($0.1) }.joined(separator: "&") }
        guard let base = URLComponents(string: target.baseURL), let built = URLComponents(string: url),
            built.scheme == base.scheme, built.host == base.host, built.port == base.port, built.percentEncodedPath.hasPrefix(base.percentEncodedPath)
        else { throw invalidPath("The path does not stay under the provider's API.") }
        return url
    }

    /// What a caller's request may carry on to the provider: content negotiation, conditional requests and an
    /// idempotency key. Everything else stays here: hop-by-hop headers (and those a `Connection` header names, which
    /// the HTTP layer may have taken out before this sees them), the caller's `Authorization` (the gateway's own key),
    /// any credential header, cookies, forwarding and tracing headers.
    static let forwardedRequestHeaders: Set<String> = [
        "accept", "accept-language", "content-type", "content-language", "content-encoding", "if-match", "if-none-match", "if-modified-since",
        "if-unmodified-since", "idempotency-key", "prefer",
    ]

    static func forwardedHeaders(_ fields: HTTPFields, dropping credentials: Set<String>) -> [(String, String)] {
        fields.compactMap { field in
            let name = field.name.canonicalName
            guard forwardedRequestHeaders.contains(name), !credentials.contains(name) else { return nil }
            return (field.name.rawName, field.value)
        }
    }

    /// What of the provider's answer reaches the caller: its content and caching validators, its rate-limit and
    /// authentication hints. Nothing else lands on the gateway's origin (cookies, CORS, HSTS, security policies,
    /// credential headers, hop-by-hop headers), and the answer is never cached.
    static let passedResponseHeaders: Set<String> = [
        "content-type", "content-language", "content-disposition", "content-encoding", "etag", "last-modified", "location", "retry-after",
        "www-authenticate", "ratelimit", "ratelimit-policy", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
        "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
    ]

    /// The provider's answer as it came (status, body, the headers above), with `Cache-Control: no-store`.
    static func passThrough(_ response: ProviderResponse, target: ProxyTarget) throws -> Response {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            let lower = name.lowercased()
            guard passedResponseHeaders.contains(lower), !target.credentialHeaders.contains(lower), let field = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: field, value: value))
        }
        fields[.cacheControl] = "no-store"
        let status = (200...599).contains(response.status) ? HTTPResponse.Status(code: response.status) : .badGateway
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: response.body)))
    }
}

/// Provider proxy calls in flight, per provider, up to a limit (`GATEWAY_PROXY_MAX_CONCURRENT`).
final class ProxySlots: Sendable {
    private let inFlight = Mutex<[ProviderKind: Int]>([:])
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func take(_ provider: ProviderKind) -> Bool {
        inFlight.withLock { counts in
            guard counts[provider, default: 0] < limit else { return false }
            counts[provider, default: 0] += 1
            return true
        }
    }

    func give(_ provider: ProviderKind) {
        inFlight.withLock { $0[provider, default: 1] -= 1 }
    }
}
