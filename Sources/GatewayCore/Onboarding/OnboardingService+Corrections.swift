import Foundation

/// What a `PATCH` changes: each given profile field replaces the old one (nil clears it), each metadata key is set
/// or (nil) removed. Fields not mentioned stay as they are.
public struct TenantCorrection: Sendable {
    public var profile: (@Sendable (Profile) -> Profile)?
    public var metadata: [String: String?]?
    /// The dotted names of the fields the request touched, for the audit log.
    public var fields: [String]

    public init(profile: (@Sendable (Profile) -> Profile)?, metadata: [String: String?]?, fields: [String]) {
        self.profile = profile
        self.metadata = metadata
        self.fields = fields
    }
}

extension OnboardingService {
    /// Corrects a tenant's profile or metadata. The corrected profile is validated as on create. Fields the provider
    /// already holds are frozen while it may act on them (`ProfileFreeze`); a profile change voids any provider
    /// conversation in flight, and a pending tenant is submitted again at once with the corrected data.
    public func correct(tenantID: String, _ correction: TenantCorrection, actor: Actor) async throws(OnboardingError) -> Tenant {
        let now = clock.now()
        // A company is held by at most one live tenant of a provider whose credentials are the company's: a correction
        // may not move a tenant onto a company another holds (its submission could take that company's tokens).
        if let change = correction.profile {
            let current = try await tenant(id: tenantID)
            if try definition(of: current).capabilities.credentialsBelongToCompany,
               let taxID = change(current.profile).company?.taxID, taxID != current.profile.company?.taxID,
               try await storage({ try await store.companyHeld(provider: current.provider, taxID: taxID, excluding: tenantID) }) {
                throw .companyAlreadyOnboarded
            }
        }
        // Only a profile change voids conversations in flight: their answer was about the data before it.
        let voids = correction.profile != nil
        let corrected = try await commit(tenantID: tenantID, voids: voids) { context in
            var tenant = context.tenant
            // The commands table says when a correction is allowed; erasure needs nothing of the provider.
            let capabilities = self.registry.definition(tenant.provider)?.capabilities ?? ProviderCapabilities()
            guard TenantCommands.refusal(.correct, in: tenant.state, capabilities: capabilities) == nil else {
                throw OnboardingError.invalidState(tenant.state, action: "corrected")
            }
            var resubmits = false
            if let change = correction.profile {
                let profile = change(tenant.profile)
                let changed = ProfileFreeze.changedFields(from: tenant.profile, to: profile)
                let frozen = ProfileFreeze.frozen(changed, tenant: tenant, provider: try self.definition(of: tenant), submissionPending: context.submissionPending)
                guard frozen.isEmpty else { throw OnboardingError.profileFrozen(frozen) }
                tenant.profile = profile
                resubmits = tenant.state == .pending && !changed.isEmpty
            }
            for (key, value) in correction.metadata ?? [:] {
                tenant.metadata[key] = value
            }
            var errors = correction.profile == nil ? [] : ProfileValidator.validate(tenant.profile, for: try self.definition(of: tenant))
            errors += ProfileValidator.validate(tenant.metadata)
            guard errors.isEmpty else { throw OnboardingError.validationFailed(errors) }
            tenant.updatedAt = now
            let decision = Decision(
                tenant: tenant, events: [], work: .submit(retryAfter: nil), changed: tenant != context.tenant, resetsBackoff: resubmits
            )
            return (decision, .api)
        } adjust: { update in
            // A pending tenant is submitted again now, with the corrected data; any other keeps its work as it is.
            if !update.tenant.isPending || !voids { update.keepsWork = true }
        }
        let entry = AuditEntry(at: now, actor: actor, action: "tenant.corrected", tenantID: tenantID, details: ["fields": correction.fields.sorted().joined(separator: ",")])
        try await storage { try await store.audit(entry) }
        return corrected
    }

    /// Offboards: the tenant becomes a tombstone and every trace of the customer's data is erased. It waits for no
    /// lease: it voids whatever conversation is in flight, so no late answer can bring anything back.
    public func offboard(tenantID: String, source: ChangeSource, actor: Actor) async throws(OnboardingError) -> Tenant {
        let now = clock.now()
        let registry = registry
        let tombstone = try await commit(tenantID: tenantID, voids: true) { context in
            // Erasure needs nothing of the provider: a row naming an unknown one is offboarded all the same.
            let capabilities = registry.definition(context.tenant.provider)?.capabilities ?? ProviderCapabilities()
            return (try TenantStateMachine.decide(context.tenant, .command(.offboard, source: source, at: now), capabilities: capabilities), source)
        } adjust: { update in
            update.erasesPersonalData = true
            update.clearsSubmission = true
        }
        try await storage { try await store.audit(AuditEntry(at: now, actor: actor, action: "tenant.offboarded", tenantID: tenantID)) }
        do {
            try await store.flushErasures()
        } catch {
            // The data is gone from every table; only old page images may linger until the next checkpoint.
            logger.warning("WAL checkpoint after offboarding did not complete", metadata: ["tenant.id": "\(tenantID)"])
        }
        logger.info("tenant offboarded", metadata: ["tenant.id": "\(tenantID)"])
        return tombstone
    }

    /// A fresh provider URL for the customer (Wrapp: a new `external_login`), under the tenant's lease. A tenant
    /// waiting on a redirect gets the new URL as its `next_action` too. `tenantBusy` when the lease stays taken.
    public func freshOnboardingURL(tenantID: String) async throws(OnboardingError) -> String {
        let url = try await withLease(tenantID: tenantID, wait: settings.leaseWait) { lease throws(OnboardingError) -> String in
            let tenant = try await tenant(id: tenantID)
            switch TenantCommands.refusal(.onboardingLink, in: tenant.state, capabilities: try definition(of: tenant).capabilities) {
            case .state?: throw .invalidState(tenant.state, action: "given an onboarding link")
            case .provider?: throw .onboardingLinkNotSupported(tenant.provider, try definition(of: tenant).withoutOnboardingURL)
            case nil: break
            }
            let adapter = try provider(for: tenant.provider)
            let view = try await providerView(of: tenant)
            let askedAt = clock.now()
            switch try await onboardingURL(lease, tenant.provider, view: view, adapter: adapter) {
            case .notSupported:
                throw .onboardingLinkNotSupported(tenant.provider, try definition(of: tenant).withoutOnboardingURL)
            case .unavailable(let reason):
                throw .providerUnavailable(reason: reason)
            case .url(let url):
                if tenant.state == .actionRequired, tenant.nextAction?.type == .redirectToURL {
                    let action = NextAction(type: .redirectToURL, url: url)
                    let answer = ProviderAnswer(.actionRequired(action, providerStatus: tenant.providerStatus ?? "login_url_issued"))
                    try await apply(answer, lease: lease, source: .api, at: askedAt)
                }
                return url
            }
        }
        guard let url else { throw .tenantBusy }
        return url
    }
}

extension Tenant {
    var isPending: Bool { state == .pending }
}
