import Crypto
import EventDelivery
import Foundation
import GatewayCore
import GatewayStorage
import GatewayStoragePostgres
import Hummingbird
import Logging
import Providers
import ServiceLifecycle
import Synchronization

/// The assembled gateway: configuration, database, providers, service, HTTP application. Built in one place
/// (`Gateway.build`), used by `gateway serve` and by the tests, which reach into it for the store and simulators.
public struct Gateway: Sendable {
    public let config: GatewayConfig
    public let store: any GatewayStore
    public let service: OnboardingService
    public let address: ServerAddress
    public let application: Application<RouterResponder<GatewayRequestContext>>
    /// Sandbox mode: each configured provider's in-process simulator.
    public let simulators: Simulators?
    /// Outbound events, when `GATEWAY_EVENTS_URL` is set.
    public let deliveries: DeliveryDispatcher?

    /// In sandbox mode, fills in missing secrets (kept in the data directory) and points the providers at the simulators.
    public static func prepare(_ config: GatewayConfig) throws -> GatewayConfig {
        var config = config
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        if config.sandbox {
            try SandboxSecrets.loadOrCreate(in: config.dataDirectory, modules: config.modules, random: SystemRandomness()).apply(to: &config)
        }
        return config
    }

    /// The in-process providers of sandbox mode, by provider. Tests pass the same ones to a restarted gateway, as real
    /// providers would outlive it.
    public struct Simulators: Sendable {
        public var byProvider: [ProviderKind: any ProviderSimulator]

        public init(_ byProvider: [ProviderKind: any ProviderSimulator]) {
            self.byProvider = byProvider
        }

        public subscript(_ kind: ProviderKind) -> (any ProviderSimulator)? { byProvider[kind] }

        /// The simulator of one type (`WrappSimulator`), for tests.
        public func first<S: ProviderSimulator>(_ type: S.Type) -> S? {
            byProvider.keys.sorted().lazy.compactMap { self.byProvider[$0] as? S }.first
        }
    }

