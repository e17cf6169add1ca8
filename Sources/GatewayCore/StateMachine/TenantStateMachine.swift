import Foundation

/// The one place where the product's rules about tenant states live. Pure: no I/O, no clock, no randomness.
///
/// Every webhook, poll answer, API call and admin action becomes an `Observation` fed to `decide`.
/// Evidence older than what the tenant already reflects is ignored, so late or repeated answers never undo
/// a newer state.
public enum TenantStateMachine {
    /// Times are stored with less precision than `Date` holds (a round trip through unix seconds moves them by
    /// up to a microsecond), so evidence is stale only when it is older by more than this.
    static let clockResolution: TimeInterval = 0.001

    /// A tenant just accepted through the API: `pending` until the provider's first answer.
    public static func create(_ tenant: Tenant) -> Decision {
        Decision(tenant: tenant, events: [PlannedEvent(.created)], work: .submit(retryAfter: nil), changed: true, resetsBackoff: true)
    }

    /// `capabilities` are the tenant's provider's: they decide whether an active tenant is re-checked.
    public static func decide(_ tenant: Tenant, _ observation: Observation, capabilities: ProviderCapabilities) throws(TransitionError) -> Decision {
        switch observation.kind {
        case .command(let command):
            return try apply(command, to: tenant, observation, capabilities)
        case .finding(let finding):
            let decision = apply(finding, to: tenant, observation, capabilities)
            return credentialHealth(decision, from: tenant, observation, capabilities)
        }
    }

    // MARK: - Credential health

    /// What a credential health check's verdict (and the provider's details) add to a finding's decision:
    /// - an explicit refusal of an onboarded tenant's stored credentials suspends it (`credentials_revoked`, with the
    ///   module's next action) and emits `credentials_invalid` once;
    /// - while refused, only proof that credentials work again (a check that works, or new verified credentials kept)
    ///   lets a finding move the tenant on, and that emits `credentials_restored`; a poll that reports the customer
    ///   ready says nothing about the key;
    /// - an unknown verdict changes nothing but the record of the check.
    static func credentialHealth(_ decision: Decision, from tenant: Tenant, _ observation: Observation, _ capabilities: ProviderCapabilities) -> Decision {
        guard tenant.state != .offboarded, observation.verdict != nil || observation.details != nil || tenant.credentialsRevoked else {
            return decision
        }
        // Stale evidence says nothing about the credentials now (a late answer must not suspend or restore).
        if let evidenceAt = tenant.evidenceAt, observation.at < evidenceAt.addingTimeInterval(-clockResolution) { return decision }
        var decision = decision
        let at = observation.at
        if let verdict = observation.verdict {
            decision.tenant.credentialCheck = CredentialCheckRecord(verdict, at: at)
        }
        // New values are a visible change (a plan lapses, a payment date moves); a new `read_at` alone is not.
        let detailsChanged = observation.details.map { $0.values != tenant.providerDetails?.values } ?? false
        if let details = observation.details {
            decision.tenant.providerDetails = details
            if detailsChanged { decision.tenant.updatedAt = at }
        }
        let onboarded = [.active, .suspended].contains(tenant.state) && tenant.credentialsAvailable
        switch observation.verdict {
        case .refused(let reason, let action)? where onboarded:
            var next = decision.tenant
            next.state = .suspended
            next.nextAction = action
            // Refused once is refused since then: the time it was first found, and since when it is suspended, stay.
            next.lastError = tenant.credentialsRevoked ? tenant.lastError : TenantError(
                code: TenantError.credentialsRevoked,
                message: "The provider refused the stored credentials (\(reason)). The customer must reconnect: see next_action.", at: at
            )
            var events: [PlannedEvent] = []
            if tenant.state != .suspended {
                next.stateChangedAt = at
                events.append(PlannedEvent(.stateChanged, previousState: tenant.state))
            } else {
                next.stateChangedAt = tenant.stateChangedAt
            }
            if !tenant.credentialsRevoked { events.append(PlannedEvent(.credentialsInvalid)) }
            let visible = !events.isEmpty || next.nextAction != tenant.nextAction || next.providerStatus != tenant.providerStatus || detailsChanged
            next.updatedAt = visible ? at : tenant.updatedAt
            // A key known dead is checked again daily, not hourly (new credentials or a re-link restore at once); a
            // company that must approve again has no other way to say it has, so it is checked as any approval is.
            let work: WorkPlan = action?.type == .awaitApproval ? .check(.awaiting, retryAfter: nil) : .check(.maintenance, retryAfter: nil)
            return Decision(
                tenant: next, events: events, work: work, changed: true, resetsBackoff: !events.isEmpty, credentials: nil
            )
        default:
            break
        }
        if tenant.credentialsRevoked {
            let works = observation.verdict == .working || decision.credentials != nil
            guard works else {
                // Still refused as far as anyone knows: the finding moves nothing; the check is recorded.
                var kept = tenant
                kept.credentialCheck = decision.tenant.credentialCheck
                kept.providerDetails = decision.tenant.providerDetails
                if detailsChanged { kept.updatedAt = at }
                let work: WorkPlan = tenant.nextAction?.type == .awaitApproval ? .check(.awaiting, retryAfter: nil) : .check(.maintenance, retryAfter: nil)
                return Decision(tenant: kept, events: [], work: work, changed: kept != tenant, resetsBackoff: false)
            }
            if decision.tenant.credentialsRevoked {
                decision.tenant.lastError = nil
                if decision.tenant.nextAction?.type == .provideCredentials { decision.tenant.nextAction = nil }
            }
            decision.tenant.updatedAt = at
            decision.events.append(PlannedEvent(.credentialsRestored))
            decision.changed = true
            return decision
        }
        if decision.tenant != tenant { decision.changed = true }
        return decision
    }

