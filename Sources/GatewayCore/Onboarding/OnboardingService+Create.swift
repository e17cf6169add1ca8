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

/// A create checked and made, before it is stored: held by reference across the create's waits.
final class PreparedCreate: Sendable {
    let tenant: Tenant
    let events: [TenantEvent]
    let work: ScheduledWork
    let webhookToken: String?
    let companyKey: String?
    let leaseUntil: Date

    init(tenant: Tenant, events: [TenantEvent], work: ScheduledWork, webhookToken: String?, companyKey: String?, leaseUntil: Date) {
        self.tenant = tenant
        self.events = events
        self.work = work
        self.webhookToken = webhookToken
        self.companyKey = companyKey
        self.leaseUntil = leaseUntil
    }
}

/// A value held by reference, so an async frame that waits holds a pointer, not a copy.
final class Boxed<T: Sendable>: Sendable {
    let value: T
    init(_ value: T) { self.value = value }
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

/// How a request that needs the provider ended: done now, or queued because someone else held the tenant.
public enum ProviderRequestOutcome: Sendable, Equatable {
    /// The provider was asked and the tenant is as its answer left it.
    case done(Tenant)
    /// Another actor was talking to the provider about this tenant; the work is queued and runs next (`202`).
    case queued(Tenant)

    public var tenant: Tenant {
        switch self {
        case .done(let tenant), .queued(let tenant): tenant
        }
    }
}

extension OnboardingService {
    /// Validates, stores the tenant with its first work and its lease, and makes the first provider call inline
    /// under that lease, so the partner usually learns the outcome (a Wrapp login URL, say) in the same response.
    public func create(_ request: NewTenant) async throws(OnboardingError) -> CreateOutcome {
        // The async frames of a create live as long as the provider takes to answer, for every create in flight: the
        // work that needs no waiting runs in synchronous functions that are not inlined, and what crosses a wait is
        // held by reference (`docs/performance.md`, memory).
        let new = try prepare(request)
        switch try await insert(new, request) {
        case .leased(let lease): return try await firstSubmission(new, lease: lease)
        case .existing(let existing): return .existing(existing.value)
        }
    }

    /// What the insert of a new tenant left: its lease, or the tenant that was there (held by reference).
    private enum Inserted: Sendable {
        case leased(TenantLease)
        case existing(Boxed<Tenant>)
    }

    @inline(never)
    private func refusedForCompany(_ provider: ProviderKind) -> OnboardingError {
        logger.info("create refused: another live tenant holds the company", metadata: ["provider": "\(provider.rawValue)"])
        return .companyAlreadyOnboarded
    }

    /// A new tenant, its first events and work, checked and made; nothing is stored yet.
    @inline(never)
    private func prepare(_ request: NewTenant) throws(OnboardingError) -> PreparedCreate {
        guard let definition = registry.definition(request.provider) else {
            throw .validationFailed([FieldError(field: "provider", code: "invalid", message: "provider is one of: \(registry.namesList).")])
        }
        let errors = ProfileValidator.validate(
            provider: definition, externalID: request.externalID, profile: request.profile, metadata: request.metadata
        )
        guard errors.isEmpty else { throw .validationFailed(errors) }
        _ = try provider(for: request.provider)
        let capabilities = definition.capabilities
        let companyKey = capabilities.credentialsBelongToCompany ? request.profile.company?.taxID : nil

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
        // The work is due when the lease runs out: if this request dies before the first call, a worker makes it.
        let leaseUntil = now.addingTimeInterval(settings.workLease)
        let work = ScheduledWork(kind: .submit, runAt: now, attempts: 1, leasedUntil: leaseUntil, requestID: RequestScope.requestID,
            traceParent: RequestScope.traceParent
        )
        let webhookToken = capabilities.receivesWebhooks ? random.token(bits: 192) : nil
        return PreparedCreate(tenant: tenant, events: events, work: work, webhookToken: webhookToken, companyKey: companyKey, leaseUntil: leaseUntil)
    }

    @inline(never)
    private func insert(_ new: PreparedCreate, _ request: NewTenant) async throws(OnboardingError) -> Inserted {
        let inserted = try await storage {
            try await store.insert(
                new.tenant, events: new.events, work: new.work, webhookToken: new.webhookToken, companyKey: new.companyKey,
                leaseOwner: owner, leaseUntil: new.leaseUntil
            )
        }
        switch inserted {
        case .companyTaken:
            throw refusedForCompany(request.provider)
        case .existing(let existing):
            guard existing.profile == request.profile else { throw .tenantExists(tenantID: existing.id) }
            return .existing(Boxed(existing))
        case .inserted(let lease):
            return .leased(lease)
        }
    }

