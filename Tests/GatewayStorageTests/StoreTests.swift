import Foundation
import GatewayCore
import Providers
import Testing

@testable import GatewayStorage

/// The store's contract, run unchanged against SQLite and PostgreSQL.
@Suite struct StoreTests {
    let t0 = TestStores.t0

    func tenant(_ id: String, external: String) -> Tenant {
        Tenant(id: id, provider: .wrapp, externalID: external, state: .pending, profile: Profile(email: "a@example.com", phone: "+302101234567"),
               createdAt: t0, updatedAt: t0, stateChangedAt: t0)
    }

    func event(_ tenant: Tenant, _ id: String) -> TenantEvent {
        TenantEvent(id: id, tenantID: tenant.id, type: .created, createdAt: t0, previousState: nil, source: .api, tenant: tenant)
    }

    @Test(arguments: Backend.all) func theNaturalKeyIsUnique(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        let first = tenant("ten_A", external: "ext")
        guard case .inserted = try await store.insert(first, events: [event(first, "evt_1")], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: "tok-a") else {
            Issue.record("first insert should succeed"); return
        }
        let second = tenant("ten_B", external: "ext")
        guard case .existing(let existing) = try await store.insert(second, events: [], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil) else {
            Issue.record("same provider and external_id must not insert twice"); return
        }
        #expect(existing.id == "ten_A")
        #expect(try await store.webhookRecipient(forToken: "tok-a") == WebhookRecipient(tenantID: "ten_A", provider: .wrapp, externalID: "ext"))
        #expect(try await store.webhookToken(tenantID: "ten_A") == "tok-a")
        #expect(try await store.webhookRecipient(forToken: "tok-b") == nil)
    }

