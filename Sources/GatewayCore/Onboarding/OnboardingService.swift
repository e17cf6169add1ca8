import Foundation
import Synchronization
import Logging
import Tracing

/// How a guarded provider call went.
enum CallOutcome<T: Sendable>: Sendable {
    case made(T)
    case shortCircuited(T)
    /// Held back by the provider's rate for longer than the caller may wait.
    case rateLimited(retryAfter: TimeInterval)
    case leaseGone
}

/// The application's use cases: onboarding, status, credentials and webhooks. Turns every input into an
/// observation, lets `TenantStateMachine` decide, and commits each decision in one store transaction.
public final class OnboardingService: Sendable {
    public struct Settings: Sendable {
        /// The gateway as the outside world reaches it; webhook URLs are built from it.
        public var publicURL: @Sendable () -> String
        public var schedule = WorkSchedule()
        /// How long a tenant's lease lasts; it is renewed before every provider call, so it only has to outlast one.
        public var workLease: TimeInterval = 120
        /// How long an API request waits for a tenant whose lease someone else holds, before it answers `202` (work
        /// queued) or `409 tenant_busy`.
        public var leaseWait: TimeInterval = 5
        /// A company that has not approved a MagniFinance partnership request after this long: the tenant is `failed`.
        public var approvalExpiry: TimeInterval = 30 * 86_400
        public var maxConcurrentCallsPerProvider = 4
        /// Call starts per second allowed to each provider (bursts of one second's worth); nil is no limit.
        public var maxCallsPerSecondPerProvider: Double? = 50
        /// How long a create waits for the provider's first answer before it answers `202` with the work queued
        /// (the call goes on and its outcome is committed, or the worker makes it).
        public var createWait: TimeInterval = 10
        /// After a submission whose outcome is unknown (a timeout, a reset, a crash), how long before the provider is
        /// asked again: a provider still processing the lost call must not be read too early ("no partnership yet")
        /// and submitted to twice. `GATEWAY_SETTLE_SECONDS`.
        public var settle: TimeInterval = 0
        /// The longest one provider request takes before it times out (`GATEWAY_PROVIDER_TIMEOUT_SECONDS`): a
        /// submission's outcome is unknown at most this long after its mark, even when the process died meanwhile.
        public var callTimeout: TimeInterval = 0
        /// Which database errors mean "cannot be reached or written now" (503, retry later) rather than a fault (500):
        /// the stores classify their own; the gateway passes theirs.
        public var isStorageOutage: @Sendable (any Error) -> Bool = { $0 is StorageUnavailable }
        public var circuit = ProviderHealth.Settings()
        /// An access token is handed out while more than this much of its life is left; with less, the provider is
        /// logged in to again (`GATEWAY_ACCESS_TOKEN_MARGIN_SECONDS`).
        public var tokenMargin: TimeInterval = 3600
        /// A proxied `401` asks for a credential check at most this often per tenant.
        public var suspectCheckInterval: TimeInterval = 60

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
    /// Every provider this build knows; `providers` are the configured ones among them.
    public let registry: ProviderRegistry
    let logger: Logger
    /// Names this gateway process as a lease holder.
    let owner: String
    /// The logins for access tokens in flight in this process, one per tenant.
    let tokenFlights = SingleFlight<IssuedToken>()
    /// The credential check this process last asked for, per tenant, on a provider's `401`: when it is due.
    let suspicions = Mutex<[String: Date]>([:])