    // MARK: - Commands

    private static func apply(
        _ command: Command, to tenant: Tenant, _ observation: Observation, _ capabilities: ProviderCapabilities
    ) throws(TransitionError) -> Decision {
        // A resubmission of a failed tenant is the operator's transfer.
        let asked: TenantCommand = command == .resubmit && tenant.state == .failed ? .transfer : command.tenantCommand
        guard TenantCommands.allowed(in: tenant.state, capabilities: capabilities).contains(asked) else {
            throw .notAllowed(command: command, state: tenant.state)
        }
        var next = tenant
        switch (command, tenant.state) {
        case (.retry, .failed):
            next.lastError = nil
            return transition(tenant, to: &next, .pending, observation, work: .submit(retryAfter: nil), keeping: nil)
        case (.resubmit, .actionRequired), (.resubmit, .failed):
            // From `failed` it is an operator's transfer: the provider is asked first, and what it already holds
            // (a company partnered through an earlier onboarding) is taken for this tenant. Audited by the caller.
            next.lastError = nil
            next.nextAction = nil
            return transition(tenant, to: &next, .pending, observation, work: .submit(retryAfter: nil), keeping: nil)
        case (.offboard, let state) where state != .offboarded:
            // A tombstone: ids, provider and timestamps stay; personal data goes.
            next.nextAction = nil
            next.credentialsAvailable = false
            next.lastError = nil
            next.profile = Profile()
            next.metadata = [:]
            next.providerStatus = nil
            next.providerDetails = nil
            next.credentialCheck = nil
            next.state = .offboarded
            next.stateChangedAt = observation.at
            next.updatedAt = observation.at
            return Decision(
                tenant: next, events: [PlannedEvent(.offboarded, previousState: tenant.state)],
                work: .none, changed: true, resetsBackoff: true
            )
        default:
            throw .notAllowed(command: command, state: tenant.state)
        }
    }

    // MARK: - Provider findings

    private static func apply(_ finding: Finding, to tenant: Tenant, _ observation: Observation, _ capabilities: ProviderCapabilities) -> Decision {
        let currentWork = workFor(tenant, capabilities)
        if tenant.state == .offboarded {
            // Whatever arrives late for an erased customer is dropped, credentials above all.
            return unchanged(tenant, work: .none)
        }
        let kept = keptCredentials(observation.credentials, for: tenant)
        if let evidenceAt = tenant.evidenceAt, observation.at < evidenceAt.addingTimeInterval(-clockResolution) {
            // Stale evidence moves nothing, but verified credentials are a fact of their own: keep them.
            guard kept != nil else { return unchanged(tenant, work: currentWork) }
            return settle(tenant, tenant, observation, work: currentWork, keeping: kept)
        }
        var next = tenant
        if case .unavailable = finding {} else {
            next.evidenceAt = observation.at
        }

        switch finding {
        case .waiting(let status):
            next.providerStatus = status
            return settle(tenant, next, observation, work: currentWork, keeping: kept)

        case .actionRequired(let action, let status):
            guard [.pending, .actionRequired].contains(tenant.state) else {
                // Never backwards: an active, suspended or failed tenant is not sent back to waiting by a poll.
                return settle(tenant, next, observation, work: currentWork, keeping: kept)
            }
            next.providerStatus = status
            next.nextAction = action
            next.lastError = nil
            return transition(tenant, to: &next, .actionRequired, observation, work: .check(.awaiting, retryAfter: nil), keeping: kept)

        case .ready(let status):
            guard tenant.credentialsAvailable || kept != nil else {
                // Usable at the provider but nothing to hand the partner yet: someone must supply the credentials.
                return apply(.actionRequired(NextAction(type: .provideCredentials), providerStatus: status), to: tenant, observation, capabilities)
            }
            next.providerStatus = status
            next.nextAction = nil
            next.lastError = nil
            next.credentialsAvailable = true
            return transition(tenant, to: &next, .active, observation, work: workFor(next, capabilities, in: .active), keeping: kept)

        case .lapsed(let status):
            // Not usable at the provider. Onboarded, that is a lapse; still onboarding, the customer has to finish at
            // the provider (pay, say): the link they have, or a fresh one the service asks for (`resumeURLNeeded`).
            if [.pending, .actionRequired].contains(tenant.state), let link = tenant.nextAction, link.type == .redirectToURL {
                return apply(.actionRequired(link, providerStatus: status), to: tenant, observation, capabilities)
            }
            next.providerStatus = status
            guard tenant.state == .active else {
                return settle(tenant, next, observation, work: currentWork, keeping: kept)
            }
            return transition(tenant, to: &next, .suspended, observation, work: .check(.awaiting, retryAfter: nil), keeping: kept)

        case .rejected(let error, let status):
            guard [.pending, .actionRequired, .failed].contains(tenant.state) else {
                return settle(tenant, next, observation, work: currentWork, keeping: kept)
            }
            next.providerStatus = status
            next.nextAction = nil
            next.lastError = error
            next.lastError?.at = observation.at
            return transition(tenant, to: &next, .failed, observation, work: .none, keeping: nil)

        case .unavailable(let reason, let retryAfter):
            let work: WorkPlan
            switch tenant.state {
            case .pending: work = .submit(retryAfter: retryAfter)
            case .actionRequired, .suspended, .active: work = .check(.awaiting, retryAfter: retryAfter)
            case .failed, .offboarded: work = .none
            }
            if tenant.state == .pending {
                next.lastError = TenantError(code: "provider_unavailable", message: reason, at: observation.at)
            }
            return settle(tenant, next, observation, work: work, keeping: kept)
        }
    }

