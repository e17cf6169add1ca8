import EventDelivery
import Foundation
import GatewayCore
import GatewayStoragePostgres
import Logging
import Providers

/// How long finished records are kept (`GATEWAY_RETENTION_DAYS`): delivered or failed deliveries with their attempts,
/// audit entries and processed webhooks older than this are pruned every hour.
public struct RetentionSettings: Sendable, Equatable {
    public var days: Int

    public init(days: Int = 90) {
        self.days = days
    }

    public var age: TimeInterval { TimeInterval(days) * 86_400 }
}

/// Everything the gateway is configured with, read once at start from the environment (see `docs/operations.md`).
public struct GatewayConfig: Sendable {
    public enum LogFormat: String, Sendable {
        case json
        case text
    }

    public var sandbox: Bool
    public var host: String
    public var port: Int
    public var dataDirectory: String
    /// nil means "http://HOST:PORT", known only once the port is bound.
    public var publicURL: String?
    public var apiKey: String?
    public var adminToken: String?
    /// Newest first; the first one encrypts.
    public var encryptionKeys: [Data]
    public var trustedProxies: [String]
    public var eventsURL: String?
    /// `whsec_…` secrets, current first (comma-separated in the environment, for rotation).
    public var eventsSecrets: [String]
    /// Every provider module this build registers (`ProviderModules.shipped`, plus tests' own).
    public var modules: [any ProviderModule]
    /// The configured providers; one absent is not offered. In sandbox mode they point at the in-process simulators.
    public var providers: [ProviderKind: ProviderConfiguration]
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var providerTimeout: TimeInterval
    public var maxConcurrentCallsPerProvider: Int
    public var schedule: WorkSchedule
    public var workerInterval: TimeInterval
    /// A tenant waiting (pending or action_required) longer than this counts as stuck in `/admin/stats`.
    public var stuckAfter: TimeInterval
    public var retention: RetentionSettings
    /// How long an API request waits for a tenant another actor is talking to its provider about (then `202`/`409`).
    public var leaseWait: TimeInterval = 5
    /// A MagniFinance company that has not approved the partnership request after this long: the tenant is `failed`.
    public var approvalExpiry: TimeInterval = 30 * 86_400
    /// An access token is handed out while more than this much of its life is left; then the provider is logged in to
    /// again (`GATEWAY_ACCESS_TOKEN_MARGIN_SECONDS`, 1 h of a Wrapp JWT's 24 h).
    public var accessTokenMargin: TimeInterval = 3600
    /// Provider proxy calls in flight at once per provider (`GATEWAY_PROXY_MAX_CONCURRENT`); more answer `503`.
    public var proxyMaxConcurrent = 32
    /// The queue the process's log lines go through, when it logs through one (`gateway serve`): its drops are a metric.
    public var logQueue: LogQueue?
    /// Transient failures among a provider's last 20 calls that open its circuit, and its first cool-down.
    public var circuitFailures = 18
    public var circuitCoolDown: TimeInterval = 30
    /// Seconds between a failed event delivery and its next attempt; after the last, it fails for good.
    public var eventsRetrySchedule: [TimeInterval] = DeliverySchedule.delays
    /// Provider call starts per second, per provider (bursts of one second's worth); nil is no limit.
    public var maxCallsPerSecondPerProvider: Double? = 50
    /// How long a create waits for the provider's first answer before answering `202` with the work queued.
    public var createWait: TimeInterval = 10
    /// After a provider call whose outcome is unknown (timeout, reset), how long before the provider is asked again.
    public var settle: TimeInterval = 15
    /// Wrong admin tokens (on `/admin` or the console's sign-in) one address may send in 5 minutes before it is
    /// held back (`GATEWAY_ADMIN_AUTH_FAILURES`).
    public var adminAuthFailures = 5
    /// A client connection with nothing read for this long is closed (`GATEWAY_IDLE_TIMEOUT_SECONDS`).
    public var idleTimeout: TimeInterval = 75
    /// How long an onboarding link works after it was made (`GATEWAY_ONBOARDING_LINK_TTL_SECONDS`, 7 days).
    public var onboardingLinkTTL: TimeInterval = 7 * 86_400
    /// Sandbox only: every simulated partner-API call answers this much later (a slow provider, for benchmarks).
    public var sandboxProviderDelayMilliseconds = 0
    /// Off in tests that step the queue themselves.
    public var runsWorker = true
    /// `GATEWAY_DATABASE_URL`: run on PostgreSQL (several replicas may share it); nil keeps SQLite in the data directory.
    public var postgres: PostgresSettings?

