import Foundation
import Logging

/// The application's use cases: onboarding, status, credentials and webhooks. Turns every input into an
/// observation, lets `TenantStateMachine` decide, and commits each decision in one store transaction.
public final class OnboardingService: Sendable {
    public struct Settings: Sendable {
        /// The gateway as the outside world reaches it; webhook URLs are built from it.
        public var publicURL: @Sendable () -> String
        public var schedule = WorkSchedule()
        /// How long a claimed piece of work stays reserved for the worker that claimed it.
        public var workLease: TimeInterval = 120
        public var maxConcurrentCallsPerProvider = 4
        public var circuit = ProviderHealth.Settings()

        public init(publicURL: @escaping @Sendable () -> String) {
            self.publicURL = publicURL
        }
    }

    let store: any TenantStore
    let providers: [ProviderKind: any OnboardingProvider]
    let gates: [ProviderKind: ConcurrencyGate]
    /// Circuit breakers and recent errors, per provider.
    public let health: [ProviderKind: ProviderHealth]
    let observer: any ProviderCallObserver
    let clock: any GatewayClock
    let ids: any IDGenerator
    let random: any Randomness
    let settings: Settings
    let logger: Logger

    public init(
        store: any TenantStore, providers: [any OnboardingProvider], settings: Settings,
        clock: any GatewayClock = SystemClock(), ids: any IDGenerator = ULIDGenerator(),
        random: any Randomness = SystemRandomness(), observer: (any ProviderCallObserver)? = nil, logger: Logger
    ) {
        self.health = Dictionary(providers.map { ($0.kind, ProviderHealth(settings: settings.circuit)) }, uniquingKeysWith: { first, _ in first })
        self.observer = observer ?? NoProviderCallObserver()
        self.store = store
        self.providers = Dictionary(providers.map { ($0.kind, $0) }, uniquingKeysWith: { first, _ in first })
        self.gates = Dictionary(providers.map { ($0.kind, ConcurrencyGate(limit: settings.maxConcurrentCallsPerProvider)) }, uniquingKeysWith: { first, _ in first })
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.random = random
        self.logger = logger
    }

    public var configuredProviders: [ProviderKind] { ProviderKind.allCases.filter { providers[$0] != nil } }

    // MARK: - Reading

    public func tenant(id: String) async throws(OnboardingError) -> Tenant {
        guard let tenant = try await storage({ try await store.tenant(id: id) }) else { throw .tenantNotFound }
        return tenant
    }

    public func tenants(_ query: TenantQuery) async throws(OnboardingError) -> Page<Tenant> {
        try await storage { try await store.tenants(query) }
    }

    public func events(tenantID: String?, after: Int64?, limit: Int) async throws(OnboardingError) -> Page<TenantEvent> {
        if let tenantID { _ = try await tenant(id: tenantID) }
        return try await storage { try await store.events(tenantID: tenantID, after: after, limit: limit) }
    }

    /// The tenant's credentials, decrypted. Every read is audited with the actor that read them.
    public func credentials(tenantID: String, actor: Actor) async throws(OnboardingError) -> ProviderCredentials {
        _ = try await tenant(id: tenantID)
        guard let credentials = try await storage({ try await store.credentials(tenantID: tenantID) }) else {
            throw .credentialsNotAvailable
        }
        let entry = AuditEntry(at: clock.now(), actor: actor, action: "credentials.read", tenantID: tenantID)
        try await storage { try await store.audit(entry) }
        return credentials
    }

    // MARK: - Shared machinery

    func provider(for kind: ProviderKind) throws(OnboardingError) -> any OnboardingProvider {
        guard let provider = providers[kind] else { throw .providerNotConfigured(kind) }
        return provider
    }

    /// Every provider call goes through here: the circuit breaker (an open circuit answers `whenOpen` without
    /// calling), the concurrency cap, and the observer. `failure` names a transient failure, nil for success.
    func call<T: Sendable>(
        _ kind: ProviderKind, _ operation: String, whenOpen: @Sendable (TimeInterval?) -> T,
        failure: @Sendable (T) -> String?, _ body: @Sendable () async -> T
    ) async -> T {
        let health = health[kind]
        if let health, !(await health.admit(now: clock.now())) {
            observer.providerCall(provider: kind, operation: operation, outcome: "short_circuited", duration: 0)
            return whenOpen(await health.retryAfter(now: clock.now()))
        }
        let started = ContinuousClock.now
        let result = if let gate = gates[kind] { await gate.run(body) } else { await body() }
        let elapsed = ContinuousClock.now - started
        let reason = failure(result)
        await health?.record(success: reason == nil, now: clock.now(), operation: operation, reason: reason)
        observer.providerCall(
            provider: kind, operation: operation, outcome: reason == nil ? "ok" : "unavailable",
            duration: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        )
        return result
    }

