import Foundation

/// A request to a provider simulator, free of any server framework so the simulators stay beside their adapters.
public struct SimulatedRequest: Sendable {
    public var method: String
    /// The path below the simulator's mount point, e.g. `/external_login`.
    public var path: String
    public var query: [String: String]
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: Data

    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], body: Data = Data()) {
        self.method = method.uppercased()
        self.path = path
        self.query = query
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
        self.body = body
    }

    func jsonObject() -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: body) as? [String: Any]
    }
}

/// A simulator's answer.
public struct SimulatedResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func json(_ status: Int, _ object: Any, headers: [String: String] = [:]) -> SimulatedResponse {
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return SimulatedResponse(status: status, headers: headers.merging(["Content-Type": "application/json"]) { $1 }, body: body)
    }

    static func html(_ status: Int, _ page: String) -> SimulatedResponse {
        SimulatedResponse(status: status, headers: ["Content-Type": "text/html; charset=utf-8"], body: Data(page.utf8))
    }

    static let notFound = SimulatedResponse.json(404, ["error": "not found"])
}

/// A scripted misbehaviour for the next calls of one operation: how the unhappy variants of `providers.md` are
/// produced on demand (through a control endpoint or directly from tests).
public struct SimulatedFault: Sendable, Codable, Equatable {
    /// How the error body looks.
    public enum Style: String, Sendable, Codable {
        case message          // {"message": "..."}
        case error            // {"error": "..."}
        case errorsMessage    // {"errors": [{"message": "..."}]}
        case errorsString     // {"errors": ["..."]}
        case html             // an HTML error page
        case envelopeError    // MagniFinance: an error envelope with HTTP `status` (use 200 for "error inside 200")
        case garbage          // not JSON at all
        case lateSuccess = "late_success"  // handled normally, answered after `delay_ms`: the outcome is lost to a timeout
    }

    public var operation: String
    public var status: Int
    public var style: Style
    public var times: Int
    public var retryAfter: Int?
    /// Wait this long before answering (to provoke timeouts).
    public var delayMilliseconds: Int?

    public init(operation: String, status: Int, style: Style = .message, times: Int = 1, retryAfter: Int? = nil, delayMilliseconds: Int? = nil) {
        self.operation = operation
        self.status = status
        self.style = style
        self.times = times
        self.retryAfter = retryAfter
        self.delayMilliseconds = delayMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case operation, status, style, times
        case retryAfter = "retry_after"
        case delayMilliseconds = "delay_ms"
    }

    func response(magniFinanceEnvelope: [String: Any]? = nil) -> SimulatedResponse {
        let headers = retryAfter.map { ["Retry-After": String($0)] } ?? [:]
        let text = "simulated failure"
        var response: SimulatedResponse
        switch style {
        case .message: response = .json(status, ["message": text], headers: headers)
        case .error: response = .json(status, ["error": text], headers: headers)
        case .errorsMessage: response = .json(status, ["errors": [["message": text]]], headers: headers)
        case .errorsString: response = .json(status, ["errors": [text]], headers: headers)
        case .html: response = .html(status, "<html><body><h1>\(status) Internal Server Error</h1></body></html>")
        case .envelopeError: response = .json(status, magniFinanceEnvelope ?? ["IsError": true], headers: headers)
        case .garbage, .lateSuccess: response = SimulatedResponse(status: status, headers: ["Content-Type": "application/json"], body: Data("{\"oops".utf8))
        }
        response.headers.merge(headers) { $1 }
        return response
    }
}

/// The queue of scripted faults, shared by both simulators.
struct FaultScript {
    private var faults: [SimulatedFault] = []

    mutating func add(_ fault: SimulatedFault) {
        faults.append(fault)
    }

    /// `POST /_control/faults` of either simulator: the body is one fault.
    mutating func add(from request: SimulatedRequest) -> SimulatedResponse {
        guard let fault = try? JSONDecoder().decode(SimulatedFault.self, from: request.body) else {
            return .json(400, ["error": "body must be a fault: operation, status, style, times, retry_after, delay_ms"])
        }
        add(fault)
        return .json(200, ["ok": true])
    }

    mutating func take(_ operation: String) -> SimulatedFault? {
        guard let index = faults.firstIndex(where: { $0.operation == operation }) else { return nil }
        let fault = faults[index]
        if fault.times <= 1 { faults.remove(at: index) } else { faults[index].times -= 1 }
        return fault
    }

    mutating func clear() {
        faults.removeAll()
    }
}
