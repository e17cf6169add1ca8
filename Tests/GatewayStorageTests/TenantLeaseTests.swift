import Foundation
import GatewayCore
import Providers
import Testing

@testable import GatewayStorage

/// Per-tenant leases and fenced writes: one provider conversation per tenant, and nothing committed from a
/// conversation that lost its lease or was voided.
@Suite struct TenantLeaseTests {
    let t0 = TestStores.t0

    /// A store holding one MagniFinance tenant with its submission queued.
    struct Fixture {
        let store: any GatewayStore
        let t0 = TestStores.t0

        init(_ backend: Backend) async throws {
            store = try await TestStores.make(backend)
            let tenant = Tenant(
                id: "ten_A", provider: .magnifinance, externalID: "co-1", state: .pending, profile: Profile(company: Company(taxID: "513495886")),
                createdAt: t0, updatedAt: t0, stateChangedAt: t0
            )
            _ = try await store.insert(tenant, events: [], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
        }

        func lease(at offset: TimeInterval, for seconds: TimeInterval = 60, owner: String = "a") async throws -> LeaseAttempt {
            let now = t0.addingTimeInterval(offset)
            return try await store.acquireLease(tenantID: "ten_A", owner: owner, now: now, until: now.addingTimeInterval(seconds))
        }

        func touch(fence: TenantLease?, voids: Bool = false) async throws {
            _ = try await store.update(tenantID: "ten_A", fence: fence, voids: voids) { context in
                var tenant = context.tenant
                tenant.providerStatus = "touched"
                return TenantUpdate(tenant: tenant, events: [], credentials: nil, work: nil, writesTenant: true)
            }
        }
    }

    @Test(arguments: Backend.all) func oneHolderAtATimeAndEachAcquisitionFencesTheLast(_ backend: Backend) async throws {
        let f = try await Fixture(backend)
        let store = f.store
        guard case .acquired(let first) = try await f.lease(at: 1) else { Issue.record("the lease is free"); return }
        #expect(try await f.lease(at: 2, owner: "b") == .busy(until: t0.addingTimeInterval(61)))
        // The holder stalls past its lease; another takes over. The first one's writes are fenced out.
        guard case .acquired(let second) = try await f.lease(at: 62, owner: "b") else { Issue.record("a lease that ran out is free"); return }
        #expect(second.token > first.token)
        await #expect(throws: LeaseLost.self) { try await f.touch(fence: first) }
        #expect(try await !store.renewLease(first, now: t0.addingTimeInterval(63), until: t0.addingTimeInterval(120)))
        await #expect(throws: LeaseLost.self) { _ = try await store.recordSubmission(first, at: t0.addingTimeInterval(63)) }
        try await f.touch(fence: second)
        #expect(try await store.tenant(id: "ten_A")?.providerStatus == "touched")
        // Letting go of a lease that was taken over does not free the new holder's.
        try await store.releaseLease(first)
        #expect(try await f.lease(at: 64, owner: "c") == .busy(until: t0.addingTimeInterval(122)))
        try await store.releaseLease(second)
        guard case .acquired = try await f.lease(at: 65, owner: "c") else { Issue.record("released means free"); return }
    }

    @Test(arguments: Backend.all) func aVoidingWriteFencesOutTheConversationInFlight(_ backend: Backend) async throws {
        let f = try await Fixture(backend)
        let store = f.store
        guard case .acquired(let held) = try await f.lease(at: 1) else { Issue.record("the lease is free"); return }
        try await f.touch(fence: nil, voids: true)  // e.g. offboarding, while the holder waits on the provider
        await #expect(throws: LeaseLost.self) { try await f.touch(fence: held) }
        #expect(try await !store.renewLease(held, now: t0.addingTimeInterval(2), until: t0.addingTimeInterval(60)), "no further provider call")
    }