    public init(
        store: any TenantStore, registry: ProviderRegistry, providers: [any OnboardingProvider], settings: Settings,
        clock: any GatewayClock = SystemClock(), ids: any IDGenerator = ULIDGenerator(),
        random: any Randomness = SystemRandomness(), observer: (any ProviderCallObserver)? = nil,
        sharedCircuits: (any SharedCircuitStore)? = nil, logger: Logger
    ) {
        var circuit = settings.circuit
        // The shared probe is held as long as one call may take under its lease.
        circuit.probeHold = settings.workLease
        self.health = Dictionary(providers.map {
            ($0.kind, ProviderHealth(settings: circuit, provider: $0.kind, shared: sharedCircuits))
        }, uniquingKeysWith: { first, _ in first })
        self.observer = observer ?? NoProviderCallObserver()
        self.store = store
        self.registry = registry
        self.providers = Dictionary(providers.filter { registry.definition($0.kind) != nil }.map { ($0.kind, $0) }, uniquingKeysWith: { first, _ in first })
        self.gates = Dictionary(providers.map { ($0.kind, ConcurrencyGate(
            limit: settings.maxConcurrentCallsPerProvider, callsPerSecond: settings.maxCallsPerSecondPerProvider
        )) }, uniquingKeysWith: { first, _ in first })
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.random = random
        self.logger = logger
        self.owner = "gw-" + random.token(bits: 64)
    }

    /// How one HTTP request to a provider went: what the circuit breaker counts. A composite call (Wrapp's key
    /// check is three requests) is judged request by request, so a flaky provider is not mistaken for a dead one.
    /// `operation` names the request (`wrapp/external_login`); `reason` says what went wrong, once (`502 with an HTML page`).
    public func recordRequest(_ kind: ProviderKind, healthy: Bool, operation: String, reason: String?) async {
        await health[kind]?.record(success: healthy, now: clock.now(), operation: operation, reason: healthy ? nil : reason)
    }

    public var configuredProviders: [ProviderKind] { registry.kinds.filter { providers[$0] != nil } }

    /// The definition of a tenant's provider. A row naming a provider this build does not register is an error that
    /// names the row, never a default.
    public func definition(of tenant: Tenant) throws(OnboardingError) -> any ProviderDefinition {
        guard let definition = registry.definition(tenant.provider) else {
            logger.error("stored tenant names an unknown provider", metadata: ["tenant.id": "\(tenant.id)", "provider": "\(tenant.provider.rawValue)"])
            throw .unknownProvider(tenantID: tenant.id, provider: tenant.provider)
        }
        return definition
    }

    /// What may be asked of the tenant now: for the API and the console alike.
    public func allowedCommands(for tenant: Tenant) -> Set<TenantCommand> {
        // A row naming a provider this build does not know can still be erased, and nothing else.
        guard let definition = registry.definition(tenant.provider) else { return tenant.state == .offboarded ? [] : [.offboard] }
        return TenantCommands.allowed(in: tenant.state, capabilities: definition.capabilities)
    }

    // MARK: - Reading

    public func tenant(id: String) async throws(OnboardingError) -> Tenant {
        guard let tenant = try await storage({ try await store.tenant(id: id) }) else { throw .tenantNotFound }
        return tenant
    }

    /// The tenant as the API shows it, from the rendering the store keeps (reads served from bytes).
    public func storedTenant(id: String) async throws(OnboardingError) -> StoredTenant {
        guard let tenant = try await storage({ try await store.storedTenant(id: id) }) else { throw .tenantNotFound }
        return tenant
    }

