import Foundation
import Testing

@testable import GatewayCore

/// The circuit breaker's transitions.
@Suite struct ProviderHealthTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func fiveInARow() -> ProviderHealth.Settings {
        var settings = ProviderHealth.Settings()
        settings.failureThreshold = 5
        settings.window = 5
        return settings
    }

    @Test func opensAfterRepeatedFailuresAndProbesAfterTheCoolDown() async {
        let health = ProviderHealth(settings: Self.fiveInARow())
        for index in 0..<4 {
            #expect(await health.admit(now: t0))
            await health.record(success: false, now: t0, operation: "submit", reason: "down \(index)")
        }
        #expect(await health.snapshot().state == .closed, "four failures are not enough")
        await health.record(success: false, now: t0, operation: "submit", reason: "down 4")
        #expect(await health.snapshot().state == .open)
        #expect(await !health.admit(now: t0.addingTimeInterval(29)))
        #expect(await health.retryAfter(now: t0.addingTimeInterval(10)) == 20)

        #expect(await health.admit(now: t0.addingTimeInterval(30)), "one probe after the cool-down")
        #expect(await health.snapshot().state == .halfOpen)
        #expect(await !health.admit(now: t0.addingTimeInterval(30)), "only one probe at a time")
        await health.record(success: false, now: t0.addingTimeInterval(31), operation: "check", reason: "still down")
        #expect(await health.snapshot().state == .open)
        #expect(await !health.admit(now: t0.addingTimeInterval(31 + 59)), "a failed probe doubles the cool-down")
        #expect(await health.admit(now: t0.addingTimeInterval(31 + 60)))
        await health.record(success: true, now: t0.addingTimeInterval(92), operation: "check")
        let closed = await health.snapshot()
        #expect(closed.state == .closed && closed.consecutiveFailures == 0)
        #expect(closed.recentErrors.count == 6 && closed.recentErrors.last?.reason == "still down")
    }

    @Test func aSuccessBreaksTheRun() async {
        let health = ProviderHealth(settings: Self.fiveInARow())
        for _ in 0..<4 { await health.record(success: false, now: t0, operation: "check") }
        await health.record(success: true, now: t0, operation: "check")
        for _ in 0..<4 { await health.record(success: false, now: t0, operation: "check") }
        #expect(await health.snapshot().state == .closed)
    }

    @Test func aFlakyProviderKeepsBeingCalledADownOneIsNot() async {
        // By default: 18 of the last 20 calls failed. Three answers in four garbled never trips it.
        let flaky = ProviderHealth()
        for index in 0..<1000 {
            await flaky.record(success: index % 4 == 0, now: t0, operation: "check")
        }
        #expect(await flaky.snapshot().state == .closed)
        let down = ProviderHealth()
        for index in 0..<18 {
            #expect(await down.snapshot().state == .closed, "\(index) failures")
            await down.record(success: false, now: t0, operation: "check")
        }
        #expect(await down.snapshot().state == .open)
    }

    @Test func theCoolDownIsCapped() async {
        var settings = ProviderHealth.Settings()
        settings.failureThreshold = 1
        let health = ProviderHealth(settings: settings)
        await health.record(success: false, now: t0, operation: "check")
        var now = t0
        for _ in 0..<10 {
            now = now.addingTimeInterval(301)
            #expect(await health.admit(now: now))
            await health.record(success: false, now: now, operation: "check")
        }
        #expect(await health.retryAfter(now: now) == 300)
        #expect(await health.snapshot().recentErrors.count == 10, "only the last ten are kept")
    }
}