    public static func build(
        config: GatewayConfig, logger: Logger, clock: any GatewayClock = SystemClock(), migrations: Migrations? = nil,
        simulators: Simulators? = nil
    ) async throws -> Gateway {
        let config = try prepare(config)
        let address = ServerAddress(host: config.host, port: config.port, publicURL: config.publicURL)
        let store = try openStore(config, logger: logger, migrations: migrations)
        let applied: [Int]
        do {
            // A SQLite file served by another process is refused before anything touches it, migrations included.
            try (store as? SQLiteStore)?.takeServingLock()
            applied = try await store.migrate()
        } catch {
            await store.close()
            throw error
        }
        if !applied.isEmpty { logger.info("migrations applied", metadata: ["versions": "\(applied)"]) }
        try await store.recoverFromEarlierRun(now: clock.now())

        // Each adapter's requests feed its provider's circuit breaker; the service is made after the adapters.
        let late = LateService()
        // As many connections to a provider's host as calls may run at once, so the pool is never the tighter cap.
        var live = ProviderHTTPClient.live(timeout: config.providerTimeout, connectionsPerHost: config.maxConcurrentCallsPerProvider)
        live.retryAfterCap = config.schedule.maxRetryAfter
        let observed = { (kind: ProviderKind) in
            live.observed { healthy, operation, reason in
                await late.service?.recordRequest(kind, healthy: healthy, operation: operation, reason: reason)
            }
        }
        // Every configured module: its adapter, and in sandbox mode its simulator.
        var providers: [any OnboardingProvider] = []
        var made: [ProviderKind: any ProviderSimulator] = [:]
        for module in config.modules {
            guard let configuration = config.providers[module.kind] else { continue }
            let base = baseURL(configuration.baseURL, sandbox: config.sandbox, address: address)
            providers.append(module.makeAdapter(configuration, baseURL: base, http: observed(module.kind)))
            if config.sandbox {
                let kind = module.kind
                let simulator = simulators?[kind] ?? module.makeSimulator(configuration, publicBaseURL: { address.publicURL + "/sandbox/\(kind.rawValue)" })
                if config.sandboxProviderDelayMilliseconds > 0 { await simulator.setAnswerDelay(milliseconds: config.sandboxProviderDelayMilliseconds) }
                made[kind] = simulator
            }
        }
        let sandboxSimulators = config.sandbox ? Simulators(made) : nil

        let metrics = GatewayMetrics(logQueue: config.logQueue)
        var settings = OnboardingService.Settings(publicURL: { address.publicURL })
        settings.schedule = config.schedule
        settings.maxConcurrentCallsPerProvider = config.maxConcurrentCallsPerProvider
        settings.maxCallsPerSecondPerProvider = config.maxCallsPerSecondPerProvider
        settings.createWait = config.createWait
        settings.settle = config.settle
        settings.callTimeout = config.providerTimeout
        settings.isStorageOutage = { SQLiteStore.isOutage($0) || PostgresStore.isOutage($0) }
        settings.leaseWait = config.leaseWait
        // Renewed before every provider call, a lease only has to outlast one call and its commit.
        // One call makes up to three HTTP requests (tokens, a submission, tokens).
        settings.workLease = config.providerTimeout * 4 + 30
        settings.circuit.failureThreshold = config.circuitFailures
        settings.circuit.coolDown = config.circuitCoolDown
        settings.approvalExpiry = config.approvalExpiry
        settings.tokenMargin = config.accessTokenMargin
        let service = OnboardingService(
            store: store, registry: ProviderRegistry(modules: config.modules), providers: providers, settings: settings, clock: clock, observer: metrics, sharedCircuits: store.sharedCircuits, logger: logger
        )
        late.service = service

        let linkKey = try await store.gatewaySecret(named: "onboarding-link-key") { Data(SystemRandomness().bytes(32)) }
        let links = OnboardingLinks(key: SymmetricKey(data: linkKey), address: address, clock: clock, ttl: config.onboardingLinkTTL)
        let render = Renderer(links: links)
        var dispatcher: DeliveryDispatcher?
        if let eventsURL = config.eventsURL {
            dispatcher = DeliveryDispatcher(
                store: store, signer: try WebhookSigner(secrets: config.eventsSecrets), sender: EventSender(url: eventsURL),
                render: { event in try render.body(EventResource(event)) }, clock: clock, random: SystemRandomness(), logger: logger,
                schedule: config.eventsRetrySchedule, onResult: { metrics.delivery($0) }
            )
        }
        let partnerKeys = PartnerKeys(environmentKey: config.apiKey, store: store)
        let partnerAuth = PartnerAuthMiddleware(keys: partnerKeys)
        let idempotency = IdempotencyMiddleware(store: store, clock: clock)

        let router = Router(context: GatewayRequestContext.self)
        let allowedMethods = AllowedMethods()
        // The request's scope, its metrics, the console's frame and problem answers, as one level of the chain.
        router.middlewares.add(EdgeMiddleware(
            scopes: RequestScopeMiddleware(
                trusted: config.trustedProxies.compactMap(CIDR.init), providers: Set(config.modules.map(\.kind.rawValue)), accessLog: logger
            ),
            metrics: metrics,
            consoleEnabled: config.adminToken != nil,
            problems: ProblemMiddleware(
                allowedMethods: allowedMethods, isStorageOutage: { SQLiteStore.isOutage($0) || PostgresStore.isOutage($0) }
            )
        ))
        let openAPI = try Data(contentsOf: ShippedFiles.locate("docs/openapi.yaml", setting: "GATEWAY_OPENAPI_PATH", directory: false))
        HealthController(isReady: { await store.isReady() }, openAPI: openAPI).add(to: router)
        router.group("v1/tenants").add(middleware: partnerAuth).add(middleware: idempotency)
            .addRoutes(TenantsController(service: service, render: render, revocations: store, clock: clock).endpoints)
        // Not under the Idempotency-Key middleware: a kept answer would store a token, or a provider's answer, for a day.
        // Its own connection pool, and its own cap on calls at once: a partner's invoicing burst never makes the
        // onboarding's calls (and the circuit breaker that hears them) wait for a connection.
        var proxyHTTP = ProviderHTTPClient.live(timeout: config.providerTimeout, connectionsPerHost: config.proxyMaxConcurrent, pool: SharedClients.proxyPool)
        proxyHTTP.maxResponseBytes = ProxyController.maxAnswerBytes
        router.group("v1/tenants").add(middleware: partnerAuth)
            .addRoutes(ProxyController(service: service, http: proxyHTTP, metrics: metrics, slots: ProxySlots(limit: config.proxyMaxConcurrent)).endpoints)
        router.group("v1/events").add(middleware: partnerAuth)
            .addRoutes(EventsController(service: service, feed: store, render: render).endpoints)
        let signInLimiter = SignInLimiter(limit: config.adminAuthFailures)
        let admin = router.group("admin").add(middleware: AdminAuthMiddleware(
            adminToken: config.adminToken, partnerKeys: partnerKeys, limiter: signInLimiter, audit: store, clock: clock
        ))
        let keysAdmin = AdminKeysController(keys: store, audit: store, clock: clock, ids: ULIDGenerator(), random: SystemRandomness())
        let deliveriesAdmin = AdminDeliveriesController(store: store, audit: store, clock: clock, eventsURL: config.eventsURL)
        let tenantsAdmin = AdminTenantsController(
            service: service, operations: store, deliveries: store, audit: store, render: render, clock: clock,
            stuckAfter: config.stuckAfter, backupDirectory: URL(fileURLWithPath: config.dataDirectory).appendingPathComponent("backups").path
        )
        admin.group("api-keys").addRoutes(keysAdmin.endpoints)
        admin.addRoutes(deliveriesAdmin.endpoints)
        admin.addRoutes(tenantsAdmin.endpoints)
        let consoleSessions = ConsoleSessions()
        router.group("console")
            .add(middleware: ConsoleMiddleware(enabled: config.adminToken != nil, sessions: consoleSessions, clock: clock))
            .addRoutes(ConsoleController(
                service: service, operations: store, deliveries: store, audit: store, tenantsAdmin: tenantsAdmin,
                deliveriesAdmin: deliveriesAdmin, keysAdmin: keysAdmin, keys: store, links: links, sessions: consoleSessions,
                limiter: signInLimiter, adminTokenDigest: config.adminToken.map { SHA256.hash(data: Data($0.utf8)) }, clock: clock,
                stuckAfter: config.stuckAfter
            ).endpoints)
        router.group("webhooks").addRoutes(WebhooksController(service: service, metrics: metrics).endpoints)
        router.get("metrics") { _, _ in
            let text = try await metrics.scrape(from: store, service: service, now: clock.now(), stuckAfter: config.stuckAfter)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        OnboardController(service: service, links: links, revocations: store).add(to: router)
        HomeController().add(to: router)
        if let sandboxSimulators {
            SandboxController(simulators: sandboxSimulators).add(to: router)
            SandboxHelpersController(simulators: sandboxSimulators, modules: config.modules).add(to: router.group("sandbox/test-helpers"))
        }

        allowedMethods.load(router.routes)

        var services: [any Service] = []
        if config.runsWorker {
            services.append(WorkWorker(service: service, interval: config.workerInterval))
            services.append(MaintenanceService(store: store, retention: config.retention, clock: clock, logger: logger))
            if let dispatcher { services.append(DeliveryWorker(dispatcher: dispatcher, interval: config.workerInterval)) }
        }
        let application = Application(
            router: router,
            // A connection with nothing read for this long is closed: idle keep-alives and clients that trickle
            // bytes never pile up. Longer than nginx's upstream keep-alive (60 s), so the proxy closes first.
            server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(config.idleTimeout * 1000)))),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: nil),
            services: services,
            onServerRunning: { channel in
                address.bound(ip: channel.localAddress?.ipAddress, port: channel.localAddress?.port ?? config.port)
                logger.info("gateway listening", metadata: ["address": "\(address.publicURL)"])
            },
            logger: logger
        )
        return Gateway(
            config: config, store: store, service: service, address: address, application: application,
            simulators: sandboxSimulators, deliveries: dispatcher
        )
    }

    /// A provider's base URL: as configured, or (sandbox) a path on the gateway's own loopback address.
    static func baseURL(_ configured: String, sandbox: Bool, address: ServerAddress) -> @Sendable () -> String {
        if sandbox {
            return { address.loopbackURL + configured }
        }
        return { configured }
    }
}

