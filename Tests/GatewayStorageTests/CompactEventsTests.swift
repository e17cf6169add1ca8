import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

@testable import GatewayStorage

/// Events after a tenant's first keep only what changed (issue 23): the feed and the deliveries must still carry each
/// event's tenant exactly as it was when the event was written, on both databases, and an offboarding's erasure must
/// reach every snapshot, compact or not.
@Suite struct CompactEventsTests {
    let t0 = TestStores.t0

    static func json(_ tenant: Tenant) -> Data {
        var out: [UInt8] = []
        TenantJSON.write(tenant, link: nil, into: &out)
        return Data(out)
    }

    @Test(arguments: Backend.all) func everyEventCarriesTheTenantAsItWasWhenWritten(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend, deliversEvents: true)
        var random = SeededGenerator(seed: 23)
        var written: [String: Tenant] = [:]
        for round in 0..<40 {
            var tenant = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
            tenant.id = "ten_\(round)"
            tenant.externalID = "ext-\(round)"
            let created = TenantEvent(id: "evt_\(round)_0", tenantID: tenant.id, type: .created, createdAt: t0, previousState: nil, source: .api, tenant: tenant)
            _ = try await store.insert(tenant, events: [created], work: ScheduledWork(kind: .check, runAt: t0, attempts: 0), webhookToken: nil)
            written[created.id] = tenant
            for step in 1...4 {
                // Later changes: state, times, next action and errors move; now and then the profile too.
                let other = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
                var changed = tenant
                changed.state = other.state
                changed.nextAction = other.nextAction
                changed.lastError = other.lastError
                changed.providerStatus = other.providerStatus
                changed.updatedAt = other.updatedAt
                changed.stateChangedAt = other.stateChangedAt
                if step == 3 { changed.profile = other.profile }
                // Two events in one write: both carry the same tenant.
                let events = (0..<(step == 2 ? 2 : 1)).map { index in
                    TenantEvent(
                        id: "evt_\(round)_\(step)_\(index)", tenantID: tenant.id, type: .stateChanged, createdAt: t0, previousState: tenant.state,
                        source: .poll, tenant: changed
                    )
                }
                _ = try await store.update(tenantID: tenant.id, fence: nil, voids: false) { [changed, events] _ in
                    TenantUpdate(tenant: changed, events: events, credentials: nil, work: nil, writesTenant: true)
                }
                for event in events { written[event.id] = changed }
                tenant = changed
            }
        }
        #expect(try await TestStores.count(store, "SELECT count(*) FROM tenant_events WHERE base_seq IS NOT NULL") >= 40 * 4, "later events are compact")
        // The feed, page by page.
        var seen = 0
        var after: Int64?
        repeat {
            let page = try await store.events(tenantID: nil, after: after, limit: 37)
            for event in page.items {
                let expected = try #require(written[event.id])
                #expect(Self.json(event.tenant) == Self.json(expected), "\(event.id)")
                seen += 1
            }
            after = page.next.flatMap { Int64($0) }
        } while after != nil
        #expect(seen == written.count)
        // One tenant's history.
        let history = try await store.events(tenantID: "ten_7", after: nil, limit: 100)
        #expect(history.items.count == 6 && history.items.allSatisfy { Self.json($0.tenant) == Self.json(written[$0.id]!) })
        // The deliveries carry the same tenants.
        let claimed = try await store.claimDueDeliveries(now: t0.addingTimeInterval(60), limit: 500, leaseUntil: t0.addingTimeInterval(120))
        #expect(claimed.count == written.count)
        for delivery in claimed { #expect(Self.json(delivery.event.tenant) == Self.json(written[delivery.event.id]!), "\(delivery.event.id)") }

        // An offboarding's erasure reaches every snapshot, the compact ones included.
        _ = try await store.update(tenantID: "ten_7", fence: nil, voids: true) { context in
            var gone = context.tenant
            gone.state = .offboarded
            gone.profile = Profile()
            gone.metadata = [:]
            let event = TenantEvent(id: "evt_7_off", tenantID: "ten_7", type: .stateChanged, createdAt: context.tenant.updatedAt, previousState: context.tenant.state, source: .api, tenant: gone)
            var update = TenantUpdate(tenant: gone, events: [event], credentials: nil, work: nil, writesTenant: true)
            update.erasesPersonalData = true
            return update
        }
        let erased = try await store.events(tenantID: "ten_7", after: nil, limit: 100)
        #expect(erased.items.count == 7)
        for event in erased.items {
            #expect(event.tenant.profile == Profile() && event.tenant.metadata.isEmpty && event.tenant.nextAction == nil && event.tenant.lastError == nil, "\(event.id)")
            #expect(event.tenant.state == written[event.id]?.state ?? .offboarded, "history keeps its states")
        }
    }
}
