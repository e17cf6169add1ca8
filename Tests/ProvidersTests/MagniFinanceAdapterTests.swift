import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// The MagniFinance adapter against the MagniFinance simulator, in every envelope variant `providers.md` lists.
@Suite struct MagniFinanceAdapterTests {
    static let styles = [
        MagniFinanceSimulator.Style(),
        MagniFinanceSimulator.Style(typeAsString: true, elementNumberAsString: true, notFoundStatus: 404),
    ]

    @Test("a new company is granted at once", arguments: styles)
    func newCompany(_ style: MagniFinanceSimulator.Style) async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            await adapters.magniSimulator.setStyle(style)
            let answer = await adapters.magni.submit(Adapters.magniTenant("513495886"), previousAttempts: 0)
            #expect(answer.finding == .ready(providerStatus: "access_granted"))
            guard let tokens = answer.credentials.flatMap(MagniFinanceCredentials.init)?.accessTokens else { Issue.record("expected tokens"); return }
            #expect(tokens.count == 1 && tokens[0].token.hasPrefix("sandbox-token-"))
        }
    }

    @Test("an existing client waits for approval", arguments: styles)
    func existingClient(_ style: MagniFinanceSimulator.Style) async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            await adapters.magniSimulator.setStyle(style)
            await adapters.magniSimulator.markExistingClient("500000000")
            let tenant = Adapters.magniTenant("500000000")
            #expect(await adapters.magni.submit(tenant, previousAttempts: 0).finding.nextAction == NextAction(type: .awaitApproval))
            #expect(await adapters.magni.check(tenant).finding == .waiting(providerStatus: "access_requested"))
            await adapters.magniSimulator.approve("500000000")
            let granted = await adapters.magni.check(tenant)
            #expect(granted.finding == .ready(providerStatus: "access_granted") && granted.credentials != nil)
        }
    }

    @Test func addPartnerIsNeverRepeatedBlindly() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness, timeout: 0.3)
            // The call goes through but its answer is lost to a timeout.
            await adapters.magniSimulator.add(SimulatedFault(operation: "partner", status: 200, style: .lateSuccess, delayMilliseconds: 1000))
            #expect(await adapters.magni.submit(Adapters.magniTenant("513495886"), previousAttempts: 0).finding.isUnavailable)
            // The late AddPartner lands (1 s after it was sent); the retry comes after it, however slow the machine.
            let simulator = adapters.magniSimulator
            let landed = await harness.eventually(20) { await simulator.company("513495886").partnership == .granted }
            #expect(landed, "the late AddPartner landed")
            // The retry asks for the tokens first and finds them. It runs with the generous default timeout: the short
            // one was for losing the first answer, and on a loaded machine it also lost the retry's (a flaky failure).
            let retry = await (try Adapters(harness)).magni.submit(Adapters.magniTenant("513495886"), previousAttempts: 1)
            #expect(retry.finding == .ready(providerStatus: "access_granted"))
            #expect(await adapters.magniSimulator.addPartnerCalls["513495886"] == 1)
        }
    }

    @Test func anUnreadableTokenAnswerAfterAddPartnerIsNotAnApprovalWait() async throws {
        try await SandboxHarness.run { harness in
            // No timeouts here: a loaded machine's slow AddPartner must not leave the token fault for the retry.
            let adapters = try Adapters(harness, timeout: 10)
            // AddPartner registers a new company; the token call right after it answers garbage.
            await adapters.magniSimulator.add(SimulatedFault(operation: "partner/accessTokens", status: 200, style: .garbage))
            let first = await adapters.magni.submit(Adapters.magniTenant("513495886"), previousAttempts: 0)
            #expect(first.finding.isUnavailable, "unknown, not await_approval: \(first.finding)")
            let retry = await adapters.magni.submit(Adapters.magniTenant("513495886"), previousAttempts: 1)
            #expect(retry.finding == .ready(providerStatus: "access_granted"))
            #expect(await adapters.magniSimulator.addPartnerCalls["513495886"] == 1)
        }
    }

    @Test func anUnexplainedRefusalAfterAnEarlierAttemptStaysTransient() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            // Tokens: not found. AddPartner: refused with no word of an existing partnership (SaveFailed in a 200).
            await adapters.magniSimulator.add(SimulatedFault(operation: "partner", status: 200, style: .envelopeError))
            let retry = await adapters.magni.submit(Adapters.magniTenant("513495886"), previousAttempts: 1)
            #expect(retry.finding.isUnavailable, "no approval was asked: \(retry.finding)")
        }
    }

    @Test func aRetryForAnExistingClientEndsAwaitingApproval() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            await adapters.magniSimulator.markExistingClient("500000000")
            _ = await adapters.magni.submit(Adapters.magniTenant("500000000"), previousAttempts: 0)
            // Outcome unknown to us: tokens say "not found", AddPartner answers "already requested" (inside a 200).
            let retry = await adapters.magni.submit(Adapters.magniTenant("500000000"), previousAttempts: 1)
            #expect(retry.finding.nextAction == NextAction(type: .awaitApproval))
        }
    }

    @Test func validationErrorsMapToOurFieldNames() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            for style in Self.styles {
                await adapters.magniSimulator.setStyle(style)
                let long = Adapters.magniTenant("513495886", legalName: String(repeating: "L", count: 60))
                let error = try #require(await adapters.magni.submit(long, previousAttempts: 0).finding.rejection)
                #expect(error.errors.map(\.field) == ["profile.company.legal_name"])
                #expect(error.errors.first?.code == "max_length")
            }
            let badTaxID = try #require(await adapters.magni.submit(Adapters.magniTenant("PT51349588X"), previousAttempts: 0).finding.rejection)
            #expect(badTaxID.errors.map(\.field) == ["profile.company.tax_id"])
        }
    }

    @Test func authenticationFailuresAndBrokenAnswersAreTransient() async throws {
        try await SandboxHarness.run { harness in
            #expect(try await Adapters(harness, magniToken: "wrong").magni.submit(Adapters.magniTenant("513495886"), previousAttempts: 0).finding.isUnavailable)
            let adapters = try Adapters(harness)
            for fault in [
                SimulatedFault(operation: "partner", status: 200, style: .envelopeError),  // an error inside HTTP 200
                SimulatedFault(operation: "partner", status: 502, style: .html),
                SimulatedFault(operation: "partner", status: 200, style: .garbage),
                SimulatedFault(operation: "partner", status: 503, style: .message, retryAfter: 30),
            ] {
                await adapters.magniSimulator.add(fault)
                #expect(await adapters.magni.submit(Adapters.magniTenant("513495886"), previousAttempts: 0).finding.isUnavailable, "\(fault.style)")
            }
            await adapters.magniSimulator.add(SimulatedFault(operation: "partner/accessTokens", status: 200, style: .envelopeError))
            #expect(await adapters.magni.check(Adapters.magniTenant("513495886")).finding.isUnavailable, "errors other than not-found are errors")
            #expect(await adapters.magniSimulator.addPartnerCalls["513495886"] == nil, "none of the failed calls registered anything")
        }
    }

    @Test func tokensCannotBeTypedIn() async throws {
        try await SandboxHarness.run { harness in
            let adapters = try Adapters(harness)
            guard case .invalid = await adapters.magni.verify(.magnifinance(accessTokens: []), for: Adapters.magniTenant("513495886")) else {
                Issue.record("MagniFinance credentials are never accepted by hand"); return
            }
        }
    }
}