    @Test(arguments: Backend.all) func aSubmissionIntentOutlivesTheConversationUntilADefiniteAnswer(_ backend: Backend) async throws {
        let f = try await Fixture(backend)
        let store = f.store
        guard case .acquired(let first) = try await f.lease(at: 1) else { Issue.record("the lease is free"); return }
        #expect(try await !store.recordSubmission(first, at: t0.addingTimeInterval(1)), "no earlier submission")
        try await store.releaseLease(first)  // the answer was lost: nothing cleared the intent
        guard case .acquired(let second) = try await f.lease(at: 2) else { Issue.record("released means free"); return }
        #expect(try await store.recordSubmission(second, at: t0.addingTimeInterval(2)), "the next attempt knows to ask first")
        _ = try await store.update(tenantID: "ten_A", fence: second, voids: false) { context in
            #expect(context.submissionPending)
            var update = TenantUpdate(tenant: context.tenant, events: [], credentials: nil, work: nil, writesTenant: false)
            update.clearsSubmission = true
            return update
        }
        #expect(try await !store.recordSubmission(second, at: t0.addingTimeInterval(3)))
    }

    @Test(arguments: Backend.all) func claimingTakesTheTenantsLeaseAndSkipsHeldTenants(_ backend: Backend) async throws {
        let f = try await Fixture(backend)
        let store = f.store
        guard case .acquired(let held) = try await f.lease(at: 0, for: 30) else { Issue.record("the lease is free"); return }
        #expect(try await store.claimDueWork(now: t0.addingTimeInterval(1), limit: 10, leaseUntil: t0.addingTimeInterval(61)).isEmpty)
        try await store.releaseLease(held)
        #expect(try await store.receiveWebhook(tenantID: "ten_A", payload: Data("{}".utf8), at: t0))
        let claimed = try await store.claimDueWork(now: t0.addingTimeInterval(2), limit: 10, leaseUntil: t0.addingTimeInterval(62))
        #expect(claimed.count == 1, "one item per tenant at a time, though two are due")
        #expect(try await f.lease(at: 3, owner: "api") == .busy(until: t0.addingTimeInterval(62)))
        let item = try #require(claimed.first)
        try await store.releaseLease(item.lease)
        let next = try await store.claimDueWork(now: t0.addingTimeInterval(4), limit: 10, leaseUntil: t0.addingTimeInterval(64))
        #expect(next.count == 1 && next.first?.id != item.id, "the other item follows once the lease is free")
    }

    /// The writes a create folds together: the intent's mark renews the lease for the call, and the outcome's commit
    /// lets it go. Each is fenced as the write it replaces was.
    @Test(arguments: Backend.all) func aMarkRenewsTheLeaseAndAnOutcomeReleasesIt(_ backend: Backend) async throws {
        let f = try await Fixture(backend)
        let store = f.store
        guard case .acquired(let held) = try await f.lease(at: 1, for: 10) else { Issue.record("the lease is free"); return }
        let mark = t0.addingTimeInterval(2)
        #expect(try await store.recordSubmission(held, at: mark, settle: 0, marks: true, renewUntil: mark.addingTimeInterval(100)) == .first)
        #expect(try await f.lease(at: 50, owner: "b") == .busy(until: t0.addingTimeInterval(102)), "renewed past its first 10 s")
        // A mark without a renewal leaves the lease as it is; a renewal never shortens it.
        #expect(try await store.recordSubmission(held, at: mark, settle: 0, marks: true, renewUntil: nil) == .afterUnknown)
        #expect(try await store.recordSubmission(held, at: mark, settle: 0, marks: true, renewUntil: t0.addingTimeInterval(20)) == .afterUnknown)
        #expect(try await f.lease(at: 51, owner: "b") == .busy(until: t0.addingTimeInterval(102)))

        // An outcome committed under a lease that was taken over neither writes nor frees the new holder's lease.
        try await store.releaseLease(held)
        guard case .acquired(let second) = try await f.lease(at: 52, for: 60, owner: "b") else { Issue.record("released means free"); return }
        await #expect(throws: LeaseLost.self) { try await self.outcome(f, fence: held) }
        #expect(try await f.lease(at: 53, owner: "c") == .busy(until: t0.addingTimeInterval(112)))
        // The holder's own outcome lets it go in the same commit.
        try await outcome(f, fence: second)
        #expect(try await store.tenant(id: "ten_A")?.providerStatus == "answered")
        guard case .acquired = try await f.lease(at: 54, owner: "c") else { Issue.record("the outcome's commit released the lease"); return }
    }

