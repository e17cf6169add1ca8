import Foundation
import Providers
import Synchronization
import Testing

/// What `ProviderHTTPClient` reads from a provider, over a real socket: the cap judges the bytes that come (not a
/// length a `304` names), the deadline covers the body, and a body comes back as it was sent (never inflated).
@Suite struct ProviderHTTPClientTests {
    @Test func aNotModifiedAnswerNamingALargeLengthIsAnAnswer() async throws {
        // A 304 carries the Content-Length of the body it does not send (RFC 9110, 8.6): not a body over the cap.
        let server = try CannedServer(["HTTP/1.1 304 Not Modified\r\nConnection: close\r\nContent-Length: 99999999\r\nETag: \"v2\"\r\n\r\n"])
        defer { withExtendedLifetime(server) {} }
        let result = await ProviderHTTPClient.live(timeout: 5).forward(.GET, server.url, headers: [("If-None-Match", "\"v2\"")], body: nil)
        guard case .success(let response) = result else {
            Issue.record("a 304 is an answer, got \(result)")
            return
        }
        #expect(response.status == 304)
        #expect(response.body.isEmpty)
    }

    @Test func aBodyOverTheCapIsRefused() async throws {
        let body = String(repeating: "x", count: 3000)
        let server = try CannedServer(["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 3000\r\n\r\n" + body])
        defer { withExtendedLifetime(server) {} }
        var client = ProviderHTTPClient.live(timeout: 5)
        client.maxResponseBytes = 2048
        guard case .failure(.unreachable(let reason)) = await client.send(.GET, server.url) else {
            Issue.record("a body over the cap must not be read whole")
            return
        }
        #expect(reason.contains("2048"))
    }

    @Test func theDeadlineCoversTheBody() async throws {
        // The head comes at once, the body never finishes: the call ends at its deadline, as a timeout, while the
        // server still holds the connection open. (A client whose deadline stopped at the head would wait until
        // the server gave up, 20 s on, and then fail on the short body: "unreachable", not a timeout.) No wall-clock
        // bound is asserted: under a full parallel run, the answer can take seconds to be resumed. The head must have
        // gone out before the deadline, or the timeout would be a connection's, and prove nothing.
        let server = try CannedServer(["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":"], holdOpen: 20)
        defer { withExtendedLifetime(server) {} }
        let started = ContinuousClock.now
        let result = await ProviderHTTPClient.live(timeout: 2).send(.GET, server.url)
        let sent = try #require(server.firstSentAt, "the server sent its head")
        #expect(sent - started < .seconds(2), "the head went out before the deadline")
        guard case .failure(.timedOut) = result else {
            Issue.record("a body that never finishes times out, got \(result)")
            return
        }
    }

    @Test func aCompressedBodyComesBackAsItWasSent() async throws {
        // Bytes that are not gzip at all, labelled gzip: an inflating client would fail on them; they pass as sent.
        let bytes = "\u{1F}not really gzip"
        let server = try CannedServer(["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/pdf\r\nContent-Encoding: gzip\r\nContent-Length: \(bytes.utf8.count)\r\n\r\n" + bytes])
        defer { withExtendedLifetime(server) {} }
        // The provider proxy's client: the adapters' own may inflate an answer; the proxy passes it on as it came.
        let result = await ProviderHTTPClient.live(timeout: 5, pool: SharedClients.proxyPool).forward(.GET, server.url, headers: [], body: nil)
        guard case .success(let response) = result else {
            Issue.record("the body is passed on as it came, got \(result)")
            return
        }
        #expect(response.body == Data(bytes.utf8))
        #expect(response.header("Content-Encoding") == "gzip")
    }
}

/// A loopback server that answers each connection's request with the next canned bytes, then keeps the connection
/// open `holdOpen` seconds (an answer that never finishes) or closes it. Its thread owns the listening socket and
/// closes it; the server going away only shuts it down, under the same lock, so a socket number the system has
/// given to another test is never touched.
final class CannedServer: Sendable {
    let url: String
    private let state: State

    private final class State: Sendable {
        /// The listening socket while it is open.
        let listener: Mutex<Int32?>
        /// When the first answer went out.
        let sent = Mutex<ContinuousClock.Instant?>(nil)

        init(_ fd: Int32) { listener = Mutex(fd) }
    }

    /// When the first answer went out.
    var firstSentAt: ContinuousClock.Instant? { state.sent.withLock { $0 } }

    init(_ answers: [String], holdOpen: Double = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CannedServerError.socket }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            close(fd)
            throw CannedServerError.socket
        }
        url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/v1/thing"
        let state = State(fd)
        self.state = state
        Thread.detachNewThread {
            defer {
                state.listener.withLock { open in
                    if let fd = open { close(fd) }
                    open = nil
                }
            }
            for answer in answers {
                let connection = accept(fd, nil, nil)
                guard connection >= 0 else { return }
                var request: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while !request.suffix(4).elementsEqual("\r\n\r\n".utf8) {
                    let read = recv(connection, &buffer, buffer.count, 0)
                    guard read > 0 else { break }
                    request += buffer[0..<read]
                }
                let bytes = Array(answer.utf8)
                _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                state.sent.withLock { if $0 == nil { $0 = ContinuousClock.now } }
                if holdOpen > 0 { Thread.sleep(forTimeInterval: holdOpen) }
                close(connection)
            }
        }
    }

    deinit {
        // Wakes an `accept` still waiting; the thread then closes the socket.
        state.listener.withLock { open in
            if let fd = open { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }
}

enum CannedServerError: Error {
    case socket
}
