import AsyncHTTPClient
import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1
import Synchronization
import Tracing

/// A provider's HTTP answer, read whole (up to a cap).
public struct ProviderResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// The most `retryAfter()` answers: a provider's header never parks work longer than this.
    public var retryAfterCap: TimeInterval = Bounds.defaultRetryAfterCap

    public init(status: Int, headers: [(name: String, value: String)], body: Data, retryAfterCap: TimeInterval = Bounds.defaultRetryAfterCap) {
        self.status = status
        self.headers = headers
        self.body = body
        self.retryAfterCap = retryAfterCap
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// True when the body is an HTML page (a proxy's or framework's error page) rather than JSON or XML.
    public var isHTML: Bool {
        if header("Content-Type")?.lowercased().contains("text/html") == true { return true }
        return startsWithMarkup && !isXML
    }

    /// True when the body is an XML document (a provider's v1 error format), by its type or its first bytes.
    public var isXML: Bool {
        if let type = header("Content-Type")?.lowercased(), type.contains("/xml") || type.contains("+xml") { return true }
        let start = body.prefix(64).drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        return start.starts(with: Array("<?xml".utf8))
    }

    private var startsWithMarkup: Bool {
        body.prefix(64).drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }.first == UInt8(ascii: "<")
    }

    /// `Retry-After` in seconds (either form of the header), when present and readable, capped at `retryAfterCap`.
    /// Only what RFC 9110 allows is read: whole seconds (digits only: no `inf`, `nan`, `1e9` or sign) or an
    /// HTTP date; anything else is no hint at all.
    public func retryAfter(now: Date = Date()) -> TimeInterval? {
        guard let raw = header("Retry-After") else { return nil }
        let value = raw.trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty, value.utf8.count <= 64 else { return nil }
        if value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // Digits only: at most 64 of them, so the Double is finite; the cap does the rest.
            return Bounds.interval(TimeInterval(value), cap: retryAfterCap)
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).flatMap { Bounds.interval($0.timeIntervalSince(now), cap: retryAfterCap) }
    }
}

/// Why a call got no HTTP answer at all.
public enum TransportFailure: Error, Sendable, Equatable {
    case timedOut
    case unreachable(String)
}

/// The one way adapters talk HTTP: a deadline on every call and a cap on what is read.
public struct ProviderHTTPClient: Sendable {
    let client: HTTPClient
    public var timeout: TimeInterval
    public var maxResponseBytes = 1 << 20
    /// The most a provider's `Retry-After` is believed (`GATEWAY_RETRY_AFTER_CAP_SECONDS`, 1 h by default).
    public var retryAfterCap: TimeInterval = Bounds.defaultRetryAfterCap
    /// Hears how every request went, for the provider's circuit breaker: healthy when the provider gave a readable,
    /// non-error answer (a 4xx refusal is a working provider), with a short reason when not. Never bodies or secrets.
    public var observe: (@Sendable (_ healthy: Bool, _ operation: String, _ reason: String?) async -> Void)?

    /// Answers requests instead of the network (tests: scripted or generated provider answers).
    public typealias Transport = @Sendable (_ method: HTTPMethod, _ url: String, _ headers: [(String, String)], _ body: Data?) async
        -> Result<ProviderResponse, TransportFailure>
    var transport: Transport?

    public init(client: HTTPClient, timeout: TimeInterval) {
        self.client = client
        self.timeout = timeout
    }

    /// A client whose every request is answered by `transport`, with the same handling of what comes back
    /// (redirects refused, `Retry-After` capped, health observed) as over the network.
    public static func answering(timeout: TimeInterval = 1, _ transport: @escaping Transport) -> ProviderHTTPClient {
        var client = ProviderHTTPClient(client: SharedClients.client(), timeout: timeout)
        client.transport = transport
        return client
    }

    /// Over a process-wide AsyncHTTPClient (living as long as the process) whose pool keeps up to
    /// `connectionsPerHost` connections to each provider's host. AsyncHTTPClient's default is 8: with more calls
    /// allowed at once, the rest would queue for a connection inside the client, unseen and past their deadline.
    public static func live(timeout: TimeInterval, connectionsPerHost: Int = 8, pool: String = "onboarding") -> ProviderHTTPClient {
        ProviderHTTPClient(client: SharedClients.client(connectionsPerHost: max(8, connectionsPerHost), pool: pool), timeout: timeout)
    }

    /// The same client, reporting each request's health to `observe`.
    /// The same client, unheard by the circuit breaker: for requests to a host the customer named (their own account),
    /// whose typos must not pause a provider for everyone.
    public func unobserved() -> ProviderHTTPClient {
        var copy = self
        copy.observe = nil
        return copy
    }

    /// The same client, tracing `*.` and the rest of the host instead of its first label: for hosts named after a
    /// customer's account (`{account}.app.invoicexpress.com`), which is the customer's to keep out of traces.
    public func maskingFirstHostLabel() -> ProviderHTTPClient {
        var copy = self
        copy.masksFirstHostLabel = true
        return copy
    }

    var masksFirstHostLabel = false

