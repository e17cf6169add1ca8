import Foundation
import GatewayCore
import Providers
import Testing

@testable import GatewayStorage
@testable import GatewayStoragePostgres

/// Two gateways on one database, racing: every rule that keeps one replica from undoing another is the database's,
/// so each test gives two stores (each with its own connections) the same work at the same moment.
@Suite struct ReplicaStoreTests {
    let t0 = TestStores.t0

    func tenant(_ id: String, external: String) -> Tenant {
        Tenant(id: id, provider: .wrapp, externalID: external, state: .pending, profile: Profile(email: "a@example.com"),
               createdAt: t0, updatedAt: t0, stateChangedAt: t0)
    }

    func event(_ tenant: Tenant, _ id: String) -> TenantEvent {
        TenantEvent(id: id, tenantID: tenant.id, type: .created, createdAt: t0, previousState: nil, source: .api, tenant: tenant)
    }

    @Test(arguments: Backend.all) func dueWorkIsClaimedByOneReplicaAtATime(_ backend: Backend) async throws {
        let a = try await TestStores.make(backend)
        let b = try await TestStores.replica(of: a)
        for index in 0..<60 {
            let t = tenant("ten_\(index)", external: "ext-\(index)")
            _ = try await a.insert(t, events: [], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
            // A second due item for some tenants: still one at a time per tenant.
            if index % 3 == 0 { _ = try await a.receiveWebhook(tenantID: t.id, payload: Data("{\"n\":\(index)}".utf8), at: t0) }
        }
        // Eight workers on two replicas claim in rounds, all within the same lease period.
        let claims = try await withThrowingTaskGroup(of: [WorkItem].self) { group in
            for worker in 0..<8 {
                let store = worker % 2 == 0 ? a : b
                group.addTask {
                    var mine: [WorkItem] = []
                    for _ in 0..<5 {
                        mine += try await store.claimDueWork(
                            now: TestStores.t0.addingTimeInterval(1), limit: 4, leaseUntil: TestStores.t0.addingTimeInterval(120),
                            owner: "worker-\(worker)", quotas: nil
                        )
                    }
                    return mine
                }
            }
            var all: [WorkItem] = []
            for try await items in group { all += items }
            return all
        }
        let tenants = claims.map(\.tenantID)
        #expect(Set(tenants).count == tenants.count, "no tenant claimed twice while its lease runs")
        #expect(Set(tenants).count == 60, "every tenant with due work was claimed")
        // Each claim holds the tenant's current lease: the other replica cannot take it, nor fence-write past it.
        for item in claims.prefix(10) {
            let other = item.id % 2 == 0 ? b : a
            #expect(try await other.acquireLease(tenantID: item.tenantID, owner: "api", now: t0.addingTimeInterval(2), until: t0.addingTimeInterval(60))
                == .busy(until: t0.addingTimeInterval(120)))
        }
        await a.close()
        await b.close()
    }

    @Test(arguments: Backend.all) func aCustomerCreatedOnTwoReplicasAtOnceIsOneTenant(_ backend: Backend) async throws {
        let a = try await TestStores.make(backend)
        let b = try await TestStores.replica(of: a)
        let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
            for attempt in 0..<12 {
                let store = attempt % 2 == 0 ? a : b
                let t = tenant("ten_\(attempt)", external: "same-customer")
                let e = event(t, "evt_\(attempt)")
                group.addTask {
                    switch try await store.insert(t, events: [e], work: ScheduledWork(kind: .submit, runAt: TestStores.t0, attempts: 0), webhookToken: "tok-\(attempt)") {
                    case .inserted: "inserted:\(t.id)"
                    case .existing(let existing): "existing:\(existing.id)"
                    case .companyTaken: "company-taken"
                    }
                }
            }
            var all: [String] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        let inserted = outcomes.filter { $0.hasPrefix("inserted:") }
        #expect(inserted.count == 1, "\(outcomes)")
        let winner = inserted.first.map { String($0.dropFirst("inserted:".count)) }
        #expect(outcomes.filter { $0.hasPrefix("existing:") }.allSatisfy { $0 == "existing:\(winner ?? "")" })
        #expect(try await TestStores.count(a, "SELECT COUNT(*) FROM tenants") == 1)
        #expect(try await TestStores.count(a, "SELECT COUNT(*) FROM tenant_events") == 1, "the losers' events rolled back with their insert")
        #expect(try await TestStores.count(a, "SELECT COUNT(*) FROM jobs") == 1)
        await a.close()
        await b.close()
    }