    /// Which offered credentials the tenant keeps. A webhook is unsigned: even proven genuine, its key only fills an
    /// empty place and never replaces credentials a tenant has (only the partner's `PUT …/credentials` does).
    static func keptCredentials(_ offer: CredentialOffer?, for tenant: Tenant) -> ProviderCredentials? {
        guard let offer, offer.isNew, tenant.state != .offboarded else { return nil }
        // Credentials the provider refused are no place to keep: a verified webhook key (the customer re-linked) fills it.
        if offer.origin == .webhook, tenant.credentialsAvailable, !tenant.credentialsRevoked { return nil }
        return offer.credentials
    }

    /// Whether a finding leaves a customer who is still onboarding with nothing to act on: not usable at the provider
    /// (`lapsed`), no link to follow, and a provider that can give one. The service then asks the provider for a
    /// fresh URL and reports that instead (an effect the machine cannot perform itself).
    public static func resumeURLNeeded(_ finding: Finding, for tenant: Tenant, capabilities: ProviderCapabilities) -> Bool {
        guard case .lapsed = finding, capabilities.hasOnboardingURL, [.pending, .actionRequired].contains(tenant.state) else { return false }
        return tenant.nextAction?.type != .redirectToURL
    }

    // MARK: - Helpers

    /// The work that keeps a tenant in `state` moving, when an observation changes nothing.
    static func workFor(_ tenant: Tenant, _ capabilities: ProviderCapabilities, in state: TenantState? = nil) -> WorkPlan {
        switch state ?? tenant.state {
        case .pending: .submit(retryAfter: nil)
        case .actionRequired, .suspended: .check(.awaiting, retryAfter: nil)
        case .active: capabilities.readinessCanLapse || capabilities.watchesCredentialHealth ? .check(.maintenance, retryAfter: nil) : .none
        case .failed, .offboarded: .none
        }
    }

    private static func unchanged(_ tenant: Tenant, work: WorkPlan) -> Decision {
        Decision(tenant: tenant, events: [], work: work, changed: false, resetsBackoff: false)
    }

    /// No state change; the tenant's details may still have changed (provider status, last error, credentials).
    private static func settle(_ old: Tenant, _ new: Tenant, _ observation: Observation, work: WorkPlan, keeping kept: ProviderCredentials?) -> Decision {
        var new = new
        var events: [PlannedEvent] = []
        if kept != nil {
            new.credentialsAvailable = true
            events.append(PlannedEvent(.credentialsAvailable))
        }
        let changed = !sameVisibleState(old, new) || !events.isEmpty || old.evidenceAt != new.evidenceAt
        if changed, !sameVisibleState(old, new) || !events.isEmpty { new.updatedAt = observation.at }
        return Decision(tenant: new, events: events, work: work, changed: changed, resetsBackoff: false, credentials: kept)
    }

    private static func transition(
        _ old: Tenant, to new: inout Tenant, _ state: TenantState, _ observation: Observation, work: WorkPlan, keeping kept: ProviderCredentials?
    ) -> Decision {
        guard old.state != state else {
            let resets = old.nextAction != new.nextAction
            var decision = settle(old, new, observation, work: work, keeping: kept)
            decision.resetsBackoff = resets
            return decision
        }
        new.state = state
        new.stateChangedAt = observation.at
        new.updatedAt = observation.at
        var events = [PlannedEvent(.stateChanged, previousState: old.state)]
        if kept != nil {
            new.credentialsAvailable = true
            events.append(PlannedEvent(.credentialsAvailable))
        }
        return Decision(tenant: new, events: events, work: work, changed: true, resetsBackoff: true, credentials: kept)
    }

    private static func sameVisibleState(_ a: Tenant, _ b: Tenant) -> Bool {
        a.state == b.state && a.nextAction == b.nextAction && a.providerStatus == b.providerStatus
            && a.lastError == b.lastError && a.credentialsAvailable == b.credentialsAvailable
    }
}
