import Foundation
import Testing

@testable import GatewayCore
import Providers

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

/// The circuit breaker shared by replicas: what one opens, the others respect; one probe for all; its outcome is
/// everyone's. The store here keeps the rows in memory with the rules of PostgreSQL's `provider_circuits` (the
/// store suite checks that table against them).
@Suite struct SharedCircuitTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    actor MemoryCircuits: SharedCircuitStore {
        var rows: [ProviderKind: (circuit: SharedCircuit, probeUntil: Date?)] = [:]
        var probeClaims = 0

        func sharedCircuit(_ provider: ProviderKind) -> SharedCircuit? { rows[provider]?.circuit }
        func openSharedCircuit(_ provider: ProviderKind, until: Date, coolDown: TimeInterval) {
            rows[provider] = (SharedCircuit(openUntil: until, coolDown: coolDown), nil)
        }
        func closeSharedCircuit(_ provider: ProviderKind) { rows[provider] = nil }
        func claimSharedProbe(_ provider: ProviderKind, now: Date, holdUntil: Date) -> Bool {
            probeClaims += 1
            guard let row = rows[provider], row.circuit.openUntil <= now, (row.probeUntil ?? .distantPast) <= now else { return false }
            rows[provider]?.probeUntil = holdUntil
            return true
        }
    }

    func replicas(_ count: Int, sharing store: MemoryCircuits) -> [ProviderHealth] {
        (0..<count).map { _ in ProviderHealth(settings: ProviderHealthTests.fiveInARow(), provider: .wrapp, shared: store) }
    }

    @Test func aCircuitOneReplicaOpensStopsTheOthersAndOneProbeClosesItForAll() async {
        let store = MemoryCircuits()
        let replicas = replicas(3, sharing: store)
        let (a, b, c) = (replicas[0], replicas[1], replicas[2])
        #expect(await b.admit(now: t0), "closed everywhere at first")
        for _ in 0..<5 { await a.record(success: false, now: t0, operation: "submit", reason: "down") }
        #expect(await store.sharedCircuit(.wrapp) == SharedCircuit(openUntil: t0.addingTimeInterval(30), coolDown: 30))
        #expect(await !b.admit(now: t0.addingTimeInterval(1)), "the other replicas stop calling too")
        #expect(await !c.admit(now: t0.addingTimeInterval(1)))
        #expect(await c.snapshot(now: t0.addingTimeInterval(2)).openUntil == t0.addingTimeInterval(30))
        #expect(await c.retryAfter(now: t0.addingTimeInterval(10)) == 20)

        // After the cool-down all three want to call at once: one probe goes.
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for replica in replicas { group.addTask { await replica.admit(now: self.t0.addingTimeInterval(31)) } }
            var all: [Bool] = []
            for await one in group { all.append(one) }
            return all
        }
        #expect(admitted.filter { $0 }.count == 1, "\(admitted)")
        // Only the replica that claimed the probe is half-open; the others stay open, waiting for its outcome.
        var probers: [ProviderHealth] = []
        for replica in replicas {
            if await replica.snapshot().state == .halfOpen { probers.append(replica) }
        }
        #expect(probers.count == 1, "exactly one replica holds the probe")
        guard let prober = probers.first else { return }
        // While the probe runs, each of the other two asks the shared store again (its last refusal is over a second
        // old, so it is not merely holding back) and is refused; the prober makes no second call beside its probe.
        let claimsBefore = await store.probeClaims
        for replica in replicas where replica !== prober {
            #expect(await !replica.admit(now: t0.addingTimeInterval(32.5)), "no second probe while the first runs")
        }
        #expect(await store.probeClaims == claimsBefore + 2, "both other replicas asked the store for the probe and were refused")
        #expect(await !prober.admit(now: t0.addingTimeInterval(32.5)), "the prober's own next call waits for its probe too")
        await prober.record(success: true, now: t0.addingTimeInterval(33), operation: "check")
        #expect(await store.sharedCircuit(.wrapp) == nil)
        for replica in replicas {
            #expect(await replica.admit(now: t0.addingTimeInterval(34)), "closed for every replica")
        }
    }

    @Test func aFailedProbeOpensItAgainForEveryoneForTwiceAsLong() async {
        let store = MemoryCircuits()
        let replicas = replicas(2, sharing: store)
        let (a, b) = (replicas[0], replicas[1])
        for _ in 0..<5 { await a.record(success: false, now: t0, operation: "submit") }
        #expect(await b.admit(now: t0.addingTimeInterval(30)), "b takes the probe")
        #expect(await !a.admit(now: t0.addingTimeInterval(30.5)), "a does not probe beside it")
        await b.record(success: false, now: t0.addingTimeInterval(31), operation: "check", reason: "still down")
        #expect(await store.sharedCircuit(.wrapp) == SharedCircuit(openUntil: t0.addingTimeInterval(91), coolDown: 60))
        #expect(await !a.admit(now: t0.addingTimeInterval(80)), "a learns of the longer cool-down")
        #expect(await a.admit(now: t0.addingTimeInterval(91)))
    }

    @Test func aReplicaThatDiesWithTheProbeFreesItWhenTheHoldRunsOut() async {
        let store = MemoryCircuits()
        var settings = ProviderHealthTests.fiveInARow()
        settings.probeHold = 40
        let a = ProviderHealth(settings: settings, provider: .wrapp, shared: store)
        let b = ProviderHealth(settings: settings, provider: .wrapp, shared: store)
        for _ in 0..<5 { await a.record(success: false, now: t0, operation: "submit") }
        #expect(await a.admit(now: t0.addingTimeInterval(30)), "a takes the probe, then dies without an answer")
        #expect(await !b.admit(now: t0.addingTimeInterval(60)))
        #expect(await b.admit(now: t0.addingTimeInterval(71)), "the hold ran out: b probes")
    }

    @Test func waitingTenantsDoNotAskForTheProbeOneByOne() async {
        let store = MemoryCircuits()
        let replicas = replicas(2, sharing: store)
        for _ in 0..<5 { await replicas[0].record(success: false, now: t0, operation: "submit") }
        #expect(await replicas[0].admit(now: t0.addingTimeInterval(30)))
        let before = await store.probeClaims
        for _ in 0..<50 { _ = await replicas[1].admit(now: t0.addingTimeInterval(30.2)) }
        #expect(await store.probeClaims - before == 1, "one denied claim, then the replica waits a read interval")
    }
}