    @Test(arguments: Backend.all) func anIdempotencyKeySentToTwoReplicasAtOnceRunsOnce(_ backend: Backend) async throws {
        let a = try await TestStores.make(backend)
        let b = try await TestStores.replica(of: a)
        let hash = Data(repeating: 1, count: 32)
        let claims = try await withThrowingTaskGroup(of: IdempotencyClaim.self) { group in
            for attempt in 0..<10 {
                let store = attempt % 2 == 0 ? a : b
                group.addTask {
                    try await store.claimIdempotencyKey(
                        scope: "key_1", key: "create-42", requestHash: hash, now: TestStores.t0,
                        expiredBefore: TestStores.t0.addingTimeInterval(-86_400), abandonedBefore: TestStores.t0.addingTimeInterval(-60)
                    )
                }
            }
            var all: [IdempotencyClaim] = []
            for try await claim in group { all.append(claim) }
            return all
        }
        #expect(claims.filter { $0 == .started }.count == 1, "\(claims)")
        #expect(claims.filter { $0 == .inProgress }.count == 9)
        let response = StoredResponse(status: 201, headers: ["Location": "/v1/tenants/ten_1"], body: Data("{}".utf8))
        #expect(try await a.completeIdempotencyKey(scope: "key_1", key: "create-42", claimedAt: TestStores.t0, response: response, tenantID: "ten_1", at: t0))
        #expect(try await b.claimIdempotencyKey(
            scope: "key_1", key: "create-42", requestHash: hash, now: t0.addingTimeInterval(1),
            expiredBefore: t0.addingTimeInterval(-86_400), abandonedBefore: t0.addingTimeInterval(-59)
        ) == .completed(response), "the other replica replays the first answer")
        await a.close()
        await b.close()
    }

    /// The shared circuit: what one replica opens the other reads; after the cool-down one probe is handed out (held
    /// until its hold runs out); opening again frees the probe; closing removes it for all. SQLite has none: one
    /// process keeps its breakers in memory.
    @Test(arguments: Backend.all) func theCircuitIsSharedAndOneReplicaProbes(_ backend: Backend) async throws {
        let a = try await TestStores.make(backend)
        let b = try await TestStores.replica(of: a)
        guard let circuitsA = a.sharedCircuits, let circuitsB = b.sharedCircuits else {
            #expect(backend == .sqlite, "only SQLite keeps its breakers in memory")
            await a.close()
            await b.close()
            return
        }
        #expect(try await circuitsB.sharedCircuit(.wrapp) == nil)
        try await circuitsA.openSharedCircuit(.wrapp, until: t0.addingTimeInterval(30), coolDown: 30)
        #expect(try await circuitsB.sharedCircuit(.wrapp) == SharedCircuit(openUntil: t0.addingTimeInterval(30), coolDown: 30))
        #expect(try await circuitsB.sharedCircuit(.magnifinance) == nil, "one circuit per provider")
        #expect(try await !circuitsB.claimSharedProbe(.wrapp, now: t0.addingTimeInterval(29), holdUntil: t0.addingTimeInterval(89)), "still cooling down")
        let claims = try await withThrowingTaskGroup(of: Bool.self) { group in
            for store in [circuitsA, circuitsB, circuitsA, circuitsB] {
                group.addTask { try await store.claimSharedProbe(.wrapp, now: t0.addingTimeInterval(31), holdUntil: t0.addingTimeInterval(91)) }
            }
            var all: [Bool] = []
            for try await claim in group { all.append(claim) }
            return all
        }
        #expect(claims.filter { $0 }.count == 1, "one probe for all replicas: \(claims)")
        #expect(try await !circuitsA.claimSharedProbe(.wrapp, now: t0.addingTimeInterval(90), holdUntil: t0.addingTimeInterval(150)))
        #expect(try await circuitsA.claimSharedProbe(.wrapp, now: t0.addingTimeInterval(91), holdUntil: t0.addingTimeInterval(151)),
                "a probe whose replica died is free again when its hold runs out")
        try await circuitsA.openSharedCircuit(.wrapp, until: t0.addingTimeInterval(152), coolDown: 60)
        #expect(try await circuitsB.claimSharedProbe(.wrapp, now: t0.addingTimeInterval(152), holdUntil: t0.addingTimeInterval(212)),
                "opened again after a failed probe: the next probe is free after the new cool-down")
        try await circuitsB.closeSharedCircuit(.wrapp)
        #expect(try await circuitsA.sharedCircuit(.wrapp) == nil)
        #expect(try await !circuitsA.claimSharedProbe(.wrapp, now: t0.addingTimeInterval(300), holdUntil: t0.addingTimeInterval(360)), "closed: nothing to probe")
        await a.close()
        await b.close()
    }

    /// A replica killed mid-request leaves its claim behind. While the request runs it renews the claim, so a retry
    /// on another replica waits (409); once renewals stop, the retry takes the key over after `abandonedBefore`,
    /// and the first claimant, should it still be alive, learns that the key is no longer its own.
    @Test(arguments: Backend.all) func aClaimIsRenewedWhileItsRequestRunsAndTakenOverWhenItsReplicaDied(_ backend: Backend) async throws {
        let a = try await TestStores.make(backend)
        let b = try await TestStores.replica(of: a)
        let hash = Data(repeating: 2, count: 32)
        func claim(_ store: any GatewayStore, at seconds: TimeInterval) async throws -> IdempotencyClaim {
            let now = t0.addingTimeInterval(seconds)
            return try await store.claimIdempotencyKey(
                scope: "key_1", key: "k", requestHash: hash, now: now,
                expiredBefore: now.addingTimeInterval(-86_400), abandonedBefore: now.addingTimeInterval(-30)
            )
        }
        #expect(try await claim(a, at: 0) == .started)
        #expect(try await a.renewIdempotencyKey(scope: "key_1", key: "k", claimedAt: t0, now: t0.addingTimeInterval(25)))
        #expect(try await claim(b, at: 40) == .inProgress, "renewed at 25 s: not abandoned at 40 s")
        #expect(try await !a.renewIdempotencyKey(scope: "key_1", key: "k", claimedAt: t0, now: t0.addingTimeInterval(41)),
                "a renewal must name the claim time it last wrote")
        #expect(try await claim(b, at: 56) == .started, "not renewed for 31 s: the retry takes the key over")
        #expect(try await !a.renewIdempotencyKey(scope: "key_1", key: "k", claimedAt: t0.addingTimeInterval(25), now: t0.addingTimeInterval(57)),
                "the first claimant's renewal fails once the key was taken over")
        let answer = StoredResponse(status: 201, headers: [:], body: Data())
        #expect(try await !a.completeIdempotencyKey(scope: "key_1", key: "k", claimedAt: t0.addingTimeInterval(25), response: answer, tenantID: nil, at: t0.addingTimeInterval(57)),
                "the claimant that lost the key does not store its answer over the new one's")
        try await a.releaseIdempotencyKey(scope: "key_1", key: "k", claimedAt: t0.addingTimeInterval(25))
        #expect(try await claim(a, at: 57) == .inProgress, "nor does it release the claim of the request that took the key")
        #expect(try await b.completeIdempotencyKey(scope: "key_1", key: "k", claimedAt: t0.addingTimeInterval(56), response: answer, tenantID: nil, at: t0.addingTimeInterval(58)))
        #expect(try await !b.renewIdempotencyKey(scope: "key_1", key: "k", claimedAt: t0.addingTimeInterval(56), now: t0.addingTimeInterval(59)),
                "a finished request's answer is never renewed")
        await a.close()
        await b.close()
    }

    @Test(arguments: Backend.all) func aWebhookDeliveredToTwoReplicasIsStoredOnce(_ backend: Backend) async throws {
        let a = try await TestStores.make(backend)
        let b = try await TestStores.replica(of: a)
        let t = tenant("ten_A", external: "ext")
        _ = try await a.insert(t, events: [], work: ScheduledWork(kind: .check, runAt: t0.addingTimeInterval(3600), attempts: 0), webhookToken: nil)
        let payloads = (0..<40).map { Data("{\"event\":\($0 % 10)}".utf8) }
        let stored = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, payload) in payloads.enumerated() {
                let store = index % 2 == 0 ? a : b
                group.addTask { try await store.receiveWebhook(tenantID: "ten_A", payload: payload, at: TestStores.t0) ? 1 : 0 }
            }
            return try await group.reduce(0, +)
        }
        #expect(stored == 10)
        #expect(try await TestStores.count(a, "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook'") == 10)
        await a.close()
        await b.close()
    }

    @Test(arguments: Backend.all) func aDisabledEndpointStopsEveryReplicasDeliveries(_ backend: Backend) async throws {
        let a = try await TestStores.make(backend, deliversEvents: true)
        let b = try await TestStores.replica(of: a, deliversEvents: true)
        let t = tenant("ten_A", external: "ext")
        _ = try await a.insert(t, events: [event(t, "evt_1")], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
        try await a.disableEventsEndpoint(at: t0, reason: "410 Gone")
        #expect(try await b.claimDueDeliveries(now: t0.addingTimeInterval(1), limit: 10, leaseUntil: t0.addingTimeInterval(60)).isEmpty)
        #expect(try await b.deliveryStats(now: t0).endpointDisabledAt == t0)
        #expect(try await b.enableEventsEndpoint())
        // Two replicas' dispatchers claim at once: each delivery goes to one of them.
        async let fromA = a.claimDueDeliveries(now: t0.addingTimeInterval(2), limit: 10, leaseUntil: t0.addingTimeInterval(60))
        async let fromB = b.claimDueDeliveries(now: t0.addingTimeInterval(2), limit: 10, leaseUntil: t0.addingTimeInterval(60))
        let claimed = try await fromA + fromB
        #expect(claimed.map(\.id) == ["dlv_1"])
        await a.close()
        await b.close()
    }
}

