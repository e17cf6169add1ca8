import AsyncHTTPClient
import Foundation
import GatewayCore
import GatewayServer
import GatewayStorage
import GatewayStoragePostgres
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Providers

/// The database a test gateway runs on. PostgreSQL needs `GATEWAY_TEST_POSTGRES_URL`; without it, tests that run on
/// both leave PostgreSQL out, except under CI, where its absence fails them.
public enum TestDatabase: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    public static var all: [TestDatabase] {
        SandboxHarness.postgresURL != nil || ProcessInfo.processInfo.environment["CI"] != nil ? [.sqlite, .postgres] : [.sqlite]
    }
}

/// A real gateway in sandbox mode on a live loopback port, with its data in a temporary directory, the worker
/// switched off (tests step the queue with `step()`; `worker: true` runs the real one) and a clock tests move by hand.
public struct SandboxHarness: Sendable {
    public let gateway: Gateway
    public let client: any TestClientProtocol
    public let clock: TestClock
    public let directory: URL
    public let logs: LogCapture

    public var apiKey: String { gateway.config.apiKey ?? "" }
    public var store: any GatewayStore { gateway.store }
    /// The simulator of one provider module, by its type (`simulator(WrappSimulator.self)`).
    public func simulator<S: ProviderSimulator>(_ type: S.Type) -> S { gateway.simulators!.first(type)! }

    /// The simulator of one provider, by its id.
    public func simulator(_ kind: ProviderKind) -> any ProviderSimulator { gateway.simulators![kind]! }

    /// Builds the gateway over `directory` (a new temporary one by default) and runs `body` while it serves.
    public static func run<T: Sendable>(
        database: TestDatabase = .sqlite, directory: URL? = nil, clock: TestClock = TestClock(), logs: LogCapture = LogCapture(),
        environment: [String: String] = [:], simulators: Gateway.Simulators? = nil, worker: Bool = false,
        modules: [any ProviderModule] = ProviderModules.shipped,
        _ body: @Sendable (SandboxHarness) async throws -> T
    ) async throws -> T {
        let directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("gateway-test-\(UUID().uuidString)")
        var env = ["GATEWAY_DATA_DIR": directory.path, "GATEWAY_PORT": "0", "GATEWAY_PROVIDER_TIMEOUT_SECONDS": "2"]
        if database == .postgres { env.merge(try postgresEnvironment(directory: directory)) { $1 } }
        env.merge(environment) { $1 }
        var config = try GatewayConfig.load(environment: env, sandbox: true, modules: modules)
        config.runsWorker = worker
        let gateway = try await Gateway.build(config: config, logger: logs.logger(), clock: clock, simulators: simulators)
        do {
            let value = try await gateway.application.test(.live) { client in
                try await body(SandboxHarness(gateway: gateway, client: client, clock: clock, directory: directory, logs: logs))
            }
            if config.postgres != nil { await gateway.store.close() }
            return value
        } catch {
            if config.postgres != nil { await gateway.store.close() }
            throw error
        }
    }

    public struct NoTestPostgres: Error, CustomStringConvertible {
        public var description: String { "GATEWAY_TEST_POSTGRES_URL is not set: export the URL scripts/postgres.sh start prints" }
    }

    /// `GATEWAY_TEST_POSTGRES_URL` (a server tests may use), when set.
    public static var postgresURL: String? {
        ProcessInfo.processInfo.environment["GATEWAY_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The environment that runs a gateway on the test PostgreSQL server, in a schema of its own named after
    /// `directory` (made at start): a gateway restarted over the same directory finds its data again.
    public static func postgresEnvironment(directory: URL) throws -> [String: String] {
        guard let url = postgresURL else { throw NoTestPostgres() }
        let digest = directory.standardizedFileURL.path.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        let schema = "t_" + String(digest, radix: 16)
        return ["GATEWAY_DATABASE_URL": url + (url.contains("?") ? "&" : "?") + "search_path=\(schema)&pool_size=8"]
    }

    /// Waits (up to `seconds`, polling) until `condition` holds; false when it never did.
    public func eventually(_ seconds: Double = 10, _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// Runs the work that is due now; returns how many items ran.
    @discardableResult
    public func step() async -> Int {
        await gateway.service.runDueWork(limit: 100)
    }

    /// Moves the clock on and runs what became due.
    @discardableResult
    public func advance(_ seconds: TimeInterval) async -> Int {
        clock.advance(seconds)
        return await step()
    }

    /// One HTTP call; `key: nil` sends no Authorization header.
    public func call(
        _ method: HTTPRequest.Method, _ path: String, key: String? = "", json: String? = nil, headers: HTTPFields = [:]
    ) async throws -> HTTPResult {
        var headers = headers
        let key = key == "" ? apiKey : key
        if let key { headers[.authorization] = "Bearer \(key)" }
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: Data(response.body.readableBytesView))
    }

    /// One HTTP call on its own connection (the test client shares one), for requests that must really overlap.
    public func callOnNewConnection(
        _ method: HTTPRequest.Method, _ path: String, json: String? = nil, headers: [String: String] = [:]
    ) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: gateway.address.loopbackURL + path)
        request.method = .init(rawValue: method.rawValue)
        if !headers.keys.contains(where: { $0.lowercased() == "authorization" }) {
            request.headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 22)
        var fields = HTTPFields()
        for header in response.headers { if let name = HTTPField.Name(header.name) { fields[name] = header.value } }
        return HTTPResult(status: Int(response.status.code), headers: fields, body: Data(body.readableBytesView))
    }

    /// The bytes of every database file (main file and WAL), after a checkpoint.
    public func databaseBytes() async throws -> Data {
        if let postgres = store as? PostgresStore { return Data(try await postgres.everyRowAsText().utf8) }
        try await (store as? SQLiteStore)?.checkpoint()
        var bytes = Data()
        for suffix in ["", "-wal", "-shm"] {
            if let data = FileManager.default.contents(atPath: gateway.config.databasePath + suffix) { bytes.append(data) }
        }
        return bytes
    }
}

/// A response, with its body as a JSON object when it is one.
public struct HTTPResult: Sendable {
    public var status: Int
    public var headers: HTTPFields
    public var body: Data

    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    public var text: String { String(decoding: body, as: UTF8.self) }

    public subscript(_ key: String) -> Any? { json[key] }

    /// A value at a dotted path, e.g. `next_action.url`.
    public func value(_ path: String) -> Any? {
        var current: Any? = json
        for part in path.split(separator: ".") {
            current = (current as? [String: Any])?[String(part)]
        }
        return current
    }

    public func string(_ path: String) -> String? { value(path) as? String }
}
