import Foundation
import GatewayCore
import Testing

@testable import EventDelivery

@Suite struct WebhookSignerTests {
    /// The Standard Webhooks spec's own test vector.
    @Test func theSpecsTestVector() throws {
        let signer = try WebhookSigner(secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        let signature = signer.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Data(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func severalSecretsGiveSeveralSignatures() throws {
        let first = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let second = "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()
        let both = try WebhookSigner(secrets: [first, second]).signature(id: "evt_1", timestamp: 1, body: Data("{}".utf8))
        let parts = both.split(separator: " ")
        #expect(parts.count == 2)
        #expect(String(parts[0]) == (try WebhookSigner(secrets: [first]).signature(id: "evt_1", timestamp: 1, body: Data("{}".utf8))))
        #expect(String(parts[1]) == (try WebhookSigner(secrets: [second]).signature(id: "evt_1", timestamp: 1, body: Data("{}".utf8))))
    }

    @Test func badSecretsAreRefused() {
        #expect(throws: WebhookSigner.InvalidSecret.self) { try WebhookSigner(secrets: ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]) }
        #expect(throws: WebhookSigner.InvalidSecret.self) { try WebhookSigner(secrets: ["whsec_!!!"]) }
    }

    @Test func theRetryScheduleFollowsTheContract() {
        let now = Date(timeIntervalSince1970: 0)
        let delays = (1...7).map { DeliverySchedule.nextAttempt(after: $0, now: now, retryAfter: nil, unit: 0.5)!.timeIntervalSince1970 }
        #expect(delays == [5, 300, 1800, 7200, 18_000, 36_000, 36_000])
        #expect(DeliverySchedule.nextAttempt(after: 8, now: now, retryAfter: nil, unit: 0.5) == nil, "then it fails for good")
        #expect(DeliverySchedule.nextAttempt(after: 1, now: now, retryAfter: 120, unit: 0.5)!.timeIntervalSince1970 == 120)
        let low = DeliverySchedule.nextAttempt(after: 2, now: now, retryAfter: nil, unit: 0)!.timeIntervalSince1970
        #expect(low == 270, "jitter stays within 10 %")
    }
}
