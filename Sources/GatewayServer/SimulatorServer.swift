import Foundation
import GatewayCore
import Hummingbird
import Logging
import Providers

/// `gateway simulate`: both provider simulators as a process of their own, under the same paths sandbox mode serves
/// them at (`/sandbox/wrapp/…`, `/sandbox/magnifinance/…`, `/sandbox/test-helpers/…`). Several gateway replicas point
/// `WRAPP_BASE_URL` and `MAGNIFINANCE_BASE_URL` at it and see one provider, as they would in production: a replica
/// killed with kill -9 no longer takes the provider's state (its users, partnerships and call records) with it.
public enum SimulatorServer {
    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 8090
        /// The simulators as browsers reach them (the Wrapp login page's links); `http://host:port` when nil.
        public var publicURL: String?
        public var wrappPartnerAPIKey: String
        public var magniFinanceEmail: String
        public var magniFinanceToken: String
        public var magniFinancePassword: String
        /// Every partner-API call answers this much later (a slow provider).
        public var answerDelayMilliseconds = 0

        public init(wrappPartnerAPIKey: String, magniFinanceEmail: String, magniFinanceToken: String, magniFinancePassword: String) {
            self.wrappPartnerAPIKey = wrappPartnerAPIKey
            self.magniFinanceEmail = magniFinanceEmail
            self.magniFinanceToken = magniFinanceToken
            self.magniFinancePassword = magniFinancePassword
        }
    }

    /// The credentials from the environment the gateway reads them from (`WRAPP_PARTNER_API_KEY`,
    /// `MAGNIFINANCE_EMAIL`, `MAGNIFINANCE_TOKEN`, `MAGNIFINANCE_PASSWORD`), so one environment file serves both.
    public static func settings(environment: [String: String]) throws(GatewayConfig.Invalid) -> Settings {
        let names = ["WRAPP_PARTNER_API_KEY", "MAGNIFINANCE_EMAIL", "MAGNIFINANCE_TOKEN", "MAGNIFINANCE_PASSWORD"]
        let values = names.map { environment[$0].flatMap { $0.isEmpty ? nil : $0 } }
        let missing = zip(names, values).filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty else {
            throw GatewayConfig.Invalid(problems: missing.map { "\($0) is required: the simulator accepts only the credentials the gateway is given" })
        }
        return Settings(wrappPartnerAPIKey: values[0]!, magniFinanceEmail: values[1]!, magniFinanceToken: values[2]!, magniFinancePassword: values[3]!)
    }

    public static func build(_ settings: Settings, logger: Logger) async -> Application<RouterResponder<GatewayRequestContext>> {
        let address = ServerAddress(host: settings.host, port: settings.port, publicURL: settings.publicURL)
        let wrapp = WrappSimulator(
            partnerAPIKey: settings.wrappPartnerAPIKey, publicBaseURL: { address.publicURL + "/sandbox/wrapp" },
            sendWebhook: WrappSimulator.httpSender()
        )
        let magniFinance = MagniFinanceSimulator(
            email: settings.magniFinanceEmail, token: settings.magniFinanceToken, password: settings.magniFinancePassword
        )
        if settings.answerDelayMilliseconds > 0 {
            await wrapp.setAnswerDelay(milliseconds: settings.answerDelayMilliseconds)
            await magniFinance.setAnswerDelay(milliseconds: settings.answerDelayMilliseconds)
        }
        let router = Router(context: GatewayRequestContext.self)
        router.middlewares.add(ProblemMiddleware(allowedMethods: AllowedMethods()))
        router.get("healthz") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#))) }
        SandboxController(wrapp: wrapp, magniFinance: magniFinance).add(to: router)
        router.group("sandbox/test-helpers").addRoutes(SandboxHelpersController(wrapp: wrapp, magniFinance: magniFinance).endpoints)
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