    public var databasePath: String { URL(fileURLWithPath: dataDirectory).appendingPathComponent("gateway.sqlite").path }

    /// Problems that stop the start, all listed at once.
    public struct Invalid: Error, CustomStringConvertible {
        public var problems: [String]
        public var description: String {
            "The gateway cannot start; fix the configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        }
    }

    /// localhost, 127.0.0.0/8 or ::1: traffic that never leaves the machine.
    static func isLoopback(_ host: String?) -> Bool {
        guard let host = host?.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]")) else { return false }
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public static func load(
        environment: [String: String], sandbox: Bool, modules: [any ProviderModule] = ProviderModules.shipped
    ) throws(Invalid) -> GatewayConfig {
        var env = EnvironmentReader(environment)
        let host = env.string("GATEWAY_HOST", default: "127.0.0.1")
        let port = Int(env.number("GATEWAY_PORT", default: 8080, range: 0...65535))
        let dataDirectory = env.string("GATEWAY_DATA_DIR", default: "./data")
        let publicURL = env.url("GATEWAY_PUBLIC_URL")
        let apiKey = env.string("GATEWAY_API_KEY")
        let adminToken = env.string("GATEWAY_ADMIN_TOKEN")
        if let apiKey, apiKey.count < 24 { env.problem("GATEWAY_API_KEY must be at least 24 characters") }
        if let adminToken, adminToken.count < 24 { env.problem("GATEWAY_ADMIN_TOKEN must be at least 24 characters") }
        if let apiKey, apiKey == adminToken { env.problem("GATEWAY_ADMIN_TOKEN must differ from GATEWAY_API_KEY") }

        var keys: [Data] = []
        if let text = env.string("GATEWAY_ENCRYPTION_KEY") {
            for (index, part) in text.split(separator: ",").enumerated() {
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                if let key = Data(base64Encoded: trimmed), key.count == 32 {
                    keys.append(key)
                } else {
                    env.problem("GATEWAY_ENCRYPTION_KEY: key \(index + 1) is not base64 of 32 bytes (make one with: openssl rand -base64 32)")
                }
            }
        } else if !sandbox {
            env.problem("GATEWAY_ENCRYPTION_KEY is required (base64 of 32 random bytes; make one with: openssl rand -base64 32)")
        }

        let trustedProxies = env.string("GATEWAY_TRUSTED_PROXIES", default: "127.0.0.1/32,::1/128")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for block in trustedProxies where CIDR(block) == nil {
            env.problem("GATEWAY_TRUSTED_PROXIES: \"\(block)\" is not an address or CIDR block like 10.0.0.0/8 or ::1/128")
        }
        let eventsURL = env.url("GATEWAY_EVENTS_URL")
        let eventsSecrets = (env.string("GATEWAY_EVENTS_SECRET") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        do {
            _ = try WebhookSigner(secrets: eventsSecrets)
        } catch {
            env.problem("GATEWAY_EVENTS_SECRET: \(error) (make one with: echo whsec_$(openssl rand -base64 32))")
        }
        if eventsURL != nil, eventsSecrets.isEmpty { env.problem("GATEWAY_EVENTS_URL is set but GATEWAY_EVENTS_SECRET is not") }

        // Each module reads its own variables; one without its secrets is not offered.
        var providers: [ProviderKind: ProviderConfiguration] = [:]
        for kind in Set(modules.map(\.kind)) where modules.filter({ $0.kind == kind }).count > 1 {
            env.problem("two provider modules share the id \(kind.rawValue): the registry needs one module per id")
        }
        for module in modules {
            if let configuration = module.configuration(from: &env) { providers[module.kind] = configuration }
        }
        // Without a public URL the webhook URL handed to a provider would be the gateway's own bind address, which the
        // provider cannot reach: onboarding would look fine and no customer's key would ever arrive. (A malformed value
        // is reported above already.)
        let webhookProviders = modules.filter { providers[$0.kind] != nil && $0.capabilities.receivesWebhooks }.map(\.displayName)
        if !sandbox, !webhookProviders.isEmpty, !env.isSet("GATEWAY_PUBLIC_URL") {
            env.problem(
                "GATEWAY_PUBLIC_URL is required when \(webhookProviders.joined(separator: " or ")) is configured: it posts its webhook there, so it must be the "
                    + "address the outside world reaches the gateway at (e.g. https://onboarding.example.com)"
            )
        }

        // Outside the sandbox, what travels to these addresses is secret: providers post customers' keys to the public
        // URL, and provider calls carry the partner's secrets. Plain http is for a loopback host only.
        if !sandbox {
            let secretRoutes: [(String, String?)] = [("GATEWAY_PUBLIC_URL", publicURL)]
                + modules.compactMap { providers[$0.kind] }.map { ($0.baseURLVariable, $0.baseURL) }
            for (name, value) in secretRoutes {
                // A base URL may name an account in a placeholder (`https://{account}.app.invoicexpress.com`).
                let concrete = value?.replacing(/\{[a-z_]+\}/, with: "x")
                guard let concrete, let url = URL(string: concrete), url.scheme?.lowercased() == "http", !Self.isLoopback(url.host) else { continue }
                env.problem("\(name) must be https outside the sandbox: it carries customers' keys and partner secrets (plain http is accepted for a loopback host only)")
            }
        }

        let levelText = env.string("LOG_LEVEL", default: "info").lowercased()
        let level = Logger.Level(rawValue: levelText == "warn" ? "warning" : levelText)
        if level == nil { env.problem("LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical") }
        let formatText = env.string("LOG_FORMAT", default: "json")
        let format = LogFormat(rawValue: formatText)
        if format == nil { env.problem("LOG_FORMAT must be json or text, got \"\(formatText)\"") }

        var schedule = WorkSchedule()
        schedule.firstCheck = env.number("GATEWAY_POLL_FIRST_SECONDS", default: 30, range: 1...86_400)
        schedule.maxCheckInterval = env.number("GATEWAY_POLL_MAX_SECONDS", default: 3600, range: 1...604_800)
        schedule.maintenanceInterval = env.number("GATEWAY_RECHECK_ACTIVE_SECONDS", default: 86_400, range: 60...2_592_000)
        schedule.firstRetry = env.number("GATEWAY_RETRY_FIRST_SECONDS", default: 5, range: 1...86_400)
        schedule.maxRetryInterval = env.number("GATEWAY_RETRY_MAX_SECONDS", default: 3600, range: 1...604_800)
        schedule.maxRetryAfter = env.number("GATEWAY_RETRY_AFTER_CAP_SECONDS", default: Bounds.defaultRetryAfterCap, range: 1...86_400)
        let settle = env.number("GATEWAY_SETTLE_SECONDS", default: 15, range: 0...3600)
        let idleTimeout = env.number("GATEWAY_IDLE_TIMEOUT_SECONDS", default: 75, range: 1...3600)
        let adminAuthFailures = env.wholeNumber("GATEWAY_ADMIN_AUTH_FAILURES", default: 5, range: 1...1_000_000)
        let linkTTL = env.number("GATEWAY_ONBOARDING_LINK_TTL_SECONDS", default: 7 * 86_400, range: 300...7_776_000)
        let timeout = env.number("GATEWAY_PROVIDER_TIMEOUT_SECONDS", default: 10, range: 0.1...120)
        let concurrency = Int(env.number("GATEWAY_PROVIDER_CONCURRENCY", default: 4, range: 1...4096))
        let rate = env.number("GATEWAY_PROVIDER_RATE_LIMIT", default: 50, range: 0...100_000)
        let createWait = env.number("GATEWAY_CREATE_WAIT_SECONDS", default: 10, range: 0...120)
        let sandboxDelay = Int(env.number("GATEWAY_SANDBOX_PROVIDER_DELAY_MS", default: 0, range: 0...60_000))
        if !sandbox, env.isSet("GATEWAY_SANDBOX_PROVIDER_DELAY_MS") {
            env.problem("GATEWAY_SANDBOX_PROVIDER_DELAY_MS slows the simulated providers of --sandbox; unset it outside the sandbox")
        }
        let workerInterval = env.number("GATEWAY_WORKER_INTERVAL_SECONDS", default: 1, range: 0.05...60)
        let stuckAfter = env.number("GATEWAY_STUCK_AFTER_SECONDS", default: 86_400, range: 60...31_536_000)
        let retention = RetentionSettings(days: env.wholeNumber("GATEWAY_RETENTION_DAYS", default: 90, range: 1...3650))
        var postgres: PostgresSettings?
        if let url = env.string("GATEWAY_DATABASE_URL") {
            do { postgres = try PostgresSettings(url: url) } catch { env.problem(error.description) }
        }
        let leaseWait = env.number("GATEWAY_LEASE_WAIT_SECONDS", default: 5, range: 0...60)
        let approvalExpiry = env.number("GATEWAY_APPROVAL_EXPIRY_SECONDS", default: 30 * 86_400, range: 60...31_536_000)
        let accessTokenMargin = env.number("GATEWAY_ACCESS_TOKEN_MARGIN_SECONDS", default: 3600, range: 0...43_200)
        let proxyMaxConcurrent = env.wholeNumber("GATEWAY_PROXY_MAX_CONCURRENT", default: 32, range: 1...1024)
        let circuitFailures = env.wholeNumber("GATEWAY_CIRCUIT_FAILURES", default: 18, range: 1...20)
        let circuitCoolDown = env.number("GATEWAY_CIRCUIT_COOLDOWN_SECONDS", default: 30, range: 1...3600)
        var retrySchedule = DeliverySchedule.delays
        if let text = env.string("GATEWAY_EVENTS_RETRY_SCHEDULE") {
            let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
            if (1...20).contains(values.count), values.allSatisfy({ $0.map { (0.1...604_800).contains($0) } ?? false }) {
                retrySchedule = values.compactMap { $0 }
            } else {
                env.problem("GATEWAY_EVENTS_RETRY_SCHEDULE must be 1 to 20 comma-separated seconds, each 0.1 to 604800 (default \(DeliverySchedule.delays.map { String(Int($0)) }.joined(separator: ",")))")
            }
        }

        guard env.problems.isEmpty, let level, let format else { throw Invalid(problems: env.problems) }
        var config = GatewayConfig(
            sandbox: sandbox, host: host, port: port, dataDirectory: dataDirectory, publicURL: publicURL, apiKey: apiKey,
            adminToken: adminToken, encryptionKeys: keys, trustedProxies: trustedProxies, eventsURL: eventsURL,
            eventsSecrets: eventsSecrets, modules: modules, providers: providers, logLevel: level, logFormat: format,
            providerTimeout: timeout, maxConcurrentCallsPerProvider: concurrency, schedule: schedule, workerInterval: workerInterval,
            stuckAfter: stuckAfter, retention: retention
        )
        config.postgres = postgres
        config.leaseWait = leaseWait
        config.approvalExpiry = approvalExpiry
        config.accessTokenMargin = accessTokenMargin
        config.proxyMaxConcurrent = proxyMaxConcurrent
        config.circuitFailures = circuitFailures
        config.circuitCoolDown = circuitCoolDown
        config.eventsRetrySchedule = retrySchedule
        config.maxCallsPerSecondPerProvider = rate > 0 ? rate : nil
        config.createWait = createWait
        config.settle = settle
        config.idleTimeout = idleTimeout
        config.adminAuthFailures = adminAuthFailures
        config.onboardingLinkTTL = linkTTL
        config.sandboxProviderDelayMilliseconds = sandboxDelay
        return config
    }
}
