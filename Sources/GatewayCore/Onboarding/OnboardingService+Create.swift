import Foundation

/// A partner's request to onboard a customer.
public struct NewTenant: Sendable, Equatable {
    public var provider: ProviderKind
    public var externalID: String
    public var profile: Profile
    public var metadata: [String: String]

    public init(provider: ProviderKind, externalID: String, profile: Profile, metadata: [String: String] = [:]) {
        self.provider = provider
        self.externalID = externalID
        self.profile = profile
        self.metadata = metadata
    }
}

/// How `create` ended, which decides the HTTP status: 201, 202 or 200.
public enum CreateOutcome: Sendable, Equatable {
    /// The provider answered: the tenant is in whatever state that answer put it.
    case created(Tenant)
    /// The provider could not be reached in time: the tenant is `pending` and the gateway keeps trying.
    case accepted(Tenant)
    /// The same `(provider, external_id)` with the same profile existed already.
    case existing(Tenant)
}

extension OnboardingService {
    /// Validates, stores the tenant with its first work, and makes the first provider call inline so the partner
    /// usually learns the outcome (a Wrapp login URL, say) in the same response.
    public func create(_ request: NewTenant) async throws(OnboardingError) -> CreateOutcome {
        let errors = ProfileValidator.validate(
            provider: request.provider, externalID: request.externalID, profile: request.profile, metadata: request.metadata
        )
        guard errors.isEmpty else { throw .validationFailed(errors) }
        _ = try provider(for: request.provider)

        let now = clock.now()
        let tenant = Tenant(
            id: ids.make(prefix: "ten", at: now), provider: request.provider, externalID: request.externalID,
            state: .pending, profile: request.profile, metadata: request.metadata,
            createdAt: now, updatedAt: now, stateChangedAt: now
        )
        let decision = TenantStateMachine.create(tenant)
        let events = decision.events.map {
            TenantEvent(id: ids.make(prefix: "evt", at: now), tenantID: tenant.id, type: $0.type, createdAt: now, previousState: nil, source: .api, tenant: tenant)
        }
        // Leased to this request, so workers leave the first call to us unless we die before making it.
        let work = ScheduledWork(kind: .submit, runAt: now, attempts: 1, leasedUntil: now.addingTimeInterval(settings.workLease))
        let webhookToken = request.provider == .wrapp ? random.token(bits: 192) : nil

        switch try await storage({ try await store.insert(tenant, events: events, work: work, webhookToken: webhookToken) }) {
        case .existing(let existing):
            guard existing.profile == request.profile else { throw .tenantExists(tenantID: existing.id) }
            return .existing(existing)
        case .inserted:
            logger.info("tenant created", metadata: ["tenant.id": "\(tenant.id)", "provider": "\(tenant.provider.rawValue)"])
            let result = try await submit(tenant, previousAttempts: 0, source: .api)
            return result.state == .pending ? .accepted(result) : .created(result)
        }
    }

    /// One submission to the provider and its outcome committed.
    func submit(_ tenant: Tenant, previousAttempts: Int, source: ChangeSource) async throws(OnboardingError) -> Tenant {
        let adapter = try provider(for: tenant.provider)
        let view = try await providerView(of: tenant)
        let askedAt = clock.now()
        let answer = await ask(tenant.provider, "submit") { await adapter.submit(view, previousAttempts: previousAttempts) }
        log(answer, tenant: tenant, operation: "submit")
        return try await apply(answer, tenantID: tenant.id, source: source, at: askedAt)
    }

    /// One status check with the provider and its outcome committed.
    func check(_ tenant: Tenant, source: ChangeSource) async throws(OnboardingError) -> Tenant {
        let adapter = try provider(for: tenant.provider)
        let view = try await providerView(of: tenant)
        let askedAt = clock.now()
        let answer = await ask(tenant.provider, "check") { await adapter.check(view) }
        log(answer, tenant: tenant, operation: "check")
        return try await apply(answer, tenantID: tenant.id, source: source, at: askedAt)
    }

    func log(_ answer: ProviderAnswer, tenant: Tenant, operation: String) {
        if case .unavailable(let reason, _) = answer.finding {
            logger.warning("provider unavailable", metadata: [
                "tenant.id": "\(tenant.id)", "provider": "\(tenant.provider.rawValue)", "operation": "\(operation)", "reason": "\(reason)",
                "provider.said": "\(answer.diagnostic ?? "-")",
            ])
        }
    }

    /// Asks the provider now (the partner's "refresh", an operator's "poll") and answers the updated tenant.
    public func refresh(tenantID: String, source: ChangeSource = .api) async throws(OnboardingError) -> Tenant {
        let tenant = try await tenant(id: tenantID)
        switch tenant.state {
        case .offboarded:
            return tenant
        case .pending:
            // A pending tenant has been submitted at least once, with an outcome we may not know.
            return try await submit(tenant, previousAttempts: 1, source: source)
        case .actionRequired, .active, .suspended, .failed:
            return try await check(tenant, source: source)
        }
    }

    /// A `failed` tenant goes back to `pending` and is submitted again with its (corrected) data.
    public func retry(tenantID: String, source: ChangeSource = .api) async throws(OnboardingError) -> Tenant {
        let now = clock.now()
        let pending = try await commit(tenantID: tenantID) { context in
            (try TenantStateMachine.decide(context.tenant, .command(.retry, source: source, at: now)), nil, source)
        }
        return try await submit(pending, previousAttempts: 0, source: source)
    }

    /// Credentials supplied by hand (a Wrapp user who existed before gets no webhook). Verified with the
    /// provider before they are kept; the tenant's status is then asked so it lands in the right state.
    public func supplyCredentials(tenantID: String, _ credentials: ProviderCredentials, actor: Actor) async throws(OnboardingError) -> Tenant {
        let tenant = try await tenant(id: tenantID)
        guard credentials.provider == tenant.provider else {
            throw .validationFailed([FieldError(field: "provider", code: "mismatch", message: "This tenant is onboarded onto \(tenant.provider.rawValue).")])
        }
        guard ![.offboarded, .failed, .pending].contains(tenant.state) else {
            throw .invalidState(tenant.state, action: "given credentials")
        }
        let adapter = try provider(for: tenant.provider)
        var view = try await providerView(of: tenant)
        switch await verify(tenant.provider, { [view] in await adapter.verify(credentials, for: view) }) {
        case .invalid:
            try await storage { try await store.audit(AuditEntry(at: clock.now(), actor: actor, action: "credentials.rejected", tenantID: tenantID)) }
            throw .credentialsRejected
        case .unavailable(let reason, _):
            throw .providerUnavailable(reason: reason)
        case .valid:
            break
        }
        view.hasCredentials = true
        let askedAt = clock.now()
        var answer = await ask(tenant.provider, "check") { [view] in await adapter.check(view) }
        answer.credentials = credentials
        let updated = try await apply(answer, tenantID: tenantID, source: .api, at: askedAt)
        try await storage { try await store.audit(AuditEntry(at: clock.now(), actor: actor, action: "credentials.supplied", tenantID: tenantID)) }
        return updated
    }
}
