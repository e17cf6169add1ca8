import Foundation
import GatewayCore
import Hummingbird

/// `/admin/tenants`, `/admin/stats`, `/admin/providers`, `/admin/audit`, `/admin/backup`: what an operator needs to
/// answer "why is this customer stuck?" without opening the database.
struct AdminTenantsController {
    let service: OnboardingService
    let operations: any OperationsStore
    let deliveries: any DeliveryStore
    let audit: any TenantStore
    let render: Renderer
    let clock: any GatewayClock
    let stuckAfter: TimeInterval
    let backupDirectory: String

    var endpoints: RouteCollection<GatewayRequestContext> {
        RouteCollection(context: GatewayRequestContext.self)
            .get("tenants", use: search)
            .get("tenants/:id", use: show)
            .post("tenants/:id/retry", use: retry)
            .post("tenants/:id/poll", use: poll)
            .post("tenants/:id/resubmit", use: resubmit)
            .delete("tenants/:id", use: offboard)
            .get("stats", use: stats)
            .get("providers", use: providers)
            .get("audit", use: auditLog)
            .post("backup", use: backup)
    }

    @Sendable func search(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let page = try await operations.searchTenants(
            q: try request.query("q"), state: try request.enumParameter("state", TenantState.self),
            provider: try request.providerParameter(service.registry), limit: try request.pageLimit(),
            before: try request.query("cursor").map { try Cursor.decode("t", $0) }
        )
        return try render.json(ListResource(data: page.items, next_cursor: page.next.map { Cursor.encode("t", $0) }))
    }

    struct TenantDetail: Encodable {
        struct Work: Encodable {
            var kind: String
            var run_at: Date
            var attempts: Int
            var last_error: Nullable<String>
        }

        var tenant: Tenant
        var events: [EventResource]
        var pending_work: [Work]
        var deliveries: [AdminDeliveriesController.DeliveryResource]
    }

    @Sendable func show(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let tenant = try await service.tenant(id: id)
        let events = try await service.events(tenantID: id, after: nil, limit: 100).items.map(EventResource.init)
        let work = try await operations.queued(tenantID: id).map {
            TenantDetail.Work(kind: $0.kind.rawValue, run_at: $0.runAt, attempts: $0.attempts, last_error: Nullable($0.lastError))
        }
        let sent = try await deliveries.deliveries(status: nil, tenantID: id, limit: 50, before: nil).items.map(AdminDeliveriesController.DeliveryResource.init)
        return try render.json(TenantDetail(tenant: tenant, events: events, pending_work: work, deliveries: sent))
    }

    @Sendable func retry(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try render.outcome(try await retry(context.parameters.require("id"), by: context.actor))
    }

    @Sendable func poll(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try render.outcome(try await poll(context.parameters.require("id"), by: context.actor))
    }

    /// Submits a tenant that waits on its customer again: for an approval that was never asked or got lost.
    @Sendable func resubmit(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try render.outcome(try await resubmit(context.parameters.require("id"), by: context.actor))
    }

    @Sendable func offboard(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try render.json(try await service.offboard(tenantID: context.parameters.require("id"), source: .admin, actor: context.actor))
    }

    struct StatsResource: Encodable {
        var tenants: [String: [String: Int]]
        var queued_work: [String: Int]
        var oldest_due_seconds: Nullable<Double>
        var stuck: Stuck
        var deliveries: Deliveries

        struct Stuck: Encodable {
            var after_seconds: Double
            var count: Int
            var sample: [String]
        }

        struct Deliveries: Encodable {
            var pending: Int
            var failed: Int
            var oldest_pending_seconds: Nullable<Double>
        }
    }

    @Sendable func stats(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let now = clock.now()
        let stats = try await operations.operationsStats(now: now, stuckAfter: stuckAfter)
        let delivery = try await deliveries.deliveryStats(now: now)
        return try Response.json(StatsResource(
            tenants: stats.tenants, queued_work: stats.queuedWork, oldest_due_seconds: Nullable(stats.oldestDueSeconds),
            stuck: .init(after_seconds: stuckAfter, count: stats.stuckCount, sample: stats.stuckSample),
            deliveries: .init(pending: delivery.pending, failed: delivery.failed, oldest_pending_seconds: Nullable(delivery.oldestPendingAge))
        ))
    }

