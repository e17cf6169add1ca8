import Foundation
import Synchronization

/// A token handed out for a tenant: what the partner's invoicing service presents to the provider.
public struct AccessTokenGrant: Sendable {
    public var provider: ProviderKind
    public var token: IssuedToken
    /// Header name to value, `{token}` standing for the token.
    public var use: [String: String]
}

/// What the provider proxy needs for one call: where it may go, and the credentials it adds.
public struct ProxyGrant: Sendable {
    public var tenant: Tenant
    public var target: ProxyTarget
    /// The token the call carries, when the provider takes one (to tell a stale one from a refused key on a `401`).
    public var token: IssuedToken?
}

/// One piece of work per key in flight in this process: callers that come while it runs wait for its result instead
/// of starting their own (a thousand token requests for one tenant make one login).
final class SingleFlight<Value: Sendable>: Sendable {
    private let flights = Mutex<[String: Task<Value, any Error>]>([:])

    func run(_ key: String, _ body: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = flights.withLock { flights -> Task<Value, any Error> in
            if let running = flights[key] { return running }
            // Not the caller's task: a caller that goes away does not cancel the login the others wait for. The entry
            // is removed when the work ends (that waits for this lock, so it always comes after the insertion).
            let task = Task<Value, any Error> {
                defer { self.flights.withLock { $0[key] = nil } }
                return try await body()
            }
            flights[key] = task
            return task
        }
        return try await task.value
    }
}

extension OnboardingService {
    /// A token for the tenant's credentials: the one kept, while more than `tokenMargin` of its life is left, else a
    /// fresh login. Audited like a credential read. The long-lived secret never leaves the gateway this way.
    /// `replacing`: a token the provider refused; it is not handed out again (a fresh login, unless another caller
    /// already made one).
    public func accessToken(tenantID: String, replacing refused: String? = nil, actor: Actor) async throws(OnboardingError) -> AccessTokenGrant {
        let tenant = try await tenant(id: tenantID)
        let broker = try broker(for: tenant, needs: \.issuesAccessTokens, otherwise: .accessTokensNotSupported(tenant.provider))
        let token = try await token(for: tenant, broker: broker, replacing: refused)
        let entry = AuditEntry(at: clock.now(), actor: actor, action: "access_token.issued", tenantID: tenantID)
        try await storage { try await store.audit(entry) }
        return AccessTokenGrant(provider: tenant.provider, token: token, use: broker.tokenUse)
    }

    /// Where one proxied call goes and what it carries. `replacing`: the token a call just had refused with a `401`;
    /// a fresh login replaces it (unless another caller already did).
    public func proxyGrant(tenantID: String, replacing failed: IssuedToken? = nil) async throws(OnboardingError) -> ProxyGrant {
        let tenant = try await tenant(id: tenantID)
        let broker = try broker(for: tenant, needs: \.proxiesCalls, otherwise: .proxyNotSupported(tenant.provider))
        guard let credentials = try await storage({ try await store.credentials(tenantID: tenantID) }) else { throw .credentialsNotAvailable }
        let token = broker.tokensNeedLogin ? try await self.token(for: tenant, broker: broker, replacing: failed?.token) : nil
        guard let target = broker.proxyTarget(for: credentials, token: token) else { throw .credentialsNotAvailable }
        return ProxyGrant(tenant: tenant, target: target, token: token)
    }

    /// A provider refused the tenant's credentials where the gateway was not looking (a proxied call's second `401`):
    /// its credential check is made due, now, or (never dropped, only put off) `suspectCheckInterval` after the last
    /// check, 15 times that after a check that found them working (a route the customer's plan does not allow may
    /// answer 401 all day). The check, not this, decides. In this process, one request for a check per
    /// `suspectCheckInterval` (a burst of 401s makes one, not one each).
    public func credentialsSuspect(_ tenant: Tenant) async {
        guard registry.definition(tenant.provider)?.capabilities.watchesCredentialHealth == true, [.active, .suspended].contains(tenant.state)
        else { return }
        let now = clock.now()
        var due = now
        if let check = tenant.credentialCheck {
            let wait = check.result == "working" ? 15 * settings.suspectCheckInterval : settings.suspectCheckInterval
            due = max(now, check.at.addingTimeInterval(wait))
        }
        // Asked already, for a check no later than this one that has not run yet: nothing to add. (A check's time is
        // stored to the second: one that ran in the same second as it was asked for counts as run.)
        let lastCheck = tenant.credentialCheck.map { $0.at.addingTimeInterval(1) } ?? .distantPast
        let asked = suspicions.withLock { asked -> Bool in
            if let earlier = asked[tenant.id], earlier <= due, earlier > lastCheck { return false }
            if asked.count > 10_000 { asked = asked.filter { $0.value > now } }
            asked[tenant.id] = due
            return true
        }
        guard asked else { return }
        do {
            try await store.expedite(tenantID: tenant.id, now: due)
            logger.info("credential check asked for: the provider refused a call", metadata: ["tenant.id": "\(tenant.id)", "due": "\(due)"])
        } catch {
            logger.warning("could not ask for a credential check", metadata: ["tenant.id": "\(tenant.id)", "error": "\(String(describing: error))"])
        }
    }