extension SharedCircuitTests {
    @Test func aLateSuccessOnAnotherReplicaDoesNotCloseTheCircuitForAll() async {
        let store = MemoryCircuits()
        let replicas = replicas(2, sharing: store)
        let (a, b) = (replicas[0], replicas[1])
        #expect(await b.admit(now: t0), "b admits a call before the circuit opens")
        for _ in 0..<5 { await a.record(success: false, now: t0.addingTimeInterval(1), operation: "submit") }
        #expect(await !b.admit(now: t0.addingTimeInterval(2)), "b learns the circuit is open")
        await b.record(success: true, now: t0.addingTimeInterval(3), operation: "submit")
        #expect(await store.sharedCircuit(.wrapp) != nil, "a call admitted before the circuit opened is not the probe")
        #expect(await !a.admit(now: t0.addingTimeInterval(4)))
        #expect(await !b.admit(now: t0.addingTimeInterval(4)))
    }

    @Test func aProbeThatMadeNoRequestIsRetriedOnlyWhileItsHoldLasts() async {
        let store = MemoryCircuits()
        var settings = ProviderHealthTests.fiveInARow()
        settings.probeHold = 40
        let a = ProviderHealth(settings: settings, provider: .wrapp, shared: store)
        let b = ProviderHealth(settings: settings, provider: .wrapp, shared: store)
        for _ in 0..<5 { await a.record(success: false, now: t0, operation: "submit") }
        #expect(await a.admit(now: t0.addingTimeInterval(30)))
        await a.settleCall()
        #expect(await a.admit(now: t0.addingTimeInterval(35)), "a still holds the probe: its next call probes")
        await a.settleCall()
        #expect(await !a.admit(now: t0.addingTimeInterval(71)), "the hold ran out: a waits for a turn like the others")
        #expect(await b.admit(now: t0.addingTimeInterval(72)), "b takes the probe")
        #expect(await !a.admit(now: t0.addingTimeInterval(73)), "and a does not probe beside it")
    }
}

extension ProviderHealthTests {
    /// A call admitted before the circuit opened may answer while the probe runs: its answer goes into the window,
    /// and the probe alone decides (before, a late failure reopened the circuit for twice as long under the probe).
    @Test func aLateAnswerToAnOrdinaryCallDoesNotDecideAHalfOpenCircuit() async {
        let health = ProviderHealth(settings: Self.fiveInARow())
        for _ in 0..<5 { await health.record(success: false, now: t0, operation: "submit") }
        #expect(await health.admitCall(now: t0.addingTimeInterval(30)) == .probe)
        await ProviderHealth.$role.withValue(.call) {
            await health.record(success: false, now: t0.addingTimeInterval(31), operation: "check", reason: "late")
        }
        #expect(await health.snapshot().state == .halfOpen)
        #expect(await !health.admit(now: t0.addingTimeInterval(31)), "the probe is still the one call")
        await ProviderHealth.$role.withValue(.probe) {
            await health.record(success: true, now: t0.addingTimeInterval(32), operation: "check")
        }
        #expect(await health.snapshot().state == .closed)
    }
}
