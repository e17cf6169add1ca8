import Foundation
import Hummingbird
import HummingbirdTesting

/// A partner app's events endpoint for tests: records every POST to `/events` and answers with scripted
/// statuses (200 once the script runs out).
public actor EventReceiver {
    public struct Received: Sendable {
        public var headers: [String: String]
        public var body: Data

        public var webhookID: String { headers["webhook-id"] ?? "" }
        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    }

    public private(set) var received: [Received] = []
    private var script: [Int] = []

    public init() {}

    /// The next answers, in order.
    public func answer(_ statuses: Int...) {
        script.append(contentsOf: statuses)
    }

    func record(_ received: Received) -> Int {
        self.received.append(received)
        return script.isEmpty ? 200 : script.removeFirst()
    }

    /// Runs `body` with the receiver listening on loopback; gives the URL to post events to.
    public static func run<T: Sendable>(_ body: @Sendable (EventReceiver, String) async throws -> T) async throws -> T {
        let receiver = EventReceiver()
        let router = Router()
        router.post("events") { request, _ in
            var request = request
            let bytes = try await request.collectBody(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let status = await receiver.record(Received(headers: headers, body: Data(bytes.readableBytesView)))
            return Response(status: .init(code: status))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            try await body(receiver, "http://127.0.0.1:\(client.port!)/events")
        }
    }
}
