import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// How one POST of an event went.
public struct SendResult: Sendable, Equatable {
    public var statusCode: Int?
    public var retryAfter: TimeInterval?
    public var error: String?
    /// The first 200 characters of the answer.
    public var excerpt: String?
    public var durationMilliseconds: Double

    public var succeeded: Bool { statusCode.map { (200..<300).contains($0) } ?? false }
}

/// Posts signed events to the partner app's endpoint; a 2xx within the timeout (15 s) is success.
public struct EventSender: Sendable {
    let url: String
    let timeout: TimeInterval
    let client: HTTPClient

    public init(url: String, timeout: TimeInterval = 15, client: HTTPClient = EventSender.client) {
        self.url = url
        self.timeout = timeout
        self.client = client
    }

    public func send(body: Data, headers: [(String, String)]) async -> SendResult {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "onboarding-gateway-events")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let started = ContinuousClock.now
        func elapsed() -> Double {
            let duration = ContinuousClock.now - started
            return Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        }
        do {
            let response = try await client.execute(request, deadline: .now() + .milliseconds(Int64(timeout * 1000)))
            let bytes = (try? await response.body.collect(upTo: 4096)).map { Data($0.readableBytesView) } ?? Data()
            let excerpt = String(decoding: bytes.prefix(200), as: UTF8.self)
            return SendResult(
                statusCode: Int(response.status.code), retryAfter: Self.retryAfter(response.headers.first(name: "Retry-After")),
                error: (300..<400).contains(response.status.code) ? "redirect \(response.status.code) not followed" : nil, excerpt: excerpt.isEmpty ? nil : excerpt, durationMilliseconds: elapsed()
            )
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return SendResult(statusCode: nil, retryAfter: nil, error: "no answer within \(Int(timeout)) s", excerpt: nil, durationMilliseconds: elapsed())
        } catch {
            return SendResult(statusCode: nil, retryAfter: nil, error: String(String(describing: error).prefix(200)), excerpt: nil, durationMilliseconds: elapsed())
        }
    }
}

extension EventSender {
    /// The endpoint's `Retry-After`: whole seconds only (no `inf`, `nan` or sign), capped at a day.
    static func retryAfter(_ value: String?) -> TimeInterval? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty, value.utf8.count <= 16,
              value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return TimeInterval(value).map { min($0, 86_400) }
    }

    /// The process's client for deliveries. It makes no spans of its own: AsyncHTTPClient's would record the events
    /// URL in full, and the partner may have put a secret in it. The dispatcher makes each delivery's span.
    public static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.tracing.tracer = nil
        // A redirect is a failed delivery, never followed: the signed event and its headers go only to the
        // configured endpoint, not to whatever host a Location names.
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()
}