    public func observed(by observe: @escaping @Sendable (_ healthy: Bool, _ operation: String, _ reason: String?) async -> Void) -> ProviderHTTPClient {
        var copy = self
        copy.observe = observe
        return copy
    }

    public func send(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], json: Data? = nil
    ) async -> Result<ProviderResponse, TransportFailure> {
        let result = await traced(method, url) {
            if let transport {
                return await transport(method, url, headers, json).map { response in
                    var response = response
                    response.retryAfterCap = retryAfterCap
                    return response
                }
            }
            return await exchange(method, url, headers: headers, json: json)
        }
        return await judged(result, url: url)
    }

    /// A redirect refused, and what the circuit breaker hears. Out of line: `send`'s frame lives for the provider's
    /// whole answer, for every call in flight.
    @inline(never)
    private func judged(_ result: Result<ProviderResponse, TransportFailure>, url: String) async -> Result<ProviderResponse, TransportFailure> {
        var result = result
        if case .success(let response) = result, (300..<400).contains(response.status) {
            // Redirects are never followed (the client is built so): the partner key, IPPN secrets and customers'
            // keys travel in headers and bodies, and must not go to whatever host a Location names. A provider API
            // that redirects is misbehaving: a failure, with the status and the target's host (never its path).
            let target = response.header("Location").flatMap { URL(string: $0)?.host } ?? "no Location"
            result = .failure(.unreachable("redirect refused: \(response.status) to \(target)"))
            if let observe {
                let path = URLComponents(string: url)?.path.split(separator: "/").suffix(2).joined(separator: "/") ?? "?"
                await observe(false, path, "\(response.status) redirect, not followed")
            }
            return result
        }
        if let observe {
            let path = URLComponents(string: url)?.path.split(separator: "/").suffix(2).joined(separator: "/") ?? "?"
            switch result {
            case .failure(.timedOut): await observe(false, path, "no answer in time")
            case .failure(.unreachable): await observe(false, path, "could not be reached")
            case .success(let response):
                // An XML error (a provider's v1 format) is an answer like a JSON one, not a sick provider.
                let readable = response.body.isEmpty || response.isXML || (try? JSONSerialization.jsonObject(with: response.body)) != nil
                if response.status >= 500 || response.status == 429 || response.isHTML || !readable {
                    let shape = response.isHTML ? "an HTML page" : readable ? "an error" : "an unreadable body"
                    await observe(false, path, "\(response.status) with \(shape)")
                } else {
                    await observe(true, path, nil)
                }
            }
        }
        return result
    }

    /// One request of the provider proxy, sent as given (headers and body are the caller's, already filtered), never
    /// observed by the circuit breaker (a partner's calls are not the onboarding's health). A redirect is answered as
    /// it came, never followed: the caller refuses it. Traced like every request: method, host, status.
    public func forward(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)], body: Data?, masksHost: Bool = false
    ) async -> Result<ProviderResponse, TransportFailure> {
        var copy = self
        copy.masksFirstHostLabel = masksHost || masksFirstHostLabel
        return await copy.traced(method, url) {
            if let transport {
                return await transport(method, url, headers, body)
            }
            return await copy.exchange(method, url, headers: headers, json: body, raw: true)
        }
    }

    /// A client span for the request (a child of the provider call's span): method, host and status, or why there
    /// was no answer. Never the path or query (they may hold a customer's identifiers), headers or bodies.
    private func traced(
        _ method: HTTPMethod, _ url: String, _ exchange: () async -> Result<ProviderResponse, TransportFailure>
    ) async -> Result<ProviderResponse, TransportFailure> {
        await withSpan("HTTP \(method.rawValue)", ofKind: .client) { span in
            span.attributes["http.request.method"] = method.rawValue
            if let components = URLComponents(string: url) {
                span.attributes["server.address"] = masksFirstHostLabel
                    ? components.host.map { host in host.split(separator: ".").count > 2 ? "*." + host.split(separator: ".").dropFirst().joined(separator: ".") : "*" }
                    : components.host
                span.attributes["server.port"] = components.port
            }
            let result = await exchange()
            switch result {
            case .success(let response):
                span.attributes["http.response.status_code"] = response.status
                if response.status >= 500 { span.setStatus(SpanStatus(code: .error)) }
            case .failure(.timedOut):
                span.attributes["error.type"] = "timeout"
                span.setStatus(SpanStatus(code: .error, message: "no answer in time"))
            case .failure(.unreachable):
                span.attributes["error.type"] = "unreachable"
                span.setStatus(SpanStatus(code: .error, message: "could not be reached"))
            }
            return result
        }
    }

    private func exchange(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)], json: Data?, raw: Bool = false
    ) async -> Result<ProviderResponse, TransportFailure> {
        let deadline = NIODeadline.now() + .milliseconds(Int64(timeout * 1000))
        do {
            // The future-based API, with a delegate that collects the body up to the cap: its `async` counterpart
            // keeps about 7 KiB of async frames per call for as long as the provider takes to answer, for every call
            // in flight (`docs/performance.md`, memory). Redirects are refused by the client's configuration either way.
            // The deadline covers the whole exchange, the body too (the `async` API's stopped at the head).
            let request = try Self.request(method, url, headers: headers, json: json, raw: raw)
            let task = client.execute(request: request, delegate: CappedCollector(cap: maxResponseBytes), deadline: deadline)
            let response = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
            return .success(providerResponse(response))
        } catch {
            return .failure(Self.failure(error, url: url))
        }
    }

    /// The request as sent: ours is JSON unless the caller (the proxy) says otherwise.
    @inline(never)
    private static func request(_ method: HTTPMethod, _ url: String, headers: [(String, String)], json: Data?, raw: Bool) throws -> HTTPClient.Request {
        var fields = HTTPHeaders()
        if !raw || !headers.contains(where: { $0.0.lowercased() == "accept" }) { fields.add(name: "Accept", value: "application/json") }
        fields.add(name: "User-Agent", value: "onboarding-gateway")
        for (name, value) in headers { fields.add(name: name, value: value) }
        if json != nil, !raw || !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            fields.add(name: "Content-Type", value: "application/json")
        }
        return try HTTPClient.Request(url: url, method: method, headers: fields, body: json.map { .bytes($0) })
    }

    @inline(never)
    private func providerResponse(_ response: CappedCollector.Response) -> ProviderResponse {
        ProviderResponse(
            status: Int(response.head.status.code),
            headers: response.head.headers.map { ($0.name, $0.value) },
            body: response.body.map { Data($0.readableBytesView) } ?? Data(),
            retryAfterCap: retryAfterCap
        )
    }

    @inline(never)
    private static func failure(_ error: any Error, url: String) -> TransportFailure {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .timedOut
        }
        // The error names the host and cause, never the request's headers or body; a query (a provider that takes
        // its key as `?api_key=`) is masked in case an error repeats the URL.
        var detail = String(describing: error)
        if let query = URLComponents(string: url)?.percentEncodedQuery, !query.isEmpty {
            detail = detail.replacingOccurrences(of: query, with: "***")
        }
        return .unreachable(detail)
    }
}

