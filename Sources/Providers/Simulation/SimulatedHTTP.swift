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
    /// The connection drops mid-answer: the server sends the head and the first bytes of `body`, then closes the
    /// connection without completing the response (the caller sees a reset, not an answer).
    public var resetsConnection = false

    public init(status: Int, headers: [String: String] = [:], body: Data = Data(), resetsConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.resetsConnection = resetsConnection
    }

    /// A connection that is closed before the answer is complete.
    public static let reset = SimulatedResponse(
        status: 200, headers: ["Content-Type": "application/json"], body: Data("{\"data\": {\"type\": \"".utf8), resetsConnection: true
    )

    public static func json(_ status: Int, _ object: Any, headers: [String: String] = [:]) -> SimulatedResponse {
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
        case reset            // the connection drops before the answer is complete (nothing carried out)
    }

    public var operation: String
    public var status: Int
    public var style: Style
    public var times: Int
    public var retryAfter: Int?
    /// Sent as `Retry-After` exactly as written (over `retryAfter`): a provider's garbage, `inf`, a date in 9999.
    public var retryAfterHeader: String?
    /// Wait this long before answering (to provoke timeouts).
    public var delayMilliseconds: Int?

    public init(
        operation: String, status: Int, style: Style = .message, times: Int = 1, retryAfter: Int? = nil, retryAfterHeader: String? = nil,
        delayMilliseconds: Int? = nil
    ) {
        self.retryAfterHeader = retryAfterHeader
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
        case retryAfterHeader = "retry_after_header"
        case delayMilliseconds = "delay_ms"
    }

    /// The fault's answer (a late success is the real answer, late: the simulator routes it itself).
    public func response(magniFinanceEnvelope: [String: Any]? = nil) -> SimulatedResponse {
        let headers = (retryAfterHeader ?? retryAfter.map { String($0) }).map { ["Retry-After": $0] } ?? [:]
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
        case .reset: return .reset
        }
        response.headers.merge(headers) { $1 }
        return response
    }
}

/// The queue of scripted faults, shared by every simulator (a module's own among them).
public struct FaultScript: Sendable {
    private var faults: [SimulatedFault] = []

    public init() {}

    public mutating func add(_ fault: SimulatedFault) {
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

    /// The next fault scripted for `operation`, if any; it is used up.
    public mutating func take(_ operation: String) -> SimulatedFault? {
        guard let index = faults.firstIndex(where: { $0.operation == operation }) else { return nil }
        let fault = faults[index]
        if fault.times <= 1 { faults.remove(at: index) } else { faults[index].times -= 1 }
        return fault
    }

    public mutating func clear() {
        faults.removeAll()
    }

    /// Scripted faults not served yet (a fault for several calls counts once per call left).
    public var pending: Int { faults.reduce(0) { $0 + max($1.times, 1) } }
}

// MARK: - Random faults ("chaos")

/// SplitMix64: a tiny seeded generator, so a run of random faults can be reproduced from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random faults on a share of a simulator's partner-API calls (`POST /_control/chaos`, or `setChaos` from tests).
/// Each call fails with probability `rate`, in one of the ways of `Kind`, chosen uniformly.
struct RandomFaults {
    enum Kind: String, CaseIterable, Sendable {
        case serverError = "server_error"            // 500 with a JSON error body (MagniFinance: its envelope)
        case htmlPage = "html_page"                  // 502 with an HTML page, as a proxy in front would answer
        case garbage                                 // 200 whose body is not JSON
        case tooManyRequests = "too_many_requests"   // 429 with Retry-After: 1
        case connectionReset = "connection_reset"    // the connection drops before the answer is complete
        case lateSuccess = "late_success"            // carried out for real, answered after `lateDelayMilliseconds`
    }

    /// The body of `POST /_control/chaos`.
    struct Settings: Decodable {
        var rate: Double
        var seed: UInt64?
        var lateDelayMilliseconds: Int?
        var callerTimeoutMilliseconds: Int?

        enum CodingKeys: String, CodingKey {
            case rate, seed
            case lateDelayMilliseconds = "late_delay_ms"
            case callerTimeoutMilliseconds = "caller_timeout_ms"
        }
    }

    private(set) var rate: Double = 0
    private(set) var seed: UInt64 = 0
    private(set) var lateDelayMilliseconds = 2500
    /// How long the caller waits for an answer, if known: a late success stops counting as "in flight" for the
    /// concurrency records after this long (the caller has given up by then), though it is still answered late.
    private(set) var callerTimeoutMilliseconds: Int?
    private var generator = SplitMix64(seed: 0)
    /// Faults drawn so far (by kind), since the simulator started.
    private(set) var drawn: [Kind: Int] = [:]

    var isOn: Bool { rate > 0 }