    /// A page of tenants as the API shows them, from the renderings the store keeps.
    public func storedTenants(_ query: TenantQuery) async throws(OnboardingError) -> Page<StoredTenant> {
        try await storage { try await store.storedTenants(query) }
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

    // MARK: - Leases

    /// Runs `body` holding the tenant's lease, waiting up to `wait` seconds for it; nil when it stayed busy.
    /// The lease is let go afterwards whatever happened; a holder that dies loses it when it runs out.
    func withLease<T: Sendable>(
        tenantID: String, wait: TimeInterval, _ body: (TenantLease) async throws(OnboardingError) -> T
    ) async throws(OnboardingError) -> T? {
        let deadline = ContinuousClock.now + .milliseconds(Int(wait * 1000))
        while true {
            let now = clock.now()
            let attempt = try await storage {
                try await store.acquireLease(tenantID: tenantID, owner: owner, now: now, until: now.addingTimeInterval(settings.workLease))
            }
            switch attempt {
            case .notFound:
                throw .tenantNotFound
            case .busy:
                guard ContinuousClock.now < deadline else { return nil }
                try? await Task.sleep(for: .milliseconds(20))
            case .acquired(let lease):
                let result: Result<T, OnboardingError>
                do { result = .success(try await body(lease)) } catch { result = .failure(error) }
                await release(lease)
                return try result.get()
            }
        }
    }

    func release(_ lease: TenantLease) async {
        // Detached: a cancelled request or a worker stopping must still let go, or the tenant waits out the lease.
        let store = store
        do {
            try await Task.detached { try await store.releaseLease(lease) }.value
        } catch {
            logger.warning("releasing a tenant lease failed; it runs out by itself", metadata: ["tenant.id": "\(lease.tenantID)"])
        }
    }

    // MARK: - Provider calls

    /// Every provider call goes through here: the concurrency cap; then, once a slot is free, the lease (renewed,
    /// so a holder that waited past its lease never calls beside the one who took over; `tenantChanged` when it is
    /// gone) and the circuit breaker (an open circuit answers `whenOpen` without calling; a probe is admitted only
    /// right before it is made, so none is lost to a call that never went); and the observer. `failure` names a
    /// transient failure, nil for success. `renewedAt`: the caller's last fenced write renewed the lease then; a call
    /// that starts within `renewalReuse` of it, without waiting at the gate, makes no renewal of its own (one commit
    /// less per submission).
    func call<T: Sendable>(
        _ lease: TenantLease, _ kind: ProviderKind, _ operation: String, renewedAt: Date? = nil, movesMark: Bool = false,
        whenOpen: @escaping @Sendable (_ reason: String, _ retryAfter: TimeInterval?) -> T,
        failure: @escaping @Sendable (T) -> String?, _ body: @escaping @Sendable () async -> T
    ) async throws(OnboardingError) -> T {
        // This frame lives for the provider's whole answer, for every call in flight: what needs no waiting is done
        // out of line (`docs/performance.md`, memory).
        let (gate, guarded) = callPlan(
            lease, kind, operation, renewedAt: renewedAt, movesMark: movesMark, whenOpen: whenOpen, failure: failure, body
        )
        // A call the rate would hold back for more than half a lease is not parked under the tenant's lease: it
        // answers "unavailable, retry after", so the work is rescheduled and the lease let go.
        let outcome: CallOutcome<T>
        if let gate {
            switch await gate.run(maxDelay: settings.workLease / 2, guarded) {
            case .ran(let made): outcome = made
            case .rateLimited(let retryAfter): outcome = .rateLimited(retryAfter: retryAfter)
            }
        } else {
            outcome = await guarded(false)
        }
        return try finished(outcome, lease, kind, operation, whenOpen: whenOpen)
    }

    /// The call's gate and the call itself as the gate runs it: the lease renewed unless the caller's own write just
    /// did, the circuit breaker's admission, the span and the observer.
    @inline(never)
    private func callPlan<T: Sendable>(
        _ lease: TenantLease, _ kind: ProviderKind, _ operation: String, renewedAt: Date?, movesMark: Bool,
        whenOpen: @escaping @Sendable (_ reason: String, _ retryAfter: TimeInterval?) -> T,
        failure: @escaping @Sendable (T) -> String?, _ body: @escaping @Sendable () async -> T
    ) -> (ConcurrencyGate?, @Sendable (_ waited: Bool) async -> CallOutcome<T>) {
        let health = health[kind]
        let guarded: @Sendable (_ waited: Bool) async -> CallOutcome<T> = { [self] waited in
            let now = clock.now()
            let fresh = !waited && renewedAt.map { (0..<Self.renewalReuse).contains(now.timeIntervalSince($0)) } ?? false
            if !fresh {
                // A submission that waited moves its mark to now: its settle period counts from the call (F18).
                guard (try? await store.renewLease(lease, now: now, until: now.addingTimeInterval(settings.workLease), movesMark: movesMark)) == true else {
                    return .leaseGone
                }
            }
            var role = ProviderHealth.Admission.call
            if let health {
                guard let admitted = await health.admitCall(now: now) else {
                    return .shortCircuited(whenOpen("\(kind.rawValue) is failing; calls are paused for a while (circuit open)", await health.retryAfter(now: now)))
                }
                role = admitted
            }
            let started = ContinuousClock.now
            // Its requests tell the breaker (`recordRequest`, from inside the call) whether they are the probe's.
            // One span per call: provider, operation, attempt and outcome; its HTTP requests are its children.
            let (result, reason) = await withSpan("\(kind.rawValue) \(operation)", ofKind: .client) { span in
                span.attributes["provider.name"] = kind.rawValue
                span.attributes["provider.operation"] = operation
                span.attributes["provider.attempt"] = RequestScope.attempt ?? 1
                if role == .probe { span.attributes["provider.circuit_probe"] = true }
                let result = await ProviderHealth.$role.withValue(role) { await body() }
                let reason = failure(result)
                span.attributes["provider.outcome"] = reason == nil ? "ok" : "unavailable"
                if let reason { span.setStatus(SpanStatus(code: .error, message: reason)) }
                return (result, reason)
            }
            let elapsed = ContinuousClock.now - started
            // The breaker heard each of the call's requests (`recordRequest`); only a probe left open is settled.
            await health?.settleCall()
            observer.providerCall(
                provider: kind, operation: operation, outcome: reason == nil ? "ok" : "unavailable",
                duration: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            )
            return .made(result)
        }
        return (gates[kind], guarded)
    }

    @inline(never)
    private func finished<T: Sendable>(
        _ outcome: CallOutcome<T>, _ lease: TenantLease, _ kind: ProviderKind, _ operation: String,
        whenOpen: @Sendable (_ reason: String, _ retryAfter: TimeInterval?) -> T
    ) throws(OnboardingError) -> T {
        switch outcome {
        case .made(let result):
            return result
        case .shortCircuited(let result):
            observer.providerCall(provider: kind, operation: operation, outcome: "short_circuited", duration: 0)
            return result
        case .rateLimited(let retryAfter):
            observer.providerCall(provider: kind, operation: operation, outcome: "rate_limited", duration: 0)
            return whenOpen("calls to \(kind.rawValue) are over GATEWAY_PROVIDER_RATE_LIMIT; waiting for a turn", retryAfter)
        case .leaseGone:
            logger.info("provider call not made: the tenant's lease is gone", metadata: ["tenant.id": "\(lease.tenantID)", "operation": "\(operation)"])
            throw .tenantChanged
        }
    }

    /// How long a renewal made by the caller's own fenced write stands in for the call's: far less than any lease
    /// (`workLease` is at least 30 s), so the lease still outlasts the call. It stands in only when the call did not
    /// wait at the gate: a void (an offboarding) committed while a call waits for its turn is seen before the call,
    /// as it was when every call renewed. Between the write and a call that starts at once there is no wait, only
    /// the caller's own steps; a void in that instant is seen after the call, by the answer's fenced commit, as one
    /// committed while the call runs is.
    static let renewalReuse: TimeInterval = 1

    /// A provider call that answers a `ProviderAnswer`.
    func ask(
        _ lease: TenantLease, _ kind: ProviderKind, _ operation: String, renewedAt: Date? = nil, movesMark: Bool = false,
        _ body: @escaping @Sendable () async -> ProviderAnswer
    ) async throws(OnboardingError) -> ProviderAnswer {
        try await call(lease, kind, operation, renewedAt: renewedAt, movesMark: movesMark, whenOpen: { reason, retryAfter in
            // The circuit or the rate held the call back: the provider was not asked, so nothing was submitted.
            var answer = ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter))
            answer.nothingSubmitted = true
            return answer
        }, failure: { answer in
            if case .unavailable(let reason, _) = answer.finding { return reason }
            return nil
        }, body)
    }

