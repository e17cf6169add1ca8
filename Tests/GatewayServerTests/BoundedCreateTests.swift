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