    @Test(arguments: Backend.all) func aFailedDecisionWritesNothing(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        let t = tenant("ten_A", external: "ext")
        _ = try await store.insert(t, events: [event(t, "evt_1")], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await store.update(tenantID: "ten_A") { _ in throw Boom() }
        }
        await #expect(throws: (any Error).self) {
            // The event id collides with an existing one: the insert fails after the tenant row was updated.
            try await store.update(tenantID: "ten_A") { context in
                var changed = context.tenant
                changed.state = .active
                return TenantUpdate(tenant: changed, events: [event(changed, "evt_1")], credentials: .wrapp(wrappUserID: "u", apiKey: "k"), work: nil, writesTenant: true)
            }
        }
        #expect(try await store.tenant(id: "ten_A")?.state == .pending, "the tenant row rolled back with the failed event insert")
        #expect(try await store.credentials(tenantID: "ten_A") == nil)
        #expect(try await store.queued(tenantID: "ten_A").count == 1)
    }

    @Test(arguments: Backend.all) func anEventNeverGoesOutForAChangeThatRolledBack(_ backend: Backend) async throws {
        let outbox = try await TestStores.make(backend, deliversEvents: true)
        let t = tenant("ten_A", external: "ext")
        _ = try await outbox.insert(t, events: [event(t, "evt_1")], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
        await #expect(throws: (any Error).self) {
            try await outbox.update(tenantID: "ten_A") { context in
                var changed = context.tenant
                changed.state = .active
                // The second event collides with the first: the whole change rolls back, its event and delivery too.
                return TenantUpdate(tenant: changed, events: [event(changed, "evt_2"), event(changed, "evt_1")], credentials: nil, work: nil, writesTenant: true)
            }
        }
        let stats = try await outbox.deliveryStats(now: t0)
        #expect(stats.pending == 1, "only the committed event's delivery")
        #expect(try await outbox.claimDueDeliveries(now: t0, limit: 10, leaseUntil: t0.addingTimeInterval(60)).map(\.event.id) == ["evt_1"])
    }

    @Test(arguments: Backend.all) func claimedWorkIsLeasedAndComesBackWhenTheLeaseRunsOut(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        let t = tenant("ten_A", external: "ext")
        _ = try await store.insert(t, events: [], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
        let claimed = try await store.claimDueWork(now: t0, limit: 10, leaseUntil: t0.addingTimeInterval(120))
        #expect(claimed.map(\.tenantID) == ["ten_A"])
        #expect(claimed.first?.attempts == 1)
        #expect(try await store.claimDueWork(now: t0.addingTimeInterval(60), limit: 10, leaseUntil: t0.addingTimeInterval(180)).isEmpty)
        let again = try await store.claimDueWork(now: t0.addingTimeInterval(121), limit: 10, leaseUntil: t0.addingTimeInterval(240))
        #expect(again.first?.attempts == 2, "a worker that died leaves the work to be claimed again, counting the attempt")
    }

    @Test(arguments: Backend.all) func aWebhookIsStoredOnceSealed(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        let t = tenant("ten_A", external: "ext")
        _ = try await store.insert(t, events: [], work: ScheduledWork(kind: .check, runAt: t0.addingTimeInterval(3600), attempts: 0), webhookToken: nil)
        let payload = Data(#"{"partner_user_id":"ext","api_key":"very-secret-key"}"#.utf8)
        #expect(try await store.receiveWebhook(tenantID: "ten_A", payload: payload, at: t0))
        #expect(try await !store.receiveWebhook(tenantID: "ten_A", payload: payload, at: t0.addingTimeInterval(1)))
        let work = try await store.claimDueWork(now: t0, limit: 10, leaseUntil: t0.addingTimeInterval(60))
        #expect(work.map(\.kind) == [.webhook])
        let inboxID = try #require(work.first?.inboxID)
        #expect(try await store.webhookPayload(inboxID: inboxID) == payload)
        try await store.finishWebhook(inboxID: inboxID, workID: work[0].id, outcome: "processed", at: t0)
        #expect(try await store.queued(tenantID: "ten_A").map(\.kind) == [.check])
        #expect(try await store.webhookPayload(inboxID: inboxID) == nil, "a processed payload is deleted")
        #expect(try await !store.receiveWebhook(tenantID: "ten_A", payload: payload, at: t0.addingTimeInterval(2)), "its repeat is still recognised")

        let bytes = try await TestStores.storedBytes(store)
        #expect(!bytes.isEmpty && bytes.range(of: Data("very-secret-key".utf8)) == nil)
    }

    @Test(arguments: Backend.all) func listsPageNewestFirst(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        for index in 0..<5 {
            let t = tenant("ten_\(index)", external: "ext-\(index)")
            _ = try await store.insert(t, events: [event(t, "evt_\(index)")], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
        }
        let first = try await store.tenants(TenantQuery(limit: 2))
        #expect(first.items.map(\.id) == ["ten_4", "ten_3"])
        let second = try await store.tenants(TenantQuery(limit: 2, before: first.next))
        #expect(second.items.map(\.id) == ["ten_2", "ten_1"])
        let last = try await store.tenants(TenantQuery(limit: 2, before: second.next))
        #expect(last.items.map(\.id) == ["ten_0"] && last.next == nil)
        let events = try await store.events(tenantID: nil, after: nil, limit: 3)
        #expect(events.items.map(\.id) == ["evt_0", "evt_1", "evt_2"])
        let rest = try await store.events(tenantID: nil, after: events.next.flatMap { Int64($0) }, limit: 3)
        #expect(rest.items.map(\.id) == ["evt_3", "evt_4"] && rest.next == nil)
    }
}

/// Every write of the store goes through group commit: writes that arrive together share a transaction, each in its
/// own savepoint. What each caller is told must be what its own transaction would have told it.
extension StoreTests {
    @Test(arguments: Backend.all) func concurrentWritesShareCommitsButSucceedAndFailAlone(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        let first = tenant("ten_A", external: "ext")
        _ = try await store.insert(first, events: [event(first, "evt_1")], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: "tok-a")
        let payloads = (0..<300).map { Data("{\"n\":\($0 % 250)}".utf8) }  // 50 repeats of earlier payloads
        let (stored, refused) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for payload in payloads {
                group.addTask { (try await store.receiveWebhook(tenantID: "ten_A", payload: payload, at: Date()) ? 1 : 0, 0) }
            }
            // Among them, writes that throw half way: their savepoints roll back, the others' writes stay.
            for n in 0..<20 {
                group.addTask {
                    do {
                        _ = try await store.update(tenantID: "ten_A") { context in
                            var tenant = context.tenant
                            tenant.metadata["broken"] = "\(n)"
                            var update = TenantUpdate(tenant: tenant, events: [], credentials: nil, work: nil, writesTenant: true)
                            update.keepsWork = true
                            if n % 2 == 0 { throw CancellationError() }
                            return update
                        }
                        return (0, 0)
                    } catch {
                        return (0, 1)
                    }
                }
            }
            var totals = (0, 0)
            for try await (s, r) in group { totals.0 += s; totals.1 += r }
            return totals
        }
        #expect(stored == 250, "each distinct payload stored once, each repeat told it was one")
        #expect(refused == 10)
        let inbox = try await TestStores.count(store, "SELECT COUNT(*) FROM webhook_inbox")
        let jobs = try await TestStores.count(store, "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook'")
        #expect(inbox == 250 && jobs == 250)
        let tenant = try #require(try await store.tenant(id: "ten_A"))
        #expect(tenant.metadata["broken"].map { Int($0)! % 2 == 1 } ?? false, "only the writes that did not throw left a trace")
    }
}
