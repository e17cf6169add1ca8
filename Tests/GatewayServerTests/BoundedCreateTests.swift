import Foundation
import GatewayCore
import GatewayServer
import GatewayTesting
import Testing

/// A create waits for the provider at most `GATEWAY_CREATE_WAIT_SECONDS`, then answers 202 with the work going on.
@Suite struct BoundedCreateTests {
    @Test func aSlowProviderGets202AtTheBoundAndTheCallStillLands() async throws {
        // The create may wait 0.3 s; the provider answers after 5 s. The bound on the wall clock sits between, with
        // room on both sides for a loaded machine: over ten times the wait, and 1.5 s before the provider's answer.
        try await SandboxHarness.run(environment: ["GATEWAY_CREATE_WAIT_SECONDS": "0.3", "GATEWAY_PROVIDER_TIMEOUT_SECONDS": "20"]) { h in
            await h.wrapp.setAnswerDelay(milliseconds: 5_000)
            let began = ContinuousClock.now
            let created = try await h.createWrapp("slow-1")
            let waited = ContinuousClock.now - began
            #expect(created.status == 202)
            #expect(created.string("state") == "pending")
            #expect(waited < .milliseconds(3_500), "the create waited \(waited), past its bound, for the provider's answer")
            let id = try #require(created.string("id"))

            // The call went on without the request (and without the worker, which is off here): its answer is committed.
            let converged = try await h.eventually(30) { try await h.tenant(id).string("state") == "action_required" }
            #expect(converged)
            #expect(await h.wrapp.calls["/external_login"] == 1, "one call, made once")
            // Its lease was let go: a refresh can talk to the provider at once.
            await h.wrapp.setAnswerDelay(milliseconds: 0)
            #expect(try await h.call(.post, "/v1/tenants/\(id)/refresh").status == 200)
        }
    }

    /// A create's first call renews no lease of its own when it starts right after the intent's mark (which renewed
    /// it). One that waited for a free slot does: an offboarding committed while it waited is seen, and the erased
    /// customer is not sent to the provider. The harness's clock stands still, so only the wait at the gate can tell
    /// the two apart; without that check the call was made.
    @Test func aCallThatWaitedForItsTurnSeesAnOffboardingCommittedMeanwhile() async throws {
        try await SandboxHarness.run(environment: [
            "GATEWAY_CREATE_WAIT_SECONDS": "0.2", "GATEWAY_PROVIDER_CONCURRENCY": "1", "GATEWAY_PROVIDER_TIMEOUT_SECONDS": "20",
        ]) { h in
            // The first customer's call holds the one slot for 3 s.
            await h.wrapp.setAnswerDelay(milliseconds: 3_000)
            let first = try await h.createWrapp("slot-holder", email: "first@example.com")
            #expect(first.status == 202)
            let holder = try #require(first.string("id"))
            // The second is marked and waits at the gate; the partner offboards it meanwhile.
            let second = try await h.createWrapp("erased-while-waiting", email: "second@example.com")
            #expect(second.status == 202)
            let erased = try #require(second.string("id"))
            #expect(try await h.call(.delete, "/v1/tenants/\(erased)").status == 200)
            #expect(await h.wrapp.calls["/external_login"] == 1, "the offboarding landed while the first call still held the slot")

            let notMade = await h.eventually(20) {
                h.logs.entries.contains { $0.message.hasPrefix("provider call not made") && $0.metadata["tenant.id"] == erased }
            }
            #expect(notMade, "the waiting call found the lease voided before it was made")
            #expect(try await h.eventually(10) { try await h.tenant(holder).string("state") == "action_required" })
            #expect(await h.wrapp.calls["/external_login"] == 1, "only the first customer was sent to Wrapp")
            #expect(try await h.tenant(erased).string("state") == "offboarded")
        }
    }

    @Test func aProviderThatAnswersInTimeStillGives201() async throws {
        try await SandboxHarness.run(environment: ["GATEWAY_CREATE_WAIT_SECONDS": "5"]) { h in
            await h.wrapp.setAnswerDelay(milliseconds: 100)
            let created = try await h.createWrapp("quick-1")
            #expect(created.status == 201)
            #expect(created.string("state") == "action_required")
        }
    }

    @Test func theSlowProviderDelayIsSandboxOnly() {
        #expect(throws: GatewayConfig.Invalid.self) {
            _ = try GatewayConfig.load(environment: [
                "GATEWAY_SANDBOX_PROVIDER_DELAY_MS": "1000", "GATEWAY_ENCRYPTION_KEY": Data(repeating: 1, count: 32).base64EncodedString(),
            ], sandbox: false)
        }
    }
}