    /// The first provider call, made under the new tenant's lease, waited for at most `createWait`.
    @inline(never)
    private func firstSubmission(_ new: PreparedCreate, lease: TenantLease) async throws(OnboardingError) -> CreateOutcome {
        let first = startFirst(new, lease: lease)
        guard let submitted = await first.value(within: settings.createWait) else {
            return notInTime(new, first.task)
        }
        return try await answered(submitted, tenantID: new.tenant.id)
    }

    @inline(never)
    private func answered(_ submitted: Boxed<Result<Tenant, OnboardingError>>, tenantID: String) async throws(OnboardingError) -> CreateOutcome {
        // Offboarded or corrected while the provider answered: the tenant as it is now.
        if case .failure(.tenantChanged) = submitted.value { return try await changed(tenantID) }
        return try outcome(of: submitted.value)
    }

    /// Not inlined, so the frame of the rare path is made only when it is taken.
    @inline(never)
    private func changed(_ tenantID: String) async throws(OnboardingError) -> CreateOutcome {
        try outcome(of: .success(try await tenant(id: tenantID)))
    }

    @inline(never)
    private func outcome(of submitted: Result<Tenant, OnboardingError>) throws(OnboardingError) -> CreateOutcome {
        let tenant = try submitted.get()
        return tenant.state == .pending ? .accepted(tenant) : .created(tenant)
    }

    /// The first call runs on its own, so a provider that is slow, or a queue of other tenants' calls before it, costs
    /// the create at most `createWait`: then the answer is 202 and the call goes on, committing its outcome and
    /// letting the lease go (if this process dies first, the work is due when the lease runs out).
    @inline(never)
    private func startFirst(_ new: PreparedCreate, lease: TenantLease) -> BoundedTask<Boxed<Result<Tenant, OnboardingError>>> {
        let tenant = new.tenant
        logger.info("tenant created", metadata: ["tenant.id": "\(tenant.id)", "provider": "\(tenant.provider.rawValue)"])
        // The tenant only: not its events, work or webhook token, for as long as the call runs.
        return BoundedTask {
            do throws(OnboardingError) {
                // The outcome's commit lets the lease go.
                return Boxed(.success(try await self.submit(tenant, lease: lease, source: .api, releasing: true)))
            } catch {
                await self.release(lease)
                return Boxed(.failure(error))
            }
        }
    }

    /// A first call that outlived the create's wait goes on; nobody waits for its outcome any more, so this says what
    /// became of it.
    @inline(never)
    private func notInTime(_ new: PreparedCreate, _ first: Task<Boxed<Result<Tenant, OnboardingError>>, Never>) -> CreateOutcome {
        let tenantID = new.tenant.id
        logger.info("the provider did not answer a create in time; it goes on in the background", metadata: ["tenant.id": "\(tenantID)"])
        let logger = logger
        Task {
            if case .failure(let error) = await first.value.value {
                logger.warning("a create answered 202 ended in an error", metadata: ["tenant.id": "\(tenantID)", "error.code": "\(error.code)"])
            }
        }
        return .accepted(new.tenant)
    }

    /// One submission to the provider and its outcome committed, under `lease`. The intent is recorded right before
    /// the submission, so an answer lost to a timeout or a crash makes the next attempt ask the provider before
    /// submitting again; after an unknown outcome, a provider whose submission is not idempotent is not asked at all
    /// until it settles. On a first attempt, what the provider can tell before the submission (`preflight`) is
    /// asked with nothing recorded: a call that fails or is never made there cannot pass for a lost submission.
    /// With `releasing`, the commit of the outcome also lets the lease go (when this returns; not when it throws).
    func submit(
        _ tenant: Tenant, lease: TenantLease, source: ChangeSource, askFirst: Bool = false, releasing: Bool = false
    ) async throws(OnboardingError) -> Tenant {
        // Two steps of their own, so what the first needs is not held through the provider's answer (the frames of
        // every submission in flight: `docs/performance.md`, memory).
        switch try await submissionStart(tenant, lease: lease, source: source, askFirst: askFirst, releasing: releasing) {
        case .answered(let tenant): return tenant.value
        case .submit(let call): return try await submissionCall(call, tenant: tenant, lease: lease, source: source, releasing: releasing)
        }
    }

    /// Where a submission stands before it is made: answered already (settling, or the preflight told), or to be made.
    private enum SubmissionStart: Sendable {
        case answered(Boxed<Tenant>)
        case submit(SubmissionCall)
    }