    mutating func configure(rate: Double, seed: UInt64, lateDelayMilliseconds: Int, callerTimeoutMilliseconds: Int?) {
        self.rate = min(max(rate, 0), 1)
        self.seed = seed
        self.lateDelayMilliseconds = max(0, lateDelayMilliseconds)
        self.callerTimeoutMilliseconds = callerTimeoutMilliseconds.map { max(0, $0) }
        generator = SplitMix64(seed: seed)
    }

    /// `POST /_control/chaos`: `{"rate": 0.5, "seed": 42, "late_delay_ms": 2500, "caller_timeout_ms": 1000}`;
    /// `{"rate": 0}` switches random faults off.
    mutating func configure(from request: SimulatedRequest) -> SimulatedResponse {
        guard let settings = try? JSONDecoder().decode(Settings.self, from: request.body), settings.rate.isFinite,
            (0.0...1.0).contains(settings.rate), (0...120_000).contains(settings.lateDelayMilliseconds ?? 0),
            (0...120_000).contains(settings.callerTimeoutMilliseconds ?? 0)
        else {
            return .json(400, [
                "error": "body is {\"rate\": 0...1, \"seed\": unsigned integer, \"late_delay_ms\": 0...120000, \"caller_timeout_ms\": 0...120000}",
            ])
        }
        configure(
            rate: settings.rate, seed: settings.seed ?? 1, lateDelayMilliseconds: settings.lateDelayMilliseconds ?? 2500,
            callerTimeoutMilliseconds: settings.callerTimeoutMilliseconds
        )
        return .json(200, summary)
    }

    var summary: [String: Any] {
        var faults: [String: Int] = [:]
        for (kind, count) in drawn { faults[kind.rawValue] = count }
        var object: [String: Any] = [
            "rate": rate, "seed": NSNumber(value: seed), "late_delay_ms": lateDelayMilliseconds, "faults_by_kind": faults,
        ]
        if let callerTimeoutMilliseconds { object["caller_timeout_ms"] = callerTimeoutMilliseconds } else { object["caller_timeout_ms"] = NSNull() }
        return object
    }

    /// Whether this call fails, and how. Nil when chaos is off or the call is spared.
    mutating func draw() -> Kind? {
        guard rate > 0 else { return nil }
        guard Double.random(in: 0..<1, using: &generator) < rate else { return nil }
        let kind = Kind.allCases.randomElement(using: &generator) ?? .serverError
        drawn[kind, default: 0] += 1
        return kind
    }

    /// The part of a late success's delay during which the caller still waits, and the rest.
    /// How long a late success still counts as in flight, and how much longer its answer waits after that. The
    /// caller's timeout runs from the start of its call, so time the simulator already spent on it (a slow
    /// provider's answer delay) comes off: else the call would count as in flight after the caller gave up.
    func lateDelaySplit(alreadySpent: Duration = .zero) -> (waited: Int, rest: Int) {
        let spent = Int(alreadySpent.components.seconds) * 1000 + Int(alreadySpent.components.attoseconds / 1_000_000_000_000_000)
        let waited = max(0, min(lateDelayMilliseconds, callerTimeoutMilliseconds ?? lateDelayMilliseconds) - spent)
        return (waited, max(0, lateDelayMilliseconds - waited))
    }

    /// The answer for a fault other than `.lateSuccess` (which is the real answer, late). `errorBody` is the
    /// provider's own error shape where it has one (MagniFinance's envelope).
    func response(_ kind: Kind, errorBody: [String: Any]? = nil, tooManyRequestsBody: [String: Any]? = nil) -> SimulatedResponse {
        switch kind {
        case .serverError:
            return .json(500, errorBody ?? ["message": "Internal Server Error (simulated)"])
        case .htmlPage:
            return .html(502, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
        case .garbage:
            return SimulatedResponse(status: 200, headers: ["Content-Type": "application/json"], body: Data("{\"oops".utf8))
        case .tooManyRequests:
            return .json(429, tooManyRequestsBody ?? ["message": "Too many requests (simulated)"], headers: ["Retry-After": "1"])
        case .connectionReset, .lateSuccess:
            return .reset
        }
    }
}

/// Calls in flight per key (a Wrapp user, a MagniFinance company), and the most ever in flight at once for one key.
struct InFlightCalls {
    private var current: [String: Int] = [:]
    private(set) var maximum = 0
    /// How often a call arrived while another for the same key was still in flight, by key.
    private(set) var overlaps: [String: Int] = [:]

    mutating func begin(_ key: String?) {
        guard let key else { return }
        let count = current[key, default: 0] + 1
        current[key] = count
        if count > 1 { overlaps[key, default: 0] += 1 }
        maximum = max(maximum, count)
    }

    mutating func end(_ key: String?) {
        guard let key, let count = current[key] else { return }
        current[key] = count > 1 ? count - 1 : nil
    }
}
