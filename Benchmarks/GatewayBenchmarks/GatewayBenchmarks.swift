import Benchmark
import Crypto
import Foundation
import GatewayCore
import GatewayServer
import GatewayStorage
import Providers

/// In-process micro-benchmarks of the gateway's hot steps (ordo-one's package-benchmark): the state machine, a
/// tenant encoded as the API answers it, and the store's read, update and webhook commit on a real SQLite file.
///
///     swift package --allow-writing-to-package-directory benchmark          # release, full statistics
///     BENCHMARK_SMOKE=1 .build/debug/GatewayBenchmarks                        # CI: a few iterations, proof it runs
let benchmarks: @Sendable () -> Void = {
    let smoke = ProcessInfo.processInfo.environment["BENCHMARK_SMOKE"] != nil
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        maxDuration: smoke ? .milliseconds(200) : .seconds(2),
        maxIterations: smoke ? 50 : 100_000
    )
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let tenant = Tenant(
        id: "ten_01JBENCHMARKTENANT000000001", provider: .wrapp, externalID: "cust-1", state: .actionRequired,
        nextAction: NextAction(type: .redirectToURL, url: "https://wrapp.example/login/abc"), providerStatus: "login_pending",
        profile: Profile(email: "maria@example.com", phone: "+302101234567"), metadata: ["crm_id": "42", "plan": "pro"],
        createdAt: now, updatedAt: now, stateChangedAt: now
    )

    Benchmark("State machine: a ready finding for a tenant sent to log in") { benchmark in
        let observation = Observation.finding(.ready(providerStatus: "active"), source: .webhook, at: now)
        for _ in benchmark.scaledIterations {
            blackHole(try TenantStateMachine.decide(tenant, observation, capabilities: ProviderCapabilities(readinessCanLapse: true)))
        }
    }

    let renderer = Renderer(links: OnboardingLinks(
        key: SymmetricKey(size: .bits256), address: ServerAddress(host: "127.0.0.1", port: 8080, publicURL: "https://gateway.example")
    ))
    Benchmark("Encode a tenant as the API answers it") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try renderer.body(tenant))
        }
    }

    Benchmark("Store: read one tenant by id") { benchmark, store in
        for _ in benchmark.scaledIterations {
            blackHole(try await store.tenant(id: tenant.id))
        }
    } setup: {
        try await Fixture.store(with: tenant)
    }

    Benchmark("Store: one update committed (metadata, no provider)") { benchmark, store in
        for i in benchmark.scaledIterations {
            blackHole(try await store.update(tenantID: tenant.id) { context in
                var changed = context.tenant
                changed.metadata["n"] = "\(i)"
                var update = TenantUpdate(tenant: changed, events: [], credentials: nil, work: nil, writesTenant: true)
                update.keepsWork = true
                return update
            })
        }
    } setup: {
        try await Fixture.store(with: tenant)
    }

    Benchmark("Store: 64 webhooks at once, group-committed", configuration: .init(scalingFactor: .one)) { benchmark, store in
        for i in benchmark.scaledIterations {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for j in 0..<64 {
                    group.addTask { try await store.receiveWebhook(tenantID: tenant.id, payload: Data("{\"n\":\"\(i)-\(j)\"}".utf8), at: now) }
                }
                for try await stored in group { blackHole(stored) }
            }
        }
    } setup: {
        try await Fixture.store(with: tenant)
    }
}

enum Fixture {
    /// A fresh, migrated database in a temporary folder holding `tenant`.
    static func store(with tenant: Tenant) async throws -> SQLiteStore {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-microbench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store = try SQLiteStore(
            path: folder.appendingPathComponent("gateway.sqlite").path, box: SecretBox(keys: [Data(repeating: 7, count: 32)]),
            migrations: try Migrations(folder: Migrations.locate())
        )
        try await store.migrate()
        let event = TenantEvent(id: "evt_01JBENCHMARKEVENT0000000001", tenantID: tenant.id, type: .created, createdAt: tenant.createdAt, previousState: nil, source: .api, tenant: tenant)
        _ = try await store.insert(
            tenant, events: [event], work: ScheduledWork(kind: .check, runAt: tenant.createdAt.addingTimeInterval(3600), attempts: 0),
            webhookToken: "benchmark-token", leaseOwner: "bench", leaseUntil: tenant.createdAt
        )
        return store
    }
}
