import Foundation
import Testing

@testable import GatewayCore
import Providers

/// Every transition of the state machine, including stale and repeated evidence.
@Suite struct TenantStateMachineTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func tenant(_ state: TenantState, provider: ProviderKind = .wrapp, credentials: Bool = false, evidenceAt: Date? = nil) -> Tenant {
        Tenant(
            id: "ten_1", provider: provider, externalID: "ext-1", state: state,
            nextAction: state == .actionRequired ? NextAction(type: .redirectToURL, url: "https://wrapp.example/login/1") : nil,
            providerStatus: "before", profile: Profile(email: "a@example.com", phone: "+302101234567"),
            credentialsAvailable: credentials, createdAt: t0, updatedAt: t0, stateChangedAt: t0, evidenceAt: evidenceAt
        )
    }

    static let key = ProviderCredentials.wrapp(wrappUserID: "u-1", apiKey: "k-1")

    /// `credentials`: new, verified credentials come with the finding, trusted as their source is (a webhook's only
    /// fill an empty place).
    static func observe(_ finding: Finding, at offset: TimeInterval = 10, credentials: Bool = false, source: ChangeSource = .poll) -> Observation {
        let offer = credentials ? CredentialOffer(key, origin: source == .webhook ? .webhook : .provider, isNew: true) : nil
        return .finding(finding, source: source, at: t0.addingTimeInterval(offset), credentials: offer)
    }

    static let redirect = NextAction(type: .redirectToURL, url: "https://wrapp.example/login/2")
    static let rejection = TenantError(code: "provider_rejected", message: "no", errors: [FieldError(field: "profile.email", code: "rejected", message: "x")], at: t0)

    /// (from state, finding, tenant has credentials) → expected state. The whole table, so a new rule is a new row.
    static let table: [(TenantState, Finding, Bool, TenantState)] = {
        let waiting = Finding.waiting(providerStatus: "w")
        let action = Finding.actionRequired(redirect, providerStatus: "a")
        let ready = Finding.ready(providerStatus: "r")
        let lapsed = Finding.lapsed(providerStatus: "l")
        let rejected = Finding.rejected(rejection, providerStatus: "x")
        let unavailable = Finding.unavailable(reason: "down", retryAfter: nil)
        return [
            (.pending, waiting, false, .pending), (.pending, action, false, .actionRequired), (.pending, ready, true, .active),
            (.pending, ready, false, .actionRequired), (.pending, lapsed, false, .pending), (.pending, rejected, false, .failed),
            (.pending, unavailable, false, .pending),
            (.actionRequired, waiting, false, .actionRequired), (.actionRequired, action, false, .actionRequired),
            (.actionRequired, ready, true, .active), (.actionRequired, ready, false, .actionRequired),
            (.actionRequired, lapsed, true, .actionRequired), (.actionRequired, rejected, false, .failed),
            (.actionRequired, unavailable, false, .actionRequired),
            // Never backwards: an active tenant is not sent back to waiting or failed by a poll.
            (.active, waiting, true, .active), (.active, action, true, .active), (.active, ready, true, .active),
            (.active, lapsed, true, .suspended), (.active, rejected, true, .active), (.active, unavailable, true, .active),
            (.suspended, waiting, true, .suspended), (.suspended, action, true, .suspended), (.suspended, ready, true, .active),
            (.suspended, lapsed, true, .suspended), (.suspended, rejected, true, .suspended), (.suspended, unavailable, true, .suspended),
            (.failed, waiting, false, .failed), (.failed, action, false, .failed), (.failed, ready, true, .active),
            (.failed, lapsed, false, .failed), (.failed, rejected, false, .failed), (.failed, unavailable, false, .failed),
        ] + [waiting, action, ready, lapsed, rejected, unavailable].map { (.offboarded, $0, false, .offboarded) }
    }()

    @Test("every state × finding", arguments: table.indices)
    func transitionTable(_ index: Int) throws {
        let (from, finding, credentials, expected) = Self.table[index]
        let decision = try TenantStateMachine.decide(Self.tenant(from, credentials: credentials), Self.observe(finding))
        #expect(decision.tenant.state == expected, "\(from) + \(finding)")
        let changedState = from != expected
        #expect(decision.events.contains { $0.type == .stateChanged } == changedState)
        if changedState {
            #expect(decision.events.first { $0.type == .stateChanged }?.previousState == from)
            #expect(decision.tenant.stateChangedAt == Self.t0.addingTimeInterval(10))
            #expect(decision.resetsBackoff)
        }
        if from == .offboarded { #expect(!decision.changed && decision.work == .none) }
    }

    @Test func readyWithoutCredentialsAsksForThem() throws {
        let decision = try TenantStateMachine.decide(Self.tenant(.actionRequired), Self.observe(.ready(providerStatus: "subscription_active")))
        #expect(decision.tenant.state == .actionRequired)
        #expect(decision.tenant.nextAction == NextAction(type: .provideCredentials))
        #expect(decision.resetsBackoff, "a new next action starts a new waiting period")
    }

    @Test func readyWithNewCredentialsActivatesAndAnnouncesThem() throws {
        let decision = try TenantStateMachine.decide(
            Self.tenant(.actionRequired), Self.observe(.ready(providerStatus: "subscription_active"), credentials: true, source: .webhook)
        )
        #expect(decision.tenant.state == .active)
        #expect(decision.tenant.credentialsAvailable)
        #expect(decision.tenant.nextAction == nil)
        #expect(decision.events.map(\.type) == [.stateChanged, .credentialsAvailable])
        #expect(decision.work == .check(.maintenance, retryAfter: nil), "Wrapp readiness can lapse, so it is re-checked")
    }

    @Test func magniFinanceActiveIsCheckedDailyForItsCredentials() throws {
        let tenant = Self.tenant(.actionRequired, provider: .magnifinance)
        let decision = try TenantStateMachine.decide(tenant, Self.observe(.ready(providerStatus: "access_granted"), credentials: true))
        #expect(decision.tenant.state == .active)
        #expect(decision.work == .check(.maintenance, retryAfter: nil), "its credentials' health is watched (a partnership can be withdrawn)")
    }

    @Test func aLapseWhileOnboardingKeepsTheCustomerOnTheirLinkOrAsksForOne() throws {
        let lapsed = Finding.lapsed(providerStatus: "subscription_inactive")
        var tenant = Self.tenant(.actionRequired, credentials: true)
        tenant.nextAction = Self.redirect
        let decision = try TenantStateMachine.decide(tenant, Self.observe(lapsed))
        #expect(decision.tenant.state == .actionRequired && decision.tenant.nextAction == Self.redirect)
        #expect(decision.tenant.providerStatus == "subscription_inactive")
        let wrapp = WrappModule().capabilities
        #expect(!TenantStateMachine.resumeURLNeeded(lapsed, for: tenant, capabilities: wrapp), "the link they have")
        tenant.nextAction = NextAction(type: .provideCredentials)
        #expect(TenantStateMachine.resumeURLNeeded(lapsed, for: tenant, capabilities: wrapp), "nothing to follow: a fresh link")
        #expect(!TenantStateMachine.resumeURLNeeded(lapsed, for: tenant, capabilities: MagniFinanceModule().capabilities), "no URL to give")
        #expect(!TenantStateMachine.resumeURLNeeded(lapsed, for: Self.tenant(.active, credentials: true), capabilities: wrapp), "a lapse")
        #expect(!TenantStateMachine.resumeURLNeeded(.waiting(providerStatus: "w"), for: tenant, capabilities: wrapp))
    }

    /// The commands each state allows, for a provider with every capability and one with none: one table for the
    /// state machine, the API and the console.
    @Test func commandsPerState() {
        let all = ProviderCapabilities(acceptsTypedCredentials: true, hasOnboardingURL: true)
        let none = ProviderCapabilities()
        let expected: [TenantState: Set<TenantCommand>] = [
            .pending: [.refresh, .correct, .offboard, .onboardingLink],
            .actionRequired: [.refresh, .correct, .offboard, .resubmit, .onboardingLink, .supplyCredentials],
            .active: [.refresh, .correct, .offboard, .onboardingLink, .supplyCredentials],
            .suspended: [.refresh, .correct, .offboard, .onboardingLink, .supplyCredentials],
            .failed: [.refresh, .correct, .offboard, .retry, .transfer],
            .offboarded: [],
        ]
        for state in TenantState.allCases {
            #expect(TenantCommands.allowed(in: state, capabilities: all) == expected[state], "\(state)")
            #expect(TenantCommands.allowed(in: state, capabilities: none) == expected[state]!.subtracting([.onboardingLink, .supplyCredentials]), "\(state)")
        }
        #expect(TenantCommands.refusal(.onboardingLink, in: .active, capabilities: none) == .provider)
        #expect(TenantCommands.refusal(.onboardingLink, in: .failed, capabilities: none) == .state, "the state speaks first")
    }

    @Test func staleEvidenceIsIgnored() throws {
        // The webhook made the tenant active at t0+100; a poll asked at t0+50 answers afterwards.
        let tenant = Self.tenant(.active, credentials: true, evidenceAt: Self.t0.addingTimeInterval(100))
        let late = try TenantStateMachine.decide(tenant, Self.observe(.lapsed(providerStatus: "subscription_inactive"), at: 50))
        #expect(late.tenant == tenant)
        #expect(!late.changed && late.events.isEmpty)
        let fresh = try TenantStateMachine.decide(tenant, Self.observe(.lapsed(providerStatus: "subscription_inactive"), at: 150))
        #expect(fresh.tenant.state == .suspended)
    }

    @Test func repeatedObservationChangesNothing() throws {
        let first = try TenantStateMachine.decide(Self.tenant(.pending), Self.observe(.actionRequired(Self.redirect, providerStatus: "login_url_issued")))
        let again = try TenantStateMachine.decide(first.tenant, Self.observe(.actionRequired(Self.redirect, providerStatus: "login_url_issued"), at: 20))
        #expect(again.tenant.state == .actionRequired)
        #expect(again.events.isEmpty)
        #expect(!again.resetsBackoff, "the same answer again keeps backing off")
        #expect(again.tenant.updatedAt == first.tenant.updatedAt)
    }

    @Test func repeatedCredentialsAreNotAnnouncedTwice() throws {
        let active = Self.tenant(.active, credentials: true)
        let decision = try TenantStateMachine.decide(active, Self.observe(.ready(providerStatus: "subscription_active"), source: .webhook))
        #expect(decision.events.isEmpty)
        let replaced = try TenantStateMachine.decide(active, Self.observe(.ready(providerStatus: "subscription_active"), at: 30, credentials: true))
        #expect(replaced.events.map(\.type) == [.credentialsAvailable])
        #expect(replaced.credentials == Self.key)
    }

    // MARK: - The decision owns credentials

    @Test func aWebhookNeverReplacesCredentialsATenantHas() throws {
        let active = Self.tenant(.active, credentials: true)
        let decision = try TenantStateMachine.decide(active, Self.observe(.ready(providerStatus: "subscription_active"), credentials: true, source: .webhook))
        #expect(decision.credentials == nil, "storage writes only what the decision keeps")
        #expect(decision.events.isEmpty)
        let byHand = Observation.finding(
            .ready(providerStatus: "subscription_active"), source: .api, at: Self.t0.addingTimeInterval(20),
            credentials: CredentialOffer(Self.key, origin: .partner, isNew: true)
        )
        #expect(try TenantStateMachine.decide(active, byHand).credentials == Self.key, "PUT …/credentials replaces them")
    }

    @Test func anOffboardedTenantNeverGetsCredentialsAgain() throws {
        let tombstone = Self.tenant(.offboarded)
        for origin in [CredentialOffer.Origin.provider, .webhook, .partner] {
            let late = Observation.finding(
                .ready(providerStatus: "access_granted"), source: .poll, at: Self.t0.addingTimeInterval(500),
                credentials: CredentialOffer(Self.key, origin: origin, isNew: true)
            )
            let decision = try TenantStateMachine.decide(tombstone, late)
            #expect(decision.credentials == nil && !decision.tenant.credentialsAvailable && decision.tenant.state == .offboarded)
        }
    }

    @Test func verifiedCredentialsAreKeptEvenWithStaleEvidence() throws {
        // Stored but not shown as available was the old failure: a key kept by a webhook a refresh had overtaken.
        let tenant = Self.tenant(.actionRequired, evidenceAt: Self.t0.addingTimeInterval(100))
        let decision = try TenantStateMachine.decide(tenant, Self.observe(.waiting(providerStatus: "w"), at: 50, credentials: true, source: .webhook))
        #expect(decision.credentials == Self.key)
        #expect(decision.tenant.credentialsAvailable)
        #expect(decision.events.map(\.type) == [.credentialsAvailable])
    }

    @Test func aResubmissionSendsAWaitingTenantBackToPending() throws {
        var waiting = Self.tenant(.actionRequired, provider: .magnifinance)
        waiting.nextAction = NextAction(type: .awaitApproval)
        let decision = try TenantStateMachine.decide(waiting, .command(.resubmit, source: .admin, at: Self.t0.addingTimeInterval(5)))
        #expect(decision.tenant.state == .pending && decision.tenant.nextAction == nil)
        #expect(decision.work == .submit(retryAfter: nil))
        #expect(throws: TransitionError.self) { try TenantStateMachine.decide(Self.tenant(.active), .command(.resubmit, source: .admin, at: Self.t0)) }
    }

    @Test func anApprovalThatNeverComesExpires() throws {
        var waiting = Self.tenant(.actionRequired, provider: .magnifinance)
        waiting.nextAction = NextAction(type: .awaitApproval)
        let day: TimeInterval = 86_400
        let early = ApprovalExpiry.apply(30 * day, to: .waiting(providerStatus: "access_requested"), tenant: waiting, at: Self.t0.addingTimeInterval(29 * day))
        #expect(early == .waiting(providerStatus: "access_requested"))
        let late = ApprovalExpiry.apply(30 * day, to: .waiting(providerStatus: "access_requested"), tenant: waiting, at: Self.t0.addingTimeInterval(31 * day))
        let decision = try TenantStateMachine.decide(waiting, .finding(late, source: .poll, at: Self.t0.addingTimeInterval(31 * day)))
        #expect(decision.tenant.state == .failed)
        #expect(decision.tenant.lastError?.code == "approval_expired")
        let granted = ApprovalExpiry.apply(30 * day, to: .ready(providerStatus: "access_granted"), tenant: waiting, at: Self.t0.addingTimeInterval(31 * day))
        #expect(granted == .ready(providerStatus: "access_granted"), "an approval that arrives late still counts")
    }

    @Test func unavailableKeepsTheStateAndSaysWhyWhilePending() throws {
        let decision = try TenantStateMachine.decide(Self.tenant(.pending), Self.observe(.unavailable(reason: "Wrapp answered 503", retryAfter: 120)))
        #expect(decision.tenant.state == .pending)
        #expect(decision.tenant.lastError?.code == "provider_unavailable")
        #expect(decision.work == .submit(retryAfter: 120))
        #expect(decision.tenant.evidenceAt == nil, "no answer is no evidence")
    }

    @Test func rejectionRecordsTheErrorAtTheObservationTime() throws {
        let decision = try TenantStateMachine.decide(Self.tenant(.pending), Self.observe(.rejected(Self.rejection, providerStatus: "rejected"), at: 42))
        #expect(decision.tenant.state == .failed)
        #expect(decision.tenant.lastError?.errors.first?.field == "profile.email")
        #expect(decision.tenant.lastError?.at == Self.t0.addingTimeInterval(42))
        #expect(decision.work == .none)
    }

    @Test func retryOnlyFromFailed() throws {
        let failed = try TenantStateMachine.decide(Self.tenant(.pending), Self.observe(.rejected(Self.rejection, providerStatus: "rejected"))).tenant
        let retried = try TenantStateMachine.decide(failed, .command(.retry, source: .api, at: Self.t0.addingTimeInterval(60)))
        #expect(retried.tenant.state == .pending)
        #expect(retried.tenant.lastError == nil)
        #expect(retried.work == .submit(retryAfter: nil))
        for state in TenantState.allCases where state != .failed {
            #expect(throws: TransitionError.notAllowed(command: .retry, state: state)) {
                try TenantStateMachine.decide(Self.tenant(state), .command(.retry, source: .api, at: Self.t0))
            }
        }
    }

    @Test func offboardFromAnyStateIsFinal() throws {
        for state in TenantState.allCases where state != .offboarded {
            let decision = try TenantStateMachine.decide(Self.tenant(state, credentials: true), .command(.offboard, source: .admin, at: Self.t0))
            #expect(decision.tenant.state == .offboarded)
            #expect(!decision.tenant.credentialsAvailable)
            #expect(decision.events.map(\.type) == [.offboarded])
            #expect(decision.work == .none)
        }
        #expect(throws: TransitionError.self) {
            try TenantStateMachine.decide(Self.tenant(.offboarded), .command(.offboard, source: .api, at: Self.t0))
        }
    }

    @Test func createStartsPendingWithASubmission() {
        let decision = TenantStateMachine.create(Self.tenant(.pending))
        #expect(decision.events.map(\.type) == [.created])
        #expect(decision.work == .submit(retryAfter: nil))
    }
}