    /// F18: a submission that waited for its turn after its mark moves the mark to its start when it renews, so the
    /// settle period after a crash counts from the call, not from before the wait. Other renewals leave the mark, and
    /// a tenant with no mark gets none.
    @Test(arguments: Backend.all) func aSubmissionThatWaitedCountsItsSettlePeriodFromTheCall(_ backend: Backend) async throws {
        let f = try await Fixture(backend)
        let store = f.store
        guard case .acquired(let held) = try await f.lease(at: 1, for: 200) else { Issue.record("the lease is free"); return }
        // No mark yet: a submission's renewal sets none.
        #expect(try await store.renewLease(held, now: t0.addingTimeInterval(1), until: t0.addingTimeInterval(200), movesMark: true))
        #expect(try await store.recordSubmission(held, at: t0.addingTimeInterval(2), settle: 30, marks: true, renewUntil: nil) == .first)
        // Marked at 2 s; the call waited 40 s at the gate and renews as it starts.
        let start = t0.addingTimeInterval(42)
        #expect(try await store.renewLease(held, now: start, until: start.addingTimeInterval(200), movesMark: true))
        // 45 s after the mark but 5 s after the call started: still settling, until 30 s after the call's start.
        let settling = SubmissionRecord.settling(until: start.addingTimeInterval(30))
        #expect(try await store.recordSubmission(held, at: t0.addingTimeInterval(47), settle: 30, marks: false, renewUntil: nil) == settling)
        // A renewal for another call (a status check) leaves the mark where it is.
        #expect(try await store.renewLease(held, now: t0.addingTimeInterval(60), until: t0.addingTimeInterval(260)))
        #expect(try await store.recordSubmission(held, at: t0.addingTimeInterval(65), settle: 30, marks: false, renewUntil: nil) == settling)
        #expect(try await store.recordSubmission(held, at: t0.addingTimeInterval(72), settle: 30, marks: false, renewUntil: nil) == .afterUnknown)
    }

    @Test(arguments: Backend.all) func aMarkDoesNotRenewTheLeaseOfAnOffboardedTenant(_ backend: Backend) async throws {
        let f = try await Fixture(backend)
        let store = f.store
        guard case .acquired(let held) = try await f.lease(at: 1) else { Issue.record("the lease is free"); return }
        _ = try await store.update(tenantID: "ten_A", fence: held, voids: false) { context in
            var tenant = context.tenant
            tenant.state = .offboarded
            return TenantUpdate(tenant: tenant, events: [], credentials: nil, work: nil, writesTenant: true)
        }
        let mark = t0.addingTimeInterval(2)
        await #expect(throws: LeaseLost.self, "as renewLease refuses it: no call is made for an offboarded tenant") {
            _ = try await store.recordSubmission(held, at: mark, settle: 0, marks: true, renewUntil: mark.addingTimeInterval(100))
        }
        #expect(try await !store.renewLease(held, now: mark, until: mark.addingTimeInterval(100)))
    }