    /// A submission about to be made, held by reference.
    private final class SubmissionCall: Sendable {
        let adapter: any OnboardingProvider
        let view: ProviderTenant
        let previousAttempts: Int
        /// An earlier submission's outcome is unknown (it is asked about first).
        let afterUnknown: Bool
        let askedAt: Date
        /// When the mark renewed the lease.
        let renewedAt: Date

        init(adapter: any OnboardingProvider, view: ProviderTenant, previousAttempts: Int, afterUnknown: Bool, askedAt: Date, renewedAt: Date) {
            self.adapter = adapter
            self.view = view
            self.previousAttempts = previousAttempts
            self.afterUnknown = afterUnknown
            self.askedAt = askedAt
            self.renewedAt = renewedAt
        }
    }

    @inline(never)
    private func submissionStart(
        _ tenant: Tenant, lease: TenantLease, source: ChangeSource, askFirst: Bool, releasing: Bool
    ) async throws(OnboardingError) -> SubmissionStart {
        let adapter = try provider(for: tenant.provider)
        let capabilities = try definition(of: tenant).capabilities
        let view = try await providerView(of: tenant)
        // The outcome of a submission is unknown at most a call's time after its mark; then it settles.
        let settle = capabilities.submissionIsIdempotent ? 0 : settings.settle + settings.callTimeout
        // Without a preflight, nothing is asked between the look at earlier submissions and this one's mark: one
        // commit does both, and renews the lease for the call.
        let preflights = !askFirst && capabilities.checksBeforeSubmitting
        let markedAt = clock.now()
        let earlier = try await recordSubmission(lease, settle: settle, marks: !preflights, at: markedAt)
        let askedAt = clock.now()
        if case .settling(let until) = earlier {
            // The provider may still be working on the call whose answer was lost: a read now could say "nothing
            // there yet" and lead to a second submission. Nothing is asked or concluded until it settles.
            let wait = max(1, until.timeIntervalSince(askedAt))
            let answer = ProviderAnswer(.unavailable(reason: "an earlier call's outcome is unknown; waiting \(Bounds.wholeSeconds(wait.rounded(.up))) s for it to settle", retryAfter: wait))
            return .answered(Boxed(try await apply(answer, lease: lease, source: source, at: askedAt, releasing: releasing)))
        }
        if earlier == .first, preflights {
            let preflight = try await call(lease, tenant.provider, "submit", whenOpen: { reason, retryAfter -> ProviderAnswer? in
                ProviderAnswer(.unavailable(reason: reason, retryAfter: retryAfter))
            }, failure: { answer in
                if case .unavailable(let reason, _)? = answer?.finding { return reason }
                return nil
            }) { await adapter.preflight(view) }
            if let answer = preflight {
                // Answered before anything was submitted: nothing is recorded, the next attempt is a first one too.
                log(answer, tenant: tenant, operation: "submit")
                return .answered(Boxed(try await apply(answer, lease: lease, source: source, at: askedAt, releasing: releasing)))
            }
        }
        // The mark's own time, not the commit's end: a call that starts more than `renewalReuse` after the mark (a
        // slow commit included) renews the lease and moves the mark to its start.
        let renewedAt = preflights ? clock.now() : markedAt
        let record = preflights ? try await recordSubmission(lease, settle: settle, marks: true, at: renewedAt) : earlier
        let previousAttempts = record == .afterUnknown || askFirst ? 1 : 0
        return .submit(SubmissionCall(
            adapter: adapter, view: view, previousAttempts: previousAttempts, afterUnknown: record == .afterUnknown, askedAt: askedAt, renewedAt: renewedAt
        ))
    }

    @inline(never)
    private func submissionCall(
        _ call: SubmissionCall, tenant: Tenant, lease: TenantLease, source: ChangeSource, releasing: Bool
    ) async throws(OnboardingError) -> Tenant {
        // The mark renewed the lease: the call needs no renewal of its own unless it waits for a turn. One that waited
        // renews, and moves the mark to its start.
        let answer = try await ask(lease, tenant.provider, "submit", renewedAt: call.renewedAt, movesMark: true) {
            await call.adapter.submit(call.view, previousAttempts: call.previousAttempts)
        }
        log(answer, tenant: tenant, operation: "submit")
        return try await apply(
            answer, lease: lease, source: source, at: call.askedAt, settlesSubmission: true, afterUnknown: call.afterUnknown, releasing: releasing
        )
    }