    /// The tenant's broker, when its provider can do what is asked and the tenant has credentials that work.
    func broker(
        for tenant: Tenant, needs capability: KeyPath<ProviderCapabilities, Bool>, otherwise refusal: OnboardingError
    ) throws(OnboardingError) -> any CredentialBroker {
        guard try definition(of: tenant).capabilities[keyPath: capability] else { throw refusal }
        guard let broker = try provider(for: tenant.provider).broker else { throw refusal }
        // Only an onboarded tenant's credentials are used: a company's tokens never serve a tenant that is still
        // onboarding or was refused.
        guard [.active, .suspended].contains(tenant.state), tenant.credentialsAvailable else { throw .credentialsNotAvailable }
        if tenant.credentialsRevoked { throw .credentialsRevoked }
        return broker
    }

    /// The kept token, or one fresh login: one per tenant at a time in this process (`tokenFlights`), and across
    /// replicas under the tenant's lease, where the kept token is read again first (another replica may have just
    /// logged in).
    func token(for tenant: Tenant, broker: any CredentialBroker, replacing failed: String?) async throws(OnboardingError) -> IssuedToken {
        guard broker.tokensNeedLogin else {
            // The token is part of the credentials (MagniFinance): read, never asked for, never kept twice.
            guard let credentials = try await storage({ try await store.credentials(tenantID: tenant.id) }) else { throw .credentialsNotAvailable }
            switch await broker.accessToken(with: credentials) {
            case .issued(let token):
                if token.token == failed { await credentialsSuspect(tenant) }
                return token
            case .refused, .unavailable: throw .credentialsNotAvailable
            }
        }
        if let kept = try await storage({ try await store.accessToken(tenantID: tenant.id) }), keep(kept, replacing: failed) {
            // A refused token too young to replace: the credentials themselves are in doubt.
            if kept.token == failed { await credentialsSuspect(tenant) }
            return kept
        }
        let token: IssuedToken
        do {
            token = try await tokenFlights.run(tenant.id) { [self] () async throws -> IssuedToken in
                try await self.login(tenant, broker: broker, replacing: failed)
            }
        } catch let error as OnboardingError {
            throw error
        } catch {
            throw .internalFailure
        }
        // A caller that joined another's flight may get back the very token it asked to replace: not as an answer.
        if let failed, token.token == failed, !keep(token, replacing: failed) { throw .tenantBusy }
        return token
    }

    /// Whether the kept token is handed out: usable for more than the margin, and not the one a caller says the
    /// provider refused. A refused token under a minute old is handed out all the same: it was just made, so another
    /// login would make the same answer, and a caller repeating `replace` cannot make a login each time.
    func keep(_ kept: IssuedToken, replacing failed: String?) -> Bool {
        let now = clock.now()
        guard kept.usable(at: now, margin: settings.tokenMargin) else { return false }
        guard kept.token == failed else { return true }
        return kept.issuedAt.map { now.timeIntervalSince($0) < Self.freshTokenAge } ?? false
    }

    /// A token this young is not replaced on a caller's word.
    static let freshTokenAge: TimeInterval = 60

    /// A token as the provider gave it, its life counted on the gateway's own clock from now (the provider's clock, and
    /// the adapter's, may differ from ours).
    func received(_ token: IssuedToken) -> IssuedToken {
        let now = clock.now()
        var token = token
        token.expiresAt = token.expiresAt.map { now.addingTimeInterval(max(0, $0.timeIntervalSinceNow)) }
        token.issuedAt = now
        return token
    }

    private func login(_ tenant: Tenant, broker: any CredentialBroker, replacing failed: String?) async throws(OnboardingError) -> IssuedToken {
        let token = try await withLease(tenantID: tenant.id, wait: settings.leaseWait) { lease throws(OnboardingError) -> IssuedToken in
            if let kept = try await storage({ try await store.accessToken(tenantID: tenant.id) }), keep(kept, replacing: failed) {
                return kept
            }
            // Read again under the lease: the credentials may have been replaced, or the tenant offboarded, meanwhile.
            let current = try await self.tenant(id: tenant.id)
            guard [.active, .suspended].contains(current.state), current.credentialsAvailable,
                let credentials = try await storage({ try await store.credentials(tenantID: tenant.id) })
            else { throw .credentialsNotAvailable }
            if current.credentialsRevoked { throw .credentialsRevoked }
            let answer = try await call(lease, tenant.provider, "access_token", whenOpen: { reason, retryAfter in
                TokenAnswer.unavailable(reason: reason, retryAfter: retryAfter)
            }, failure: { answer in
                if case .unavailable(let reason, _) = answer { return reason }
                return nil
            }) { await broker.accessToken(with: credentials) }
            switch answer {
            case .issued(let given):
                let token = received(given)
                do {
                    try await store.saveAccessToken(token, lease: lease)
                } catch is LeaseLost {
                    throw .tenantChanged
                } catch {
                    // It is a cache: a token that could not be kept still serves the callers waiting for it.
                    logger.warning("an access token could not be kept", metadata: ["tenant.id": "\(tenant.id)", "error": "\(String(describing: error))"])
                }
                logger.info("access token renewed", metadata: ["tenant.id": "\(tenant.id)", "provider": "\(tenant.provider.rawValue)"])
                return token
            case .refused(let reason):
                logger.warning("the provider refused the stored credentials", metadata: ["tenant.id": "\(tenant.id)", "reason": "\(reason)"])
                await credentialsSuspect(current)
                throw .credentialsRefused
            case .unavailable(let reason, _):
                throw .providerUnavailable(reason: reason)
            }
        }
        if let token { return token }
        // Someone else holds the tenant past the wait: a kept token with a minute or more of life left still serves.
        if let kept = try await storage({ try await store.accessToken(tenantID: tenant.id) }), kept.token != failed,
           kept.expiresAt.map({ $0.timeIntervalSince(clock.now()) >= 60 }) ?? true {
            return kept
        }
        throw .tenantBusy
    }
}