    /// What one status check may finish besides its own webhook: only the tenant's, only those received by then and
    /// bringing no key, and only under the lease it was asked under.
    @Test(arguments: Backend.all) func queuedWebhooksAreTheTenantsOwnAndFinishingThemIsFenced(_ backend: Backend) async throws {
        let f = try await Fixture(backend)
        let store = f.store
        for n in 0..<3 {
            #expect(try await store.receiveWebhook(
                tenantID: "ten_A", payload: Data(#"{"n":\#(n)}"#.utf8), at: t0.addingTimeInterval(Double(n)), bearsCredentials: false
            ))
        }
        // A key is never finished with another's check, nor is a row whose kind intake did not record.
        #expect(try await store.receiveWebhook(tenantID: "ten_A", payload: Data(#"{"key":1}"#.utf8), at: t0, bearsCredentials: true))
        #expect(try await store.receiveWebhook(tenantID: "ten_A", payload: Data(#"{"key":2}"#.utf8), at: t0))
        let other = Tenant(
            id: "ten_B", provider: .magnifinance, externalID: "co-2", state: .pending, profile: Profile(company: Company(taxID: "500000000")),
            createdAt: t0, updatedAt: t0, stateChangedAt: t0
        )
        _ = try await store.insert(other, events: [], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
        #expect(try await store.receiveWebhook(tenantID: "ten_B", payload: Data("{}".utf8), at: t0, bearsCredentials: false))
        let theirs = try #require(try await store.queuedWebhooks(tenantID: "ten_B", excluding: -1, receivedBy: t0, limit: 10).first)

        let all = try await store.queuedWebhooks(tenantID: "ten_A", excluding: -1, receivedBy: t0.addingTimeInterval(10), limit: 10)
        #expect(all.count == 3 && all.map(\.workID) == all.map(\.workID).sorted(), "the three without a key, oldest first")
        #expect(try await store.webhookPayload(inboxID: all[2].inboxID) == Data(#"{"n":2}"#.utf8))
        #expect(try await store.queuedWebhooks(tenantID: "ten_A", excluding: -1, receivedBy: t0.addingTimeInterval(1), limit: 10).count == 2)
        #expect(try await store.queuedWebhooks(tenantID: "ten_A", excluding: all[0].workID, receivedBy: t0.addingTimeInterval(10), limit: 10) == Array(all[1...]))
        #expect(try await store.queuedWebhooks(tenantID: "ten_A", excluding: -1, receivedBy: t0.addingTimeInterval(10), limit: 1) == [all[0]])

        // A lease that was taken over finishes nothing.
        guard case .acquired(let first) = try await f.lease(at: 1) else { Issue.record("the lease is free"); return }
        try await store.releaseLease(first)
        guard case .acquired(let second) = try await f.lease(at: 2, owner: "b") else { Issue.record("released means free"); return }
        await #expect(throws: LeaseLost.self) {
            try await store.finishWebhooks([(all[0].inboxID, all[0].workID)], outcome: "processed", at: self.t0, lease: first)
        }
        #expect(try await store.queuedWebhooks(tenantID: "ten_A", excluding: -1, receivedBy: t0.addingTimeInterval(10), limit: 10).count == 3)
        // The holder's finishes its tenant's, and never another tenant's it was handed.
        let pairs = [(all[0].inboxID, all[0].workID), (all[1].inboxID, all[1].workID), (theirs.inboxID, theirs.workID)]
        try await store.finishWebhooks(pairs.map { (inboxID: $0.0, workID: $0.1) }, outcome: "processed", at: t0, lease: second)
        #expect(try await store.queuedWebhooks(tenantID: "ten_A", excluding: -1, receivedBy: t0.addingTimeInterval(10), limit: 10) == [all[2]])
        #expect(try await store.queuedWebhooks(tenantID: "ten_B", excluding: -1, receivedBy: t0, limit: 10) == [theirs])
        #expect(try await store.webhookPayload(inboxID: all[0].inboxID) == nil, "a finished webhook's payload is gone")
        #expect(try await store.queued(tenantID: "ten_A").filter { $0.kind == .webhook }.count == 3, "the two with keys wait for their own turn")
    }

    private func outcome(_ f: Fixture, fence: TenantLease) async throws {
        _ = try await f.store.update(tenantID: "ten_A", fence: fence, voids: false) { context in
            var tenant = context.tenant
            tenant.providerStatus = "answered"
            var update = TenantUpdate(tenant: tenant, events: [], credentials: nil, work: nil, writesTenant: true)
            update.releasesLease = true
            return update
        }
    }
}