extension Gateway {
    /// How the API shows a tenant (what `Renderer` writes, without the onboarding link): the stores keep it rendered
    /// beside each tenant, and serve reads from it. A change of the shape changes its version.
    static let tenantShape: any TenantRepresentation = TenantJSON.Representation()

    /// The database the configuration names: PostgreSQL when `GATEWAY_DATABASE_URL` is set, else SQLite in the data
    /// directory. Not migrated yet. `migrations` replaces the shipped SQLite migrations (tests).
    static func openStore(_ config: GatewayConfig, logger: Logger, migrations: Migrations? = nil) throws -> any GatewayStore {
        let box = SecretBox(keys: config.encryptionKeys)
        if let postgres = config.postgres {
            logger.info("database: PostgreSQL", metadata: ["database": "\(postgres.redacted)"])
            return PostgresStore(
                settings: postgres, box: box, migrations: try Migrations(folder: Migrations.locate().appendingPathComponent("postgres")),
                deliversEvents: config.eventsURL != nil, representation: Self.tenantShape, logger: logger
            )
        }
        return try SQLiteStore(
            path: config.databasePath, box: box, migrations: try migrations ?? Migrations(folder: Migrations.locate()),
            deliversEvents: config.eventsURL != nil, representation: Self.tenantShape
        )
    }