@Suite struct ULIDGeneratorTests {
    @Test func idsMadeInOneMillisecondStillSortInOrder() {
        let generator = ULIDGenerator()
        let now = Date()
        let ids = (0..<1000).map { _ in generator.make(prefix: "ten", at: now) }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.count == 30 && $0.hasPrefix("ten_") })
        let later = generator.make(prefix: "ten", at: now.addingTimeInterval(0.002))
        #expect(later > ids.last!)
        #expect(later.dropFirst(4).prefix(10) != ids[0].dropFirst(4).prefix(10), "a new millisecond starts a new time part")
    }
}

@Suite struct StalenessPrecisionTests {
    @Test func evidenceFromTheSameInstantIsNotStaleAfterAStorageRoundTrip() throws {
        let at = Date(timeIntervalSinceReferenceDate: 815_000_000.123_456_7)
        // What a REAL column of unix seconds gives back.
        let stored = Date(timeIntervalSince1970: at.timeIntervalSince1970)
        var tenant = TenantStateMachineTests.tenant(.actionRequired, credentials: true)
        tenant.evidenceAt = max(stored, at.addingTimeInterval(0.000_000_5))
        let decision = try TenantStateMachine.decide(tenant, .finding(.ready(providerStatus: "ok"), source: .webhook, at: at))
        #expect(decision.tenant.state == .active)
    }
}