    /// The provider's status for the tenant, with the one effect the state machine may ask for on top: a customer
    /// still onboarding whom the provider reports not usable, with no link to follow, gets a fresh one.
    ///
    /// Where credentials belong to a company, a refused tenant holds no request of its own (it may have been refused
    /// because the company is someone else's partner): the company's credentials are not asked for on its behalf, by
    /// a poll or a webhook. An operator's transfer is.
    func status(_ lease: TenantLease, of tenant: Tenant, view: ProviderTenant, adapter: any OnboardingProvider) async throws(OnboardingError) -> ProviderAnswer {
        let capabilities = try definition(of: tenant).capabilities
        if tenant.state == .failed, capabilities.credentialsBelongToCompany {
            return ProviderAnswer(.waiting(providerStatus: "not_submitted"))
        }
        let answer = try await ask(lease, tenant.provider, "check") { await adapter.check(view) }
        guard case .lapsed(let status) = answer.finding, TenantStateMachine.resumeURLNeeded(answer.finding, for: tenant, capabilities: capabilities)
        else { return answer }
        switch try await onboardingURL(lease, tenant.provider, view: view, adapter: adapter) {
        case .url(let url): return ProviderAnswer(.actionRequired(NextAction(type: .redirectToURL, url: url), providerStatus: status), credentials: answer.credentials)
        case .unavailable(let reason): return ProviderAnswer(.unavailable(reason: reason, retryAfter: nil), credentials: answer.credentials)
        case .notSupported: return answer
        }
    }

