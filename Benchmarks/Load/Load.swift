import Foundation
import GatewayCore
import GatewayServer
import GatewayStorage
import Providers

/// `bench-load DIR N`: makes a sandbox data directory holding N tenants, written through the gateway's own store
/// (the same inserts, updates, sealing and events the service makes), for `scripts/bench.py`'s large-database reads.
///
/// The mix: Wrapp customers created (`pending`), sent to log in (`action_required`) and, two in three, `active` with
/// credentials; MagniFinance companies registered and `active` with access tokens at once. Every change is one of
/// the store's own transactions with its events, as in production. Prints one JSON line: tenants, events, the
/// database's bytes (after a checkpoint) and a sample of ids for the reads.
@main
struct Load {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, let count = Int(arguments[2]), count > 0 else {
            FileHandle.standardError.write(Data("usage: bench-load DATA_DIR TENANTS\n".utf8))
            exit(64)
        }
        let config = try Gateway.prepare(try GatewayConfig.load(environment: ["GATEWAY_DATA_DIR": arguments[1]], sandbox: true))
        let store = try SQLiteStore(
            path: config.databasePath, box: SecretBox(keys: config.encryptionKeys), migrations: try Migrations(folder: Migrations.locate())
        )
        try await store.migrate()

        let ids = ULIDGenerator()
        let started = Date()
        // 64 tenants in flight at once, as 64 partner requests would be: the store's group commit puts their writes
        // in shared transactions. Each tenant's own steps still run in order, each its own committed write.
        let lanes = 64
        let sampleEvery = max(1, count / 10_000)
        let (events, sample) = try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    var events = 0
                    var sample: [String] = []
                    for index in stride(from: lane, to: count, by: lanes) {
                        let (made, id) = try await loadOne(index, of: count, store: store, ids: ids, now: started)
                        events += made
                        if index % sampleEvery == 0 { sample.append(id) }
                        if index > 0, index % 100_000 == 0 {
                            FileHandle.standardError.write(Data("\(index) tenants, \(Int(Double(index) / Date().timeIntervalSince(started)))/s\n".utf8))
                        }
                    }
                    return (events, sample)
                }
            }
            var events = 0
            var sample: [String] = []
            for try await (made, ids) in group {
                events += made
                sample += ids
            }
            return (events, sample)
        }
        try await store.checkpoint()
        let files = try FileManager.default.contentsOfDirectory(atPath: arguments[1]).filter { $0.hasPrefix("gateway.sqlite") }
        let bytes = try files.reduce(0) { total, name in
            total + ((try FileManager.default.attributesOfItem(atPath: arguments[1] + "/" + name)[.size] as? Int) ?? 0)
        }
        let report: [String: Any] = ["tenants": count, "events": events, "bytes": bytes, "seconds": Date().timeIntervalSince(started), "sample_ids": sample]
        print(String(decoding: try JSONSerialization.data(withJSONObject: report), as: UTF8.self))
    }

    /// One tenant's history, step by step as the service writes it; the events written and the tenant's id.
    static func loadOne(_ index: Int, of count: Int, store: SQLiteStore, ids: ULIDGenerator, now started: Date) async throws -> (Int, String) {
        var events = 0
        // Spread over the last 30 days, so the ids (ULIDs) and ages look like a real history.
        let at = started.addingTimeInterval(-30 * 86_400 * Double(count - index) / Double(count))
        let provider: ProviderKind = index % 3 == 2 ? .magnifinance : .wrapp
        var tenant = Tenant(
            id: ids.make(prefix: "ten", at: at), provider: provider, externalID: "load-\(index)", state: .pending,
            profile: profile(provider, index), metadata: ["crm_id": "\(index)"], createdAt: at, updatedAt: at, stateChangedAt: at
        )
        let created = TenantEvent(id: ids.make(prefix: "evt", at: at), tenantID: tenant.id, type: .created, createdAt: at, previousState: nil, source: .api, tenant: tenant)
        let leaseUntil = at.addingTimeInterval(70)
        guard case .inserted(let lease) = try await store.insert(
            tenant, events: [created], work: ScheduledWork(kind: .submit, runAt: at, attempts: 1, leasedUntil: leaseUntil),
            webhookToken: provider == .wrapp ? "load-token-\(index)-\(UUID().uuidString)" : nil, leaseOwner: "bench-load", leaseUntil: leaseUntil
        ) else { return (0, tenant.id) }
        events += 1
        if provider == .wrapp {
            tenant = try await step(store, tenant, to: .actionRequired, at: at.addingTimeInterval(1), ids: ids, lease: lease,
                                    nextAction: NextAction(type: .redirectToURL, url: "https://wrapp.example/login/\(index)"),
                                    work: ScheduledWork(kind: .check, runAt: at.addingTimeInterval(301), attempts: 0))
            events += 1
        }
        if provider == .magnifinance || index % 3 != 1 {
            let credentials: ProviderCredentials = provider == .wrapp
                ? .wrapp(wrappUserID: "\(100_000 + index)", apiKey: "load-key-\(UUID().uuidString)")
                : .magnifinance(accessTokens: [MagniFinanceAccessToken(token: "load-\(UUID().uuidString)", description: "Exemplo")])
            tenant = try await step(store, tenant, to: .active, at: at.addingTimeInterval(60), ids: ids, lease: lease, credentials: credentials,
                                    // Every active tenant's credentials are re-checked daily (issue 22), whatever its provider.
                                    work: ScheduledWork(kind: .check, runAt: at.addingTimeInterval(86_460), attempts: 0))
            events += 2
        }
        try await store.releaseLease(lease)
        return (events, tenant.id)
    }

    static func profile(_ provider: ProviderKind, _ index: Int) -> Profile {
        if provider == .wrapp {
            Profile(email: "customer\(index)@example.com", phone: "+30210\(String(format: "%07d", index % 10_000_000))")
        } else {
            Profile(
                email: "empresa\(index)@example.pt", contactName: "Ana Sousa",
                company: Company(taxID: String(format: "5%08d", index % 100_000_000), legalName: "Empresa \(index) Lda", postCode: "1000-001", country: "PT")
            )
        }
    }

    /// One state change as the service commits it: the tenant, its events, credentials and next work, fenced by the lease.
    static func step(
        _ store: SQLiteStore, _ tenant: Tenant, to state: TenantState, at: Date, ids: ULIDGenerator, lease: TenantLease,
        nextAction: NextAction? = nil, credentials: ProviderCredentials? = nil, work: ScheduledWork?
    ) async throws -> Tenant {
        var next = tenant
        next.state = state
        next.nextAction = nextAction
        next.updatedAt = at
        next.stateChangedAt = at
        next.evidenceAt = at
        var events = [TenantEvent(id: ids.make(prefix: "evt", at: at), tenantID: tenant.id, type: .stateChanged, createdAt: at, previousState: tenant.state, source: .webhook, tenant: next)]
        if credentials != nil {
            next.credentialsAvailable = true
            events[0].tenant = next
            events.append(TenantEvent(id: ids.make(prefix: "evt", at: at), tenantID: tenant.id, type: .credentialsAvailable, createdAt: at, previousState: state, source: .webhook, tenant: next))
        }
        var update = TenantUpdate(tenant: next, events: events, credentials: credentials, work: work, writesTenant: true)
        update.clearsSubmission = true
        let change = update
        let committed = try await store.update(tenantID: tenant.id, fence: lease, voids: false) { _ in change }
        return committed ?? next
    }
}
