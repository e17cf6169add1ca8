import Foundation
import GatewayCore
import Hummingbird
import Logging
import Providers

/// `gateway simulate`: every provider module's simulator as a process of its own, under the same paths sandbox mode
/// serves them at (`/sandbox/<provider>/…`, `/sandbox/test-helpers/…`). Several gateway replicas point each provider's
/// `<PROVIDER>_BASE_URL` at it and see one provider, as they would in production: a replica killed with kill -9 no
/// longer takes the provider's state (its users, partnerships and call records) with it.
public enum SimulatorServer {
    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 8090
        /// The simulators as browsers reach them (a login page's links); `http://host:port` when nil.
        public var publicURL: String?
        public var modules: [any ProviderModule]
        /// Each module's settings, as the gateway reads them: the simulator accepts only the credentials it is given.
        public var providers: [ProviderKind: ProviderConfiguration]
        /// Every partner-API call answers this much later (a slow provider).
        public var answerDelayMilliseconds = 0

        public init(modules: [any ProviderModule], providers: [ProviderKind: ProviderConfiguration]) {
            self.modules = modules
            self.providers = providers
        }
    }

    /// The credentials from the environment the gateway reads them from (each module's own variables), so one
    /// environment file serves both. A module without its settings is not simulated; at least one must have them.
    public static func settings(
        environment: [String: String], modules: [any ProviderModule] = ProviderModules.shipped
    ) throws(GatewayConfig.Invalid) -> Settings {
        var env = EnvironmentReader(environment)
        var providers: [ProviderKind: ProviderConfiguration] = [:]
        for module in modules {
            if let configuration = module.configuration(from: &env) { providers[module.kind] = configuration }
        }
        if providers.isEmpty, env.problems.isEmpty {
            env.problem("no provider's settings are set: the simulator accepts only the credentials the gateway is given ("
                + modules.map(\.displayName).joined(separator: ", ") + ")")
        }
        guard env.problems.isEmpty else { throw GatewayConfig.Invalid(problems: env.problems) }
        return Settings(modules: modules, providers: providers)
    }

    public static func build(_ settings: Settings, logger: Logger) async -> Application<RouterResponder<GatewayRequestContext>> {
        let address = ServerAddress(host: settings.host, port: settings.port, publicURL: settings.publicURL)
        var made: [ProviderKind: any ProviderSimulator] = [:]
        for module in settings.modules {
            guard let configuration = settings.providers[module.kind] else { continue }
            let kind = module.kind
            let simulator = module.makeSimulator(configuration, publicBaseURL: { address.publicURL + "/sandbox/\(kind.rawValue)" })
            if settings.answerDelayMilliseconds > 0 { await simulator.setAnswerDelay(milliseconds: settings.answerDelayMilliseconds) }
            made[kind] = simulator
        }
        let simulators = Gateway.Simulators(made)
        let router = Router(context: GatewayRequestContext.self)
        router.middlewares.add(ProblemMiddleware(allowedMethods: AllowedMethods()))
        router.get("healthz") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#))) }
        SandboxController(simulators: simulators).add(to: router)
        SandboxHelpersController(simulators: simulators, modules: settings.modules).add(to: router.group("sandbox/test-helpers"))
        return Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: nil),
            onServerRunning: { channel in
                address.bound(ip: channel.localAddress?.ipAddress, port: channel.localAddress?.port ?? settings.port)
                logger.info("provider simulators listening", metadata: ["address": "\(address.publicURL)"])
            },
            logger: logger
        )
    }
}