    struct ProviderResource: Encodable {
        struct RecentError: Encodable {
            var at: Date
            var operation: String
            var reason: String
        }

        var provider: ProviderKind
        var configured: Bool
        var circuit: String
        var consecutive_failures: Int
        var open_until: Nullable<Date>
        var recent_errors: [RecentError]
    }

    @Sendable func providers(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        var result: [ProviderResource] = []
        for kind in service.registry.kinds {
            let snapshot = await service.health[kind]?.snapshot(now: clock.now())
            result.append(ProviderResource(
                provider: kind, configured: service.configuredProviders.contains(kind), circuit: snapshot?.state.rawValue ?? "closed",
                consecutive_failures: snapshot?.consecutiveFailures ?? 0, open_until: Nullable(snapshot?.openUntil),
                recent_errors: (snapshot?.recentErrors ?? []).reversed().map { .init(at: $0.at, operation: $0.operation, reason: $0.reason) }
            ))
        }
        return try Response.json(["data": result])
    }

    struct AuditResource: Encodable {
        var id: Int64
        var at: Date
        var actor: String
        var action: String
        var tenant_id: Nullable<String>
        var details: [String: String]
    }

    @Sendable func auditLog(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let before = try request.query("cursor").map { Int64(try Cursor.decode("a", $0)) ?? 0 }
        let page = try await operations.audit(tenantID: try request.query("tenant_id"), limit: try request.pageLimit(), before: before)
        let data = page.items.map {
            AuditResource(id: $0.id, at: $0.entry.at, actor: $0.entry.actor, action: $0.entry.action, tenant_id: Nullable($0.entry.tenantID), details: $0.entry.details)
        }
        return try Response.json(ListResource(data: data, next_cursor: page.next.map { Cursor.encode("a", $0) }))
    }

    struct BackupResource: Encodable {
        var path: String
        var bytes: Int
        var created_at: Date
    }

    @Sendable func backup(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let now = clock.now()
        if let advice = operations.backupAdvice {
            // PostgreSQL: the operator's pg_dump makes the backup; a file on one replica's disk would be a partial answer.
            throw Problem(.notImplemented, code: "backup_not_supported", detail: advice)
        }
        try FileManager.default.createDirectory(atPath: backupDirectory, withIntermediateDirectories: true)
        let stamp = now.formatted(Date.ISO8601FormatStyle().year().month().day().time(includingFractionalSeconds: false))
            .replacingOccurrences(of: ":", with: "")
        let path = URL(fileURLWithPath: backupDirectory).appendingPathComponent("gateway-\(stamp)-\(UUID().uuidString.prefix(6)).sqlite").path
        try await operations.backup(to: path)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        try await audit.audit(AuditEntry(at: now, actor: context.actor, action: "database.backup", tenantID: nil, details: ["file": (path as NSString).lastPathComponent]))
        return try Response.json(BackupResource(path: path, bytes: bytes, created_at: now), status: .created)
    }

    // The operator's actions on one tenant, for the API and the console alike: each audited with who did it.

    func retry(_ id: String, by actor: Actor) async throws -> ProviderRequestOutcome {
        let outcome = try await service.retry(tenantID: id, source: .admin)
        try await record("tenant.retried", id, actor)
        return outcome
    }

    func poll(_ id: String, by actor: Actor) async throws -> ProviderRequestOutcome {
        let outcome = try await service.refresh(tenantID: id, source: .admin)
        try await record("tenant.polled", id, actor)
        return outcome
    }

    func resubmit(_ id: String, by actor: Actor) async throws -> ProviderRequestOutcome {
        let outcome = try await service.resubmit(tenantID: id, source: .admin)
        try await record("tenant.resubmitted", id, actor)
        return outcome
    }

    private func record(_ action: String, _ tenantID: String, _ actor: Actor) async throws {
        try await audit.audit(AuditEntry(at: clock.now(), actor: actor, action: action, tenantID: tenantID))
    }
}