    /// A provider call that answers a `ProviderAnswer`.
    func ask(_ kind: ProviderKind, _ operation: String, _ body: @Sendable () async -> ProviderAnswer) async -> ProviderAnswer {
        await call(kind, operation, whenOpen: { retryAfter in
            ProviderAnswer(.unavailable(reason: "\(kind.rawValue) is failing; calls are paused for a while (circuit open)", retryAfter: retryAfter))
        }, failure: { answer in
            if case .unavailable(let reason, _) = answer.finding { return reason }
            return nil
        }, body)
    }

    /// A credential check with the provider.
    func verify(_ kind: ProviderKind, _ body: @Sendable () async -> CredentialCheck) async -> CredentialCheck {
        await call(kind, "verify", whenOpen: { retryAfter in
            .unavailable(reason: "\(kind.rawValue) is failing; calls are paused for a while (circuit open)", retryAfter: retryAfter)
        }, failure: { check in
            if case .unavailable(let reason, _) = check { return reason }
            return nil
        }, body)
    }

    func providerView(of tenant: Tenant) async throws(OnboardingError) -> ProviderTenant {
        var webhookURL: String?
        if tenant.provider == .wrapp, let token = try await storage({ try await store.webhookToken(tenantID: tenant.id) }) {
            webhookURL = Self.webhookURL(publicURL: settings.publicURL(), provider: tenant.provider, token: token)
        }
        return ProviderTenant(
            tenantID: tenant.id, externalID: tenant.externalID, profile: tenant.profile, state: tenant.state,
            nextAction: tenant.nextAction, hasCredentials: tenant.credentialsAvailable, webhookURL: webhookURL
        )
    }

    static func webhookURL(publicURL: String, provider: ProviderKind, token: String) -> String {
        let base = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        return "\(base)/webhooks/\(provider.rawValue)/\(token)"
    }

    /// Feeds a provider's answer to the state machine and commits the decision.
    @discardableResult
    func apply(_ answer: ProviderAnswer, tenantID: String, source: ChangeSource, at: Date) async throws(OnboardingError) -> Tenant {
        try await commit(tenantID: tenantID) { context in
            let newCredentials = answer.credentials.flatMap { $0 == context.credentials ? nil : $0 }
            let observation = Observation.finding(answer.finding, source: source, at: at, bringsNewCredentials: newCredentials != nil)
            return (try TenantStateMachine.decide(context.tenant, observation), newCredentials, source)
        }
    }

    /// Runs a decision inside one store transaction and writes the tenant, its events, credentials and work.
    func commit(
        tenantID: String,
        _ decide: @escaping @Sendable (TenantContext) throws -> (Decision, ProviderCredentials?, ChangeSource),
        adjust: @escaping @Sendable (inout TenantUpdate) -> Void = { _ in }
    ) async throws(OnboardingError) -> Tenant {
        let now = clock.now()
        let updated: Tenant?
        do {
            updated = try await store.update(tenantID: tenantID) { [self] context in
                let (decision, credentials, source) = try decide(context)
                var update = update(from: decision, context: context, credentials: credentials, source: source, now: now)
                adjust(&update)
                return update
            }
        } catch let error as OnboardingError {
            throw error
        } catch let error as TransitionError {
            guard case .notAllowed(let command, let state) = error else { throw .storageFailure }
            throw .invalidState(state, action: command == .retry ? "retried" : "offboarded")
        } catch {
            logger.error("tenant update failed", metadata: ["tenant.id": "\(tenantID)", "error": "\(String(describing: error))"])
            throw .storageFailure
        }
        guard let updated else { throw .tenantNotFound }
        return updated
    }

    func update(from decision: Decision, context: TenantContext, credentials: ProviderCredentials?, source: ChangeSource, now: Date) -> TenantUpdate {
        let events = decision.events.map { planned in
            TenantEvent(
                id: ids.make(prefix: "evt", at: now), tenantID: decision.tenant.id, type: planned.type,
                createdAt: decision.tenant.updatedAt, previousState: planned.previousState, source: source, tenant: decision.tenant
            )
        }
        let attempts = decision.resetsBackoff ? 0 : context.workAttempts
        let work = schedule(decision.work, attempts: attempts, now: now)
        return TenantUpdate(tenant: decision.tenant, events: events, credentials: credentials, work: work, writesTenant: decision.changed)
    }

    func schedule(_ plan: WorkPlan, attempts: Int, now: Date) -> ScheduledWork? {
        guard let delay = settings.schedule.delay(for: plan, attempts: attempts, unit: random.unit()) else { return nil }
        let kind: WorkKind = if case .submit = plan { .submit } else { .check }
        return ScheduledWork(kind: kind, runAt: now.addingTimeInterval(delay), attempts: attempts)
    }

    /// Wraps a store call so that its failures surface as one typed error; details go to the log only.
    func storage<T>(_ body: () async throws -> T) async throws(OnboardingError) -> T {
        do {
            return try await body()
        } catch {
            logger.error("storage failure", metadata: ["error": "\(String(describing: error))"])
            throw .storageFailure
        }
    }
}