    /// What earlier submissions left (fenced by the lease); with `marks`, records this one unless it must settle, and
    /// renews the lease for the call that follows.
    @inline(never)
    private func recordSubmission(_ lease: TenantLease, settle: TimeInterval, marks: Bool, at now: Date) async throws(OnboardingError) -> SubmissionRecord {
        do {
            return try await store.recordSubmission(lease, at: now, settle: settle, marks: marks, renewUntil: marks ? now.addingTimeInterval(settings.workLease) : nil)
        } catch is LeaseLost {
            throw .tenantChanged
        } catch {
            logger.error("recording a submission failed", metadata: ["tenant.id": "\(lease.tenantID)", "error": "\(String(describing: error))"])
            throw storageError(error)
        }
    }

    /// One status check with the provider and its outcome committed, under `lease`.
    /// An onboarded tenant whose provider watches credential health has its stored credentials checked as well (the
    /// broker's check answers what `check` would, plus its verdict on the credentials and any details).
    func check(_ tenant: Tenant, lease: TenantLease, source: ChangeSource) async throws(OnboardingError) -> Tenant {
        let adapter = try provider(for: tenant.provider)
        let view = try await providerView(of: tenant)
        let askedAt = clock.now()
        // Active, or suspended because its credentials were refused (a lapsed subscription needs no key check).
        let watched = tenant.state == .active || (tenant.state == .suspended && tenant.credentialsRevoked)
        if try definition(of: tenant).capabilities.watchesCredentialHealth, watched, tenant.credentialsAvailable,
           let broker = adapter.broker, let credentials = try await storage({ try await store.credentials(tenantID: tenant.id) }) {
            var answer = try await ask(lease, tenant.provider, "credential_check") { await broker.checkCredentials(credentials, for: view) }
            // Read when it was asked, on the gateway's clock.
            answer.details?.readAt = askedAt
            log(answer, tenant: tenant, operation: "credential_check")
            if case .refused(let reason, _)? = answer.verdict, !tenant.credentialsRevoked {
                logger.warning("the provider refused the stored credentials", metadata: ["tenant.id": "\(tenant.id)", "reason": "\(reason)"])
            }
            let checked = try await apply(answer, lease: lease, source: source, at: askedAt)
            if let token = answer.issuedToken, answer.verdict == .working, [.active, .suspended].contains(checked.state), !checked.credentialsRevoked {
                // The check's login made a token: kept, so the partner's next request needs no login of its own.
                do { try await store.saveAccessToken(received(token), lease: lease) } catch {
                    logger.info("the credential check's token was not kept", metadata: ["tenant.id": "\(tenant.id)"])
                }
            }
            return checked
        }
        let answer = try await status(lease, of: tenant, view: view, adapter: adapter)
        log(answer, tenant: tenant, operation: "check")
        return try await apply(answer, lease: lease, source: source, at: askedAt)
    }

    /// The tenant's next provider step, whatever its state: submit while pending, check otherwise.
    func step(_ tenantID: String, lease: TenantLease, source: ChangeSource) async throws(OnboardingError) -> Tenant {
        let tenant = try await tenant(id: tenantID)
        // A row naming an unknown provider is an error that names it (logged), not a silent no-op.
        _ = try definition(of: tenant)
        guard allowedCommands(for: tenant).contains(.refresh) else { return tenant }
        switch tenant.state {
        case .offboarded:
            return tenant
        case .pending:
            return try await submit(tenant, lease: lease, source: source)
        case .actionRequired, .active, .suspended, .failed:
            return try await check(tenant, lease: lease, source: source)
        }
    }

    @inline(never)
    func log(_ answer: ProviderAnswer, tenant: Tenant, operation: String) {
        if case .unavailable(let reason, _) = answer.finding {
            logger.warning("provider unavailable", metadata: [
                "tenant.id": "\(tenant.id)", "provider": "\(tenant.provider.rawValue)", "operation": "\(operation)", "reason": "\(reason)",
                "provider.said": "\(answer.diagnostic ?? "-")",
            ])
        }
    }

    /// Asks the provider now (the partner's "refresh", an operator's "poll"). When another actor holds the tenant
    /// past the wait, its work is made due at once and the tenant is answered as it is (`queued`).
    public func refresh(tenantID: String, source: ChangeSource = .api) async throws(OnboardingError) -> ProviderRequestOutcome {
        do {
            if let tenant = try await withLease(tenantID: tenantID, wait: settings.leaseWait, { lease throws(OnboardingError) in
                try await step(tenantID, lease: lease, source: source)
            }) {
                return .done(tenant)
            }
        } catch .tenantChanged {
            return .done(try await tenant(id: tenantID))
        }
        try await storage { try await store.expedite(tenantID: tenantID, now: clock.now()) }
        return .queued(try await tenant(id: tenantID))
    }