/// Collects an answer's head and body, failing once the body passes `cap` bytes. Unlike AsyncHTTPClient's
/// `ResponseAccumulator`, it judges the bytes that come, never a `Content-Length` that promises them: a `304` names
/// the length of a body it does not send.
final class CappedCollector: HTTPClientResponseDelegate {
    typealias Response = (head: HTTPResponseHead, body: ByteBuffer?)

    struct TooLarge: Error, CustomStringConvertible {
        let cap: Int
        var description: String { "the answer's body is larger than \(cap) bytes" }
    }

    private let cap: Int
    // Written only from the request's event loop, one callback at a time (AsyncHTTPClient's delegate contract).
    private let state = Mutex<(head: HTTPResponseHead?, body: ByteBuffer?)>((nil, nil))

    init(cap: Int) {
        self.cap = max(0, cap)
    }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLock { $0.head = head }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        let fits = state.withLock { state -> Bool in
            guard (state.body?.readableBytes ?? 0) <= cap - part.readableBytes else { return false }
            var part = part
            if state.body == nil { state.body = part } else { state.body!.writeBuffer(&part) }
            return true
        }
        return fits ? task.eventLoop.makeSucceededVoidFuture() : task.eventLoop.makeFailedFuture(TooLarge(cap: cap))
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        let (head, body) = state.withLock { $0 }
        guard let head else { throw HTTPClientError.remoteConnectionClosed }
        return (head, body)
    }
}

/// One client per pool size, made on first use and kept for the life of the process (like `HTTPClient.shared`): a
/// gateway rebuilt in the same process (tests) reuses it, and none is left to be shut down. None traces by itself:
/// AsyncHTTPClient's own spans record the full URL and path, which may hold a customer's identifiers or a webhook
/// token; `ProviderHTTPClient` makes the span of each request instead.
public enum SharedClients {
    private static let clients = Mutex<[String: HTTPClient]>([:])

    /// `pool` keeps traffic apart: the provider proxy's calls (`"proxy"`) never queue the onboarding's for a connection.
    /// The provider proxy's pool: answers are never inflated there.
    public static let proxyPool = "proxy"

    public static func client(connectionsPerHost: Int = 8, pool: String = "onboarding") -> HTTPClient {
        clients.withLock { clients in
            let key = "\(pool)/\(connectionsPerHost)"
            if let client = clients[key] { return client }
            var configuration = HTTPClient.Configuration.singletonConfiguration
            configuration.tracing.tracer = nil
            // Never follow a redirect: AsyncHTTPClient would resend our headers (the partner key, IPPN secrets) and
            // bodies (a customer's key) to any host, https to http included. `send` reports a 3xx as a failure.
            configuration.redirectConfiguration = .disallow
            // The provider proxy passes answers on as they came: inflating one would leave its `Content-Encoding` on
            // a body that no longer has it (`docs/security.md`, row 35). The adapters' own calls may inflate (at most
            // 25 times, and the cap counts the inflated bytes).
            if pool == Self.proxyPool { configuration.decompression = .disabled }
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerHost
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            clients[key] = client
            return client
        }
    }
}
