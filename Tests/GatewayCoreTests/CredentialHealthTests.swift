import Foundation
import GatewayCore
import Providers
import Testing

/// The state machine's credential health rules: only an explicit refusal suspends, once; while refused, only proof
/// that credentials work again restores; nothing else moves the tenant.
@Suite struct CredentialHealthTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let wrapp = WrappModule().capabilities

    static func active(revoked: Bool = false) -> Tenant {
        Tenant(
            id: "ten_h", provider: .wrapp, externalID: "ext-h", state: revoked ? .suspended : .active,
            nextAction: revoked ? NextAction(type: .provideCredentials) : nil, providerStatus: "subscription_active",
            profile: Profile(email: "a@example.com", phone: "+302101234567"), credentialsAvailable: true,
            lastError: revoked ? TenantError(code: TenantError.credentialsRevoked, message: "refused", at: t0) : nil,
            createdAt: t0, updatedAt: t0, stateChangedAt: t0, evidenceAt: t0
        )
    }

    static func observe(_ finding: Finding, _ verdict: CredentialVerdict?, credentials: CredentialOffer? = nil, at offset: TimeInterval = 60) -> Observation {
        .finding(finding, source: .poll, at: t0.addingTimeInterval(offset), credentials: credentials, verdict: verdict)
    }

    static let refused = CredentialVerdict.refused(reason: "login refused", nextAction: NextAction(type: .provideCredentials))
    static let ready = Finding.ready(providerStatus: "subscription_active")

    @Test func anExplicitRefusalSuspendsOnceWithTheModulesNextAction() throws {
        let decision = try TenantStateMachine.decide(Self.active(), Self.observe(Self.ready, Self.refused), capabilities: Self.wrapp)
        #expect(decision.tenant.state == .suspended)
        #expect(decision.tenant.lastError?.code == "credentials_revoked")
        #expect(decision.tenant.nextAction?.type == .provideCredentials)
        #expect(decision.events.map(\.type) == [.stateChanged, .credentialsInvalid])
        #expect(decision.work == .check(.maintenance, retryAfter: nil), "checked again daily: a dead key is not tried hourly")
        #expect(decision.tenant.credentialCheck?.result == "refused")

        let again = try TenantStateMachine.decide(decision.tenant, Self.observe(Self.ready, Self.refused, at: 3600), capabilities: Self.wrapp)
        #expect(again.events.isEmpty, "credentials_invalid is said once")
        #expect(again.tenant.state == .suspended)
        // Refused since then: when it was found, since when it is suspended and when it last changed all stay.
        #expect(again.tenant.stateChangedAt == decision.tenant.stateChangedAt)
        #expect(again.tenant.updatedAt == decision.tenant.updatedAt)
        #expect(again.tenant.lastError == decision.tenant.lastError)
        #expect(again.tenant.credentialCheck?.at == Self.t0.addingTimeInterval(3600), "only the check's record moves")
    }

    @Test func unknownVerdictsAndTransientFindingsChangeNothing() throws {
        for finding in [Self.ready, .unavailable(reason: "502", retryAfter: nil)] {
            let decision = try TenantStateMachine.decide(Self.active(), Self.observe(finding, .unknown(reason: "timeout")), capabilities: Self.wrapp)
            #expect(decision.tenant.state == .active)
            #expect(decision.tenant.lastError == nil)
            #expect(decision.events.isEmpty)
            #expect(decision.tenant.credentialCheck?.result == "unknown", "the check is recorded")
        }
    }

    @Test func whileRefusedAReadyPollRestoresNothingButAWorkingCheckDoes() throws {
        let revoked = Self.active(revoked: true)
        for verdict in [nil, CredentialVerdict.unknown(reason: "timeout")] {
            let decision = try TenantStateMachine.decide(revoked, Self.observe(Self.ready, verdict), capabilities: Self.wrapp)
            #expect(decision.tenant.state == .suspended, "a poll that says ready says nothing of the key")
            #expect(decision.tenant.credentialsRevoked)
            #expect(decision.events.isEmpty)
        }
        let restored = try TenantStateMachine.decide(revoked, Self.observe(Self.ready, .working), capabilities: Self.wrapp)
        #expect(restored.tenant.state == .active)
        #expect(restored.tenant.lastError == nil)
        #expect(restored.tenant.nextAction == nil)
        #expect(restored.events.map(\.type) == [.stateChanged, .credentialsRestored])
    }

    @Test func newVerifiedCredentialsRestoreAndAWebhookKeyMayFillARefusedPlace() throws {
        let revoked = Self.active(revoked: true)
        let key = ProviderCredentials.wrapp(wrappUserID: "u-2", apiKey: "k-2")
        for origin in [CredentialOffer.Origin.partner, .webhook] {
            let offer = CredentialOffer(key, origin: origin, isNew: true)
            let decision = try TenantStateMachine.decide(revoked, Self.observe(Self.ready, nil, credentials: offer), capabilities: Self.wrapp)
            #expect(decision.tenant.state == .active, "\(origin)")
            #expect(decision.credentials == key)
            #expect(decision.events.map(\.type).contains(.credentialsRestored))
        }
        // A working tenant's key is never replaced by a webhook's.
        let webhook = CredentialOffer(key, origin: .webhook, isNew: true)
        #expect(try TenantStateMachine.decide(Self.active(), Self.observe(Self.ready, nil, credentials: webhook), capabilities: Self.wrapp).credentials == nil)
    }

    @Test func newProviderDetailsAreAVisibleChangeANewReadTimeIsNot() throws {
        let details = ProviderDetails(values: ["has_plan": .bool(true)], readAt: Self.t0.addingTimeInterval(60))
        let first = try TenantStateMachine.decide(Self.active(), .finding(Self.ready, source: .poll, at: Self.t0.addingTimeInterval(60), verdict: .working, details: details), capabilities: Self.wrapp)
        #expect(first.tenant.updatedAt == Self.t0.addingTimeInterval(60))
        var reread = details
        reread.readAt = Self.t0.addingTimeInterval(7200)
        let same = try TenantStateMachine.decide(first.tenant, .finding(Self.ready, source: .poll, at: Self.t0.addingTimeInterval(7200), verdict: .working, details: reread), capabilities: Self.wrapp)
        #expect(same.tenant.updatedAt == first.tenant.updatedAt, "read again, unchanged")
        #expect(same.tenant.providerDetails?.readAt == Self.t0.addingTimeInterval(7200))
        let lapsed = ProviderDetails(values: ["has_plan": .bool(false)], readAt: Self.t0.addingTimeInterval(9000))
        let changed = try TenantStateMachine.decide(same.tenant, .finding(Self.ready, source: .poll, at: Self.t0.addingTimeInterval(9000), verdict: .working, details: lapsed), capabilities: Self.wrapp)
        #expect(changed.tenant.updatedAt == Self.t0.addingTimeInterval(9000))
    }

    @Test func aLateVerdictMovesNothing() throws {
        var tenant = Self.active()
        tenant.evidenceAt = Self.t0.addingTimeInterval(600)
        let late = try TenantStateMachine.decide(tenant, Self.observe(Self.ready, Self.refused, at: 60), capabilities: Self.wrapp)
        #expect(late.tenant.state == .active)
        #expect(late.events.isEmpty)
        let revoked = Self.active(revoked: true)
        var newer = revoked
        newer.evidenceAt = Self.t0.addingTimeInterval(600)
        #expect(try TenantStateMachine.decide(newer, Self.observe(Self.ready, .working, at: 60), capabilities: Self.wrapp).tenant.state == .suspended)
    }

    @Test func aRefusalDoesNotTouchATenantStillOnboardingOrOffboarded() throws {
        var onboarding = Self.active()
        onboarding.state = .actionRequired
        let decision = try TenantStateMachine.decide(onboarding, Self.observe(.waiting(providerStatus: "w"), Self.refused), capabilities: Self.wrapp)
        #expect(decision.tenant.state == .actionRequired)
        #expect(decision.events.isEmpty)
        var gone = Self.active()
        gone.state = .offboarded
        let late = try TenantStateMachine.decide(gone, Self.observe(Self.ready, Self.refused), capabilities: Self.wrapp)
        #expect(late.tenant == gone)
        #expect(!late.changed)
    }

    /// Ten thousand tenants activated in the same second are checked over a spread of about ten hours a day later,
    /// never together: the daily check's ±20 % jitter, drawn per tenant, and redrawn at each check.
    @Test func dailyChecksOfTenantsActivatedTogetherAreSpreadOut() {
        let schedule = WorkSchedule()
        var generator = SystemRandomNumberGenerator()
        let delays = (0..<10_000).compactMap { _ in
            schedule.delay(for: .check(.maintenance, retryAfter: nil), attempts: 0, unit: Double.random(in: 0..<1, using: &generator))
        }
        #expect(delays.allSatisfy { $0 >= 0.8 * 86_400 && $0 <= 1.2 * 86_400 })
        var perTenMinutes: [Int: Int] = [:]
        for delay in delays { perTenMinutes[Int(delay / 600), default: 0] += 1 }
        // 34,560 s of spread in 58 slots of ten minutes: about 174 a slot; none near a herd.
        #expect(perTenMinutes.count >= 55)
        #expect(perTenMinutes.values.max()! < 300, "\(perTenMinutes.values.max()!) checks in one ten-minute slot")
    }

    @Test func aShortLivedTokenIsKeptForHalfItsLife() {
        let issued = Date(timeIntervalSince1970: 1_000)
        let short = IssuedToken(token: "t", expiresAt: issued.addingTimeInterval(600), issuedAt: issued)
        #expect(short.usable(at: issued.addingTimeInterval(200), margin: 3600), "a 10-minute token is not renewed at once")
        #expect(!short.usable(at: issued.addingTimeInterval(301), margin: 3600))
        let day = IssuedToken(token: "t", expiresAt: issued.addingTimeInterval(86_400), issuedAt: issued)
        #expect(day.usable(at: issued.addingTimeInterval(86_400 - 3601), margin: 3600))
        #expect(!day.usable(at: issued.addingTimeInterval(86_400 - 3599), margin: 3600))
        #expect(IssuedToken(token: "t", expiresAt: nil).usable(at: issued, margin: 3600), "no expiry")
    }
}
