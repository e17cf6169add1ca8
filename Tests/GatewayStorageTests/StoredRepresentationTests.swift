import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

@testable import GatewayStorage

/// Reads are served from the rendering kept beside each tenant. Those bytes must be, byte for byte, what the API
/// renders for the tenant (`Renderer`: `TenantJSON` with the onboarding link on a redirect), after every kind of
/// write, on both databases; and a rendering of another shape's version must never be served.
@Suite struct StoredRepresentationTests {
    let t0 = TestStores.t0

    static func link(_ id: String) -> String { "https://gw.example/onboard/\(id).sig" }

    /// What the API renders for a tenant.
    static func api(_ tenant: Tenant) -> [UInt8] {
        var out: [UInt8] = []
        TenantJSON.write(tenant, link: tenant.nextAction?.type == .redirectToURL ? link(tenant.id) : nil, into: &out)
        return out
    }

    /// What the API serves from a kept rendering.
    static func served(_ stored: StoredTenant) -> [UInt8] {
        var out: [UInt8] = []
        TenantJSON.appendWithOnboardingLink(stored.bytes, link: link, id: stored.id, into: &out)
        return out
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test(arguments: Backend.all) func theKeptRenderingIsWhatTheAPIRendersForGeneratedTenants(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        var random = SeededGenerator(seed: 20_261_206)
        for round in 0..<150 {
            var tenant = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
            tenant.externalID = "ext-\(round)-" + tenant.externalID
            _ = try await store.insert(tenant, events: [], work: ScheduledWork(kind: .check, runAt: t0, attempts: 0), webhookToken: nil)
            let inserted = try #require(try await store.storedTenant(id: tenant.id))
            let read = try #require(try await store.tenant(id: tenant.id))
            #expect(Data(Self.served(inserted)) == Data(Self.api(read)), "round \(round), inserted: \(Self.text(Self.served(inserted))) vs \(Self.text(Self.api(read)))")
            #expect(Data(Self.served(inserted)) == Data(Self.api(tenant)), "round \(round): the tenant as written")

            // Every field changed by an update (same id, provider, customer and creation).
            var changed = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
            changed.id = tenant.id
            changed.provider = tenant.provider
            changed.externalID = tenant.externalID
            changed.createdAt = tenant.createdAt
            _ = try await store.update(tenantID: tenant.id, fence: nil, voids: false) { [changed] _ in
                TenantUpdate(tenant: changed, events: [], credentials: nil, work: nil, writesTenant: true)
            }
            let updated = try #require(try await store.storedTenant(id: tenant.id))
            let reread = try #require(try await store.tenant(id: tenant.id))
            #expect(Data(Self.served(updated)) == Data(Self.api(reread)), "round \(round), updated: \(Self.text(Self.served(updated))) vs \(Self.text(Self.api(reread)))")
            #expect(Data(Self.served(updated)) == Data(Self.api(changed)), "round \(round): the tenant as updated")
        }
        // A page is the kept renderings in the order, and with the cursor, of the tenants' own page.
        for query in [TenantQuery(limit: 1), TenantQuery(limit: 7), TenantQuery(limit: 200), TenantQuery(state: .active, limit: 5), TenantQuery(provider: .wrapp, limit: 20)] {
            var cursor: String?
            repeat {
                var paged = query
                paged.before = cursor
                let tenants = try await store.tenants(paged)
                let stored = try await store.storedTenants(paged)
                #expect(stored.items.map(\.id) == tenants.items.map(\.id) && stored.next == tenants.next)
                #expect(stored.items.map { Data(Self.served($0)) } == tenants.items.map { Data(Self.api($0)) }, "page of \(paged)")
                cursor = tenants.next
            } while cursor != nil
        }
        #expect(try await store.storedTenant(id: "ten_none") == nil)
    }

    /// The previous release, still running beside this one during an upgrade, writes tenants without their rendering.
    /// What it changed must show at once: an offboarding it made must never go on showing the erased profile.
    @Test(arguments: Backend.all) func aChangeMadeWithoutTheRenderingIsNeverHiddenByIt(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        var tenant = Tenant(
            id: "ten_old", provider: .wrapp, externalID: "ext-old", state: .active,
            profile: Profile(email: "maria@example.com", phone: "+302101234567", contactName: "Maria"), metadata: ["crm": "42"],
            createdAt: t0, updatedAt: t0, stateChangedAt: t0
        )
        _ = try await store.insert(tenant, events: [], work: ScheduledWork(kind: .check, runAt: t0, attempts: 0), webhookToken: nil)
        // The gateway's own write whose rendering comes out the same bytes (times are shown to the second, kept with
        // fractions) keeps it: the trigger knows the statement wrote it.
        _ = try await store.update(tenantID: "ten_old", fence: nil, voids: false) { context in
            var same = context.tenant
            same.updatedAt = same.updatedAt.addingTimeInterval(0.3)
            return TenantUpdate(tenant: same, events: [], credentials: nil, work: nil, writesTenant: true)
        }
        #expect(try await TestStores.count(store, "SELECT count(*) FROM tenants WHERE id = 'ten_old' AND api_json IS NOT NULL") == 1)
        // A statement that changes nothing shown (a lease taken) keeps the rendering.
        try await TestStores.execute(store, "UPDATE tenants SET lease_owner = 'other', lease_until = 0 WHERE id = 'ten_old'")
        #expect(try await TestStores.count(store, "SELECT count(*) FROM tenants WHERE id = 'ten_old' AND api_json IS NOT NULL") == 1)
        // The old release's offboarding: state and profile changed, api_json untouched.
        try await TestStores.execute(
            store,
            "UPDATE tenants SET state = 'offboarded', profile = '{}', metadata = '{}', updated_at = \(t0.timeIntervalSince1970 + 60) WHERE id = 'ten_old'"
        )
        tenant = try #require(try await store.tenant(id: "ten_old"))
        #expect(tenant.state == .offboarded && tenant.profile.email == nil)
        let served = Self.served(try #require(try await store.storedTenant(id: "ten_old")))
        #expect(Data(served) == Data(Self.api(tenant)), "\(Self.text(served))")
        #expect(!Self.text(served).contains("maria@example.com"))
        let page = try await store.storedTenants(TenantQuery(limit: 5))
        #expect(page.items.map { Data(Self.served($0)) } == [Data(Self.api(tenant))])
    }

    /// A shape that is not the API's: the test's stand-in for the next version of the API's shape.
    struct NextShape: TenantRepresentation {
        let version = 2
        func render(_ tenant: Tenant) -> [UInt8] { Array(#"{"v2":"#.utf8) + TenantJSON.Representation().render(tenant) + Array("}".utf8) }
    }

    @Test(arguments: Backend.all) func aRenderingOfAnotherShapeIsNeverServedAndIsRenderedAgainAndKept(_ backend: Backend) async throws {
        let store = try await TestStores.make(backend)
        var random = SeededGenerator(seed: 7)
        var tenants: [Tenant] = []
        for round in 0..<6 {
            var tenant = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
            tenant.externalID = "ext-\(round)"
            _ = try await store.insert(tenant, events: [], work: ScheduledWork(kind: .check, runAt: t0, attempts: 0), webhookToken: nil)
            tenants.append(try #require(try await store.tenant(id: tenant.id)))
        }
        // A row written before the renderings were kept (migration 0010 leaves them NULL).
        try await TestStores.execute(store, "UPDATE tenants SET api_json = NULL, api_version = NULL WHERE id = '\(tenants[0].id.replacingOccurrences(of: "'", with: "''"))'")
        #expect(Self.served(try #require(try await store.storedTenant(id: tenants[0].id))) == Self.api(tenants[0]))

        // A server with the next shape on the same database: every answer is of its shape, from the first read.
        let next = try await TestStores.replica(of: store, representation: NextShape())
        for tenant in tenants {
            #expect(try await next.storedTenant(id: tenant.id)?.bytes == NextShape().render(tenant))
        }
        let page = try await next.storedTenants(TenantQuery(limit: 50))
        #expect(page.items.count == tenants.count && page.items.allSatisfy { $0.bytes.starts(with: Array(#"{"v2":"#.utf8)) })
        // … and the new renderings are kept, so later reads are served from bytes again.
        let deadline = Date().addingTimeInterval(10)
        while try await TestStores.count(store, "SELECT count(*) FROM tenants WHERE api_version = 2") < tenants.count, Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await TestStores.count(store, "SELECT count(*) FROM tenants WHERE api_version = 2") == tenants.count)
        // The first server never serves the other shape's bytes: it renders its own again.
        for tenant in tenants {
            #expect(Self.served(try #require(try await store.storedTenant(id: tenant.id))) == Self.api(tenant))
        }
        #expect(try await store.storedTenants(TenantQuery(limit: 50)).items.map(Self.served) == tenants.sorted { $0.id > $1.id }.map(Self.api))
        // … and never writes its older shape back over the newer one (in a rolling upgrade the two would otherwise
        // rewrite each other's rows on every read). A write-back would have been queued by now: one more write
        // through the same queue has committed after it.
        _ = try await store.update(tenantID: "ten_none", fence: nil, voids: false) { _ in nil }
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await TestStores.count(store, "SELECT count(*) FROM tenants WHERE api_version = 2") == tenants.count)
    }
}
