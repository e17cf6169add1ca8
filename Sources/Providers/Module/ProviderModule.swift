import Foundation
import GatewayCore

/// Everything a provider is, in its own folder under `Sources/Providers/<Name>/`: its id, capabilities and rules (the
/// `ProviderDefinition` the core asks), its configuration, its adapter, its simulator with its sandbox test helpers,
/// and its OpenAPI fragments. The gateway lists modules in one place (`ProviderModules.shipped`); nothing outside a
/// module's folder names it.
public protocol ProviderModule: ProviderDefinition {
    /// Reads the module's environment variables at start. nil: not offered (its secrets are not set). Problems are
    /// added to `env`, all listed at once.
    func configuration(from env: inout EnvironmentReader) -> ProviderConfiguration?

    /// `--sandbox`: the configuration that points the real adapter at the in-process simulator, served under
    /// `/sandbox/<id>/`. `secret(name, prefix)` gives a secret kept in the data directory, made on first use.
    func sandboxConfiguration(secret: (_ name: String, _ prefix: String) -> String) -> ProviderConfiguration

    /// The adapter, talking HTTP through `http` to `baseURL` (resolved per call: the sandbox's is known once bound).
    func makeAdapter(_ configuration: ProviderConfiguration, baseURL: @escaping @Sendable () -> String, http: ProviderHTTPClient) -> any OnboardingProvider

    /// The simulator of `--sandbox` and of the tests; `publicBaseURL` is where it is served (`…/sandbox/<id>`).
    func makeSimulator(_ configuration: ProviderConfiguration, publicBaseURL: @escaping @Sendable () -> String) -> any ProviderSimulator

    /// The simulated operations a fault can be put on (`POST /sandbox/test-helpers/<id>/faults`).
    var faultOperations: [String] { get }

    /// The module's pieces of the OpenAPI document: its credentials schema, its typed-credentials input, examples.
    var openAPI: ProviderOpenAPI { get }
}

/// A provider's settings as read at start: its API's base URL (`<ID>_BASE_URL`) and its own named values (secrets
/// among them; never logged).
public struct ProviderConfiguration: Sendable {
    public var baseURL: String
    /// The variable `baseURL` came from, for messages (`WRAPP_BASE_URL`).
    public var baseURLVariable: String
    public var values: [String: String]

    public init(baseURL: String, baseURLVariable: String, values: [String: String] = [:]) {
        self.baseURL = baseURL
        self.baseURLVariable = baseURLVariable
        self.values = values
    }

    public subscript(_ name: String) -> String { values[name] ?? "" }
}

/// A provider simulator: its HTTP API (served under `/sandbox/<id>/`), its fault script, and the test helpers that do
/// what the customer or the provider would (`/sandbox/test-helpers/<id>/…`).
public protocol ProviderSimulator: AnyObject, Sendable {
    func handle(_ request: SimulatedRequest) async -> SimulatedResponse
    func add(_ fault: SimulatedFault) async
    func clearFaults() async
    var pendingFaults: Int { get async }
    func setAnswerDelay(milliseconds: Int) async
    /// Every Nth call fails at random with a fault class, for chaos tests (`rate` 0 turns it off).
    func setChaos(rate: Double, seed: UInt64, lateDelayMilliseconds: Int, callerTimeoutMilliseconds: Int?) async
    /// How many calls each simulated path has had.
    var calls: [String: Int] { get async }
    nonisolated var sandboxHelpers: [SandboxHelper] { get }
}

/// The module's OpenAPI fragments, as JSON: what `docs/openapi.yaml` says of this provider, checked by the
/// conformance kit (the schemas are valid, the examples match them).
public struct ProviderOpenAPI: Sendable {
    /// `components.schemas` entries, by name: the credentials schema at least.
    public var schemas: [String: JSONValue]
    /// The name of the credentials schema among `schemas` (`WrappCredentials`).
    public var credentialsSchema: String
    /// An example of the credentials as `GET …/credentials` answers them.
    public var credentialsExample: JSONValue
    /// A `POST /v1/tenants` body that the module's rules accept.
    public var createExample: JSONValue

    public init(schemas: [String: JSONValue], credentialsSchema: String, credentialsExample: JSONValue, createExample: JSONValue) {
        self.schemas = schemas
        self.credentialsSchema = credentialsSchema
        self.credentialsExample = credentialsExample
        self.createExample = createExample
    }
}