    /// `gateway rotate-key`: re-seals every stored secret under the newest configured key.
    public static func rotateKey(_ config: GatewayConfig, logger: Logger = Logger(label: "gateway")) async throws -> [String: Int] {
        let store: any GatewayStore = if config.postgres != nil {
            try openStore(config, logger: logger)
        } else {
            try SQLiteStore.open(path: config.databasePath, box: SecretBox(keys: config.encryptionKeys))
        }
        return try await closing(store) { try await $0.resealWithNewestKey(batchSize: 200) }
    }

    /// `gateway migrate`: applies what is missing and exits; needs no secrets.
    public static func migrate(_ config: GatewayConfig, logger: Logger = Logger(label: "gateway")) async throws -> [Int] {
        if config.postgres != nil {
            return try await closing(try openStore(config, logger: logger)) { try await $0.migrate() }
        }
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        return try await SQLiteStore.migrate(path: config.databasePath, migrations: Migrations(folder: Migrations.locate()))
    }

    /// Runs `body` with the store, then closes it, whether `body` threw or not.
    static func closing<T: Sendable>(_ store: any GatewayStore, _ body: (any GatewayStore) async throws -> T) async throws -> T {
        do {
            let value = try await body(store)
            await store.close()
            return value
        } catch {
            await store.close()
            throw error
        }
    }
}

/// The service, for the adapters' HTTP clients that are made before it.
final class LateService: Sendable {
    private let box = Mutex<OnboardingService?>(nil)

    var service: OnboardingService? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}

extension Gateway {
    /// `gateway import-sqlite`: copies a SQLite deployment's file (at rest: its gateway stopped, or a backup) into the
    /// PostgreSQL database the configuration names, after checking that the configured keys open its secrets.
    /// Returns the rows copied per table.
    public static func importSQLite(
        _ config: GatewayConfig, from path: String, logger: Logger = Logger(label: "gateway"), batchSize: Int = 500,
        progress: @escaping @Sendable (String, Int) -> Void = { _, _ in }
    ) async throws -> [String: Int] {
        guard config.postgres != nil else {
            throw SQLiteTableSource.Refusal(description: "Set GATEWAY_DATABASE_URL to the PostgreSQL database to import into.")
        }
        let source = try SQLiteTableSource.open(path: path, migrations: Migrations(folder: Migrations.locate()))
        _ = try await source.checkSealedValues(box: SecretBox(keys: config.encryptionKeys))
        guard let store = try openStore(config, logger: logger) as? PostgresStore else {
            throw SQLiteTableSource.Refusal(description: "GATEWAY_DATABASE_URL does not name a PostgreSQL database.")
        }
        return try await closing(store) { _ in
            try await store.migrate()
            return try await store.importData(from: source, batchSize: batchSize, progress: progress)
        }
    }
}