    /// A `failed` tenant goes back to `pending` and is submitted again with its (corrected) data.
    public func retry(tenantID: String, source: ChangeSource = .api) async throws(OnboardingError) -> ProviderRequestOutcome {
        try await resubmission(.retry, tenantID: tenantID, source: source)
    }

    /// An operator's explicit resubmission of a tenant waiting on its customer (a MagniFinance approval that was
    /// never asked or never arrived, a Wrapp login that expired): back to `pending`, and the provider is asked again.
    public func resubmit(tenantID: String, source: ChangeSource = .admin) async throws(OnboardingError) -> ProviderRequestOutcome {
        try await resubmission(.resubmit, tenantID: tenantID, source: source)
    }

    /// Retry and resubmit: the command under the tenant's lease, then the submission. When the lease stays busy the
    /// command is committed anyway, voiding the conversation in flight, with the submission queued to run next.
    private func resubmission(_ command: Command, tenantID: String, source: ChangeSource) async throws(OnboardingError) -> ProviderRequestOutcome {
        let decide: @Sendable (TenantContext) throws -> (Decision, ChangeSource) = { [clock, self] context in
            let capabilities = try self.definition(of: context.tenant).capabilities
            return (try TenantStateMachine.decide(context.tenant, .command(command, source: source, at: clock.now()), capabilities: capabilities), source)
        }
        do {
            if let tenant = try await withLease(tenantID: tenantID, wait: settings.leaseWait, { lease throws(OnboardingError) in
                let pending = try await commit(tenantID: tenantID, fence: lease, decide)
                // After a resubmission the provider may hold an earlier request: ask before submitting again.
                return try await submit(pending, lease: lease, source: source, askFirst: command == .resubmit)
            }) {
                return .done(tenant)
            }
        } catch .tenantChanged {
            return .done(try await tenant(id: tenantID))
        }
        return .queued(try await commit(tenantID: tenantID, voids: true, decide))
    }

    /// Credentials supplied by hand (a Wrapp user who existed before gets no webhook). Verified with the
    /// provider (bound to this customer) before they are kept; the tenant's status is then asked so it lands in
    /// the right state. They replace whatever the tenant had; the change is audited.
    public func supplyCredentials(tenantID: String, _ credentials: ProviderCredentials, actor: Actor) async throws(OnboardingError) -> Tenant {
        let tenant = try await tenant(id: tenantID)
        guard credentials.provider == tenant.provider else {
            throw .validationFailed([FieldError(field: "provider", code: "mismatch", message: "This tenant is onboarded onto \(tenant.provider.rawValue).")])
        }
        let adapter = try provider(for: tenant.provider)
        let updated = try await withLease(tenantID: tenantID, wait: settings.leaseWait) { lease throws(OnboardingError) -> Tenant in
            let tenant = try await self.tenant(id: tenantID)
            switch TenantCommands.refusal(.supplyCredentials, in: tenant.state, capabilities: try definition(of: tenant).capabilities) {
            case .state?: throw .invalidState(tenant.state, action: "given credentials")
            case .provider?: throw .validationFailed([FieldError(field: "provider", code: "mismatch", message: "\(tenant.provider.rawValue) credentials are not supplied by hand.")])
            case nil: break
            }
            var view = try await providerView(of: tenant)
            switch try await verify(lease, tenant.provider, { [view] in await adapter.verify(credentials, for: view) }) {
            case .invalid:
                try await storage { try await store.audit(AuditEntry(at: clock.now(), actor: actor, action: "credentials.rejected", tenantID: tenantID)) }
                throw .credentialsRejected
            case .unavailable(let reason, _):
                throw .providerUnavailable(reason: reason)
            case .customerUnknown:
                throw .providerUserUnknown(tenant.provider)
            case .valid:
                break
            }
            view.hasCredentials = true
            let askedAt = clock.now()
            var answer = try await status(lease, of: tenant, view: view, adapter: adapter)
            answer.credentials = credentials
            // Just proven with the provider: credentials refused earlier work again, even when they are the same ones.
            answer.verdict = .working
            return try await apply(answer, lease: lease, source: .api, at: askedAt, origin: .partner)
        }
        guard let updated else { throw .tenantBusy }
        try await storage { try await store.audit(AuditEntry(at: clock.now(), actor: actor, action: "credentials.supplied", tenantID: tenantID)) }
        return updated
    }
}