extension ReplicaStoreTests {
    /// A replica whose claim ran out while it was still sending (a slow endpoint, many events for one tenant) must not
    /// write over the replica that took the delivery since: `delivered` stays `delivered`, and a renewal of a claim
    /// that is no longer held says so.
    @Test(arguments: Backend.all) func aDeliveryClaimThatRanOutIsFencedAndRenewalsSayWhatIsStillHeld(_ backend: Backend) async throws {
        let a = try await TestStores.make(backend, deliversEvents: true)
        let b = try await TestStores.replica(of: a, deliversEvents: true)
        let t = tenant("ten_A", external: "ext")
        _ = try await a.insert(t, events: [event(t, "evt_1"), event(t, "evt_2")], work: ScheduledWork(kind: .submit, runAt: t0, attempts: 0), webhookToken: nil)
        let first = try await a.claimDueDeliveries(now: t0, limit: 10, leaseUntil: t0.addingTimeInterval(60))
        #expect(first.map(\.event.id) == ["evt_1", "evt_2"])
        // a renews while it sends the first: both still its own.
        let renewed = t0.addingTimeInterval(90)
        #expect(try await a.renewDeliveries(ids: first.map(\.id), claimedUntil: t0.addingTimeInterval(60), until: renewed) == Set(first.map(\.id)))
        // a stalls past its renewed claim; b takes both and delivers the first.
        let second = try await b.claimDueDeliveries(now: t0.addingTimeInterval(91), limit: 10, leaseUntil: t0.addingTimeInterval(151))
        #expect(second.map(\.event.id) == ["evt_1", "evt_2"])
        let attempt = DeliveryAttempt(at: t0.addingTimeInterval(92), statusCode: 200, durationMilliseconds: 5, error: nil, excerpt: nil)
        #expect(try await b.recordDeliveryAttempt(id: second[0].id, claimedUntil: second[0].claimedUntil, attempt: attempt, result: .delivered))
        // a's late outcome for the same delivery changes nothing, and a no longer holds the second.
        let late = DeliveryAttempt(at: t0.addingTimeInterval(93), statusCode: 500, durationMilliseconds: 5, error: "answered 500", excerpt: nil)
        #expect(try await !a.recordDeliveryAttempt(id: first[0].id, claimedUntil: renewed, attempt: late, result: .retry(at: t0.addingTimeInterval(200))))
        #expect(try await a.renewDeliveries(ids: [first[1].id], claimedUntil: renewed, until: t0.addingTimeInterval(180)).isEmpty)
        let record = try #require(try await a.delivery(id: first[0].id))
        #expect(record.status == .delivered)
        #expect(record.attempts.count == 1, "only b's attempt is recorded")
        await a.close()
        await b.close()
    }
}