    /// A fresh customer URL from the provider, through its circuit and limits.
    func onboardingURL(_ lease: TenantLease, _ kind: ProviderKind, view: ProviderTenant, adapter: any OnboardingProvider) async throws(OnboardingError) -> OnboardingURL {
        try await call(lease, kind, "onboarding_url", whenOpen: { reason, _ in
            OnboardingURL.unavailable(reason: reason)
        }, failure: { result in
            if case .unavailable(let reason) = result { return reason }
            return nil
        }) { await adapter.onboardingURL(for: view) }
    }

    /// A credential check with the provider.
    func verify(_ lease: TenantLease, _ kind: ProviderKind, _ body: @escaping @Sendable () async -> CredentialCheck) async throws(OnboardingError) -> CredentialCheck {
        try await call(lease, kind, "verify", whenOpen: { reason, retryAfter in
            .unavailable(reason: reason, retryAfter: retryAfter)
        }, failure: { check in
            if case .unavailable(let reason, _) = check { return reason }
            return nil
        }, body)
    }

    @inline(never)
    func providerView(of tenant: Tenant) async throws(OnboardingError) -> ProviderTenant {
        var webhookURL: String?
        if try definition(of: tenant).capabilities.receivesWebhooks, let token = try await storage({ try await store.webhookToken(tenantID: tenant.id) }) {
            webhookURL = Self.webhookURL(publicURL: settings.publicURL(), provider: tenant.provider, token: token)
        }
        return ProviderTenant(
            tenantID: tenant.id, externalID: tenant.externalID, profile: tenant.profile, hasCredentials: tenant.credentialsAvailable,
            webhookURL: webhookURL, providerStatus: tenant.providerStatus
        )
    }

    static func webhookURL(publicURL: String, provider: ProviderKind, token: String) -> String {
        let base = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        return "\(base)/webhooks/\(provider.rawValue)/\(token)"
    }

    /// Feeds a provider's answer to the state machine and commits the decision, fenced by the lease it was asked
    /// under. `origin` says how far credentials in the answer are trusted; `settlesSubmission` marks the answer to a
    /// submission, whose pending intent a definite answer clears (`afterUnknown`: the submission followed one whose
    /// outcome is unknown, and a call held back before sending anything keeps the intent); `releasing` lets the lease go in the same commit.
    @inline(never)
    @discardableResult
    func apply(
        _ answer: ProviderAnswer, lease: TenantLease, source: ChangeSource, at: Date,
        origin: CredentialOffer.Origin = .provider, settlesSubmission: Bool = false, afterUnknown: Bool = false, releasing: Bool = false
    ) async throws(OnboardingError) -> Tenant {
        let expiry = settings.approvalExpiry
        let now = clock.now()
        return try await commit(tenantID: lease.tenantID, fence: lease) { context in
            let offer = answer.credentials.map {
                CredentialOffer($0, origin: origin, isNew: $0 != context.credentials || !context.tenant.credentialsAvailable)
            }
            let finding = ApprovalExpiry.apply(expiry, to: answer.finding, tenant: context.tenant, at: at)
            let capabilities = try self.definition(of: context.tenant).capabilities
            let observation = Observation.finding(finding, source: source, at: at, credentials: offer, verdict: answer.verdict, details: answer.details)
            return (try TenantStateMachine.decide(context.tenant, observation, capabilities: capabilities), source)
        } adjust: { update in
            update.releasesLease = releasing
            if settlesSubmission {
                if answer.finding.isUnavailable, !answer.nothingSubmitted {
                    update.submissionUnsettledAt = now
                } else if answer.nothingSubmitted, afterUnknown {
                    // Held back before anything was sent, after a submission whose outcome is still unknown: that
                    // one's mark stays, so the next attempt asks before it submits.
                } else {
                    update.clearsSubmission = true
                }
            }
        }
    }