/// Migrations when several replicas start at once: PostgreSQL only (a SQLite database belongs to one process).
@Suite struct PostgresMigrationTests {
    @Test(.enabled(if: Backend.all.contains(.postgres), "needs GATEWAY_TEST_POSTGRES_URL (CI always sets it)"))
    func replicasStartingTogetherApplyEachMigrationOnce() async throws {
        let schema = TestStores.newSchema()
        var stores: [PostgresStore] = []
        for _ in 0..<4 { stores.append(try await TestStores.postgres(schema: schema)) }
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for store in stores { group.addTask { try await store.migrate() } }
            var all: [[Int]] = []
            for try await versions in group { all.append(versions) }
            return all
        }
        let files = stores[0].migrations.files.map(\.version)
        #expect(applied.flatMap { $0 }.sorted() == files, "each file applied by exactly one replica: \(applied)")
        for store in stores { #expect(await store.isReady()) }
        for store in stores { await store.close() }
    }

    @Test func theSplitterKeepsQuotedAndDollarQuotedSemicolons() {
        let sql = """
            -- a comment; with a semicolon
            CREATE TABLE a (x text DEFAULT 'a;b');
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE NOTICE 'x;y'; RETURN NULL;
            END $$;
            CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;
            SELECT 'it''s; fine'
            """
        let statements = PostgresMigrator.statements(sql)
        #expect(statements.count == 4, "\(statements)")
        #expect(statements[0] == "CREATE TABLE a (x text DEFAULT 'a;b')")
        #expect(statements[1].hasSuffix("END $$") && statements[1].contains("RETURN NULL;"))
        #expect(statements[2].hasSuffix("$body$ SELECT 1; $body$"))
        #expect(statements[3] == "SELECT 'it''s; fine'")
    }
}