    /// Runs a decision inside one store transaction and writes the tenant, its events, credentials and work.
    /// `fence`: made from a provider's answer under this lease (`tenantChanged` when it was lost). `voids`: this
    /// write voids provider conversations in flight for the tenant.
    func commit(
        tenantID: String, fence: TenantLease? = nil, voids: Bool = false,
        _ decide: @escaping @Sendable (TenantContext) throws -> (Decision, ChangeSource),
        adjust: @escaping @Sendable (inout TenantUpdate) -> Void = { _ in }
    ) async throws(OnboardingError) -> Tenant {
        let now = clock.now()
        let updated: Tenant?
        // The state before, as the transaction saw it (the decision may run in the store's own task; it is logged here,
        // in the caller's, where the request's id is known).
        let before = Mutex<TenantState?>(nil)
        // Read here, in the caller's task: the decision below may run in the store's.
        let requestID = RequestScope.requestID
        let traceParent = RequestScope.traceParent
        do {
            updated = try await store.update(tenantID: tenantID, fence: fence, voids: voids) { [self] context in
                before.withLock { $0 = context.tenant.state }
                let (decision, source) = try decide(context)
                var update = update(from: decision, context: context, source: source, now: now)
                update.work?.requestID = requestID
                update.work?.traceParent = traceParent
                adjust(&update)
                return update
            }
        } catch let error as OnboardingError {
            throw error
        } catch is LeaseLost {
            logger.info("provider answer discarded: the tenant changed meanwhile", metadata: ["tenant.id": "\(tenantID)"])
            throw .tenantChanged
        } catch let error as TransitionError {
            guard case .notAllowed(let command, let state) = error else { throw .internalFailure }
            let action = switch command {
            case .retry: "retried"
            case .resubmit: "resubmitted"
            case .offboard: "offboarded"
            }
            throw .invalidState(state, action: action)
        } catch {
            logger.error("tenant update failed", metadata: ["tenant.id": "\(tenantID)", "error": "\(String(describing: error))"])
            throw storageError(error)
        }
        guard let updated else { throw .tenantNotFound }
        if let previous = before.withLock({ $0 }), previous != updated.state {
            logger.info("tenant state changed", metadata: [
                "tenant.id": "\(updated.id)", "provider": "\(updated.provider.rawValue)", "from": "\(previous.rawValue)", "to": "\(updated.state.rawValue)",
            ])
        }
        return updated
    }

    func update(from decision: Decision, context: TenantContext, source: ChangeSource, now: Date) -> TenantUpdate {
        let events = decision.events.map { planned in
            TenantEvent(
                id: ids.make(prefix: "evt", at: now), tenantID: decision.tenant.id, type: planned.type,
                createdAt: decision.tenant.updatedAt, previousState: planned.previousState, source: source, tenant: decision.tenant
            )
        }
        let attempts = decision.resetsBackoff ? 0 : context.workAttempts
        let work = schedule(decision.work, attempts: attempts, now: now)
        return TenantUpdate(tenant: decision.tenant, events: events, credentials: decision.credentials, work: work, writesTenant: decision.changed)
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
            throw storageError(error)
        }
    }

    /// A database error as the partner sees it: an outage is `storage_unavailable` (503, retry later), anything
    /// else a fault of ours (500).
    func storageError(_ error: any Error) -> OnboardingError {
        if let error = error as? OnboardingError { return error }
        return settings.isStorageOutage(error) ? .storageFailure : .internalFailure
    }
}
