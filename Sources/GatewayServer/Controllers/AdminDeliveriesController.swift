import Foundation
import GatewayCore
import Hummingbird

/// `/admin/deliveries` and `/admin/events-endpoint`: what was sent to the partner app, and sending it again.
struct AdminDeliveriesController {
    let store: any DeliveryStore
    let audit: any TenantStore
    let clock: any GatewayClock
    let eventsURL: String?

    var endpoints: RouteCollection<GatewayRequestContext> {
        RouteCollection(context: GatewayRequestContext.self)
            .get("deliveries", use: list)
            .get("deliveries/:id", use: show)
            .post("deliveries/:id/redeliver", use: redeliver)
            .post("deliveries/redeliver-failed", use: redeliverFailed)
            .get("events-endpoint", use: endpoint)
            .post("events-endpoint/enable", use: enable)
    }

    struct AttemptResource: Encodable {
        var at: Date
        var status_code: Nullable<Int>
        var duration_ms: Double
        var error: Nullable<String>
        var excerpt: Nullable<String>
    }

    struct DeliveryResource: Encodable {
        var id: String
        var event_id: String
        var event_type: TenantEvent.Kind
        var tenant_id: String
        var status: String
        var attempts: [AttemptResource]
        var next_attempt_at: Nullable<Date>
        var created_at: Date
        var finished_at: Nullable<Date>

        init(_ record: DeliveryRecord) {
            id = record.id
            event_id = record.eventID
            event_type = record.eventType
            tenant_id = record.tenantID
            status = record.status.rawValue
            attempts = record.attempts.map {
                AttemptResource(
                    at: $0.at, status_code: Nullable($0.statusCode), duration_ms: $0.durationMilliseconds, error: Nullable($0.error),
                    excerpt: Nullable($0.excerpt)
                )
            }
            next_attempt_at = Nullable(record.status == .pending ? record.nextAttemptAt : nil)
            created_at = record.createdAt
            finished_at = Nullable(record.finishedAt)
        }
    }

    @Sendable func list(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let page = try await store.deliveries(
            status: try request.enumParameter("status", DeliveryRecord.Status.self), tenantID: try request.query("tenant_id"),
            limit: try request.pageLimit(), before: try request.query("cursor").map { try Cursor.decode("d", $0) }
        )
        return try Response.json(ListResource(data: page.items.map(DeliveryResource.init), next_cursor: page.next.map { Cursor.encode("d", $0) }))
    }

    @Sendable func show(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard let record = try await store.delivery(id: context.parameters.require("id")) else { throw Self.notFound }
        return try Response.json(DeliveryResource(record))
    }

    @Sendable func redeliver(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let record = try await redeliver(context.parameters.require("id"), by: context.actor)
        return try Response.json(DeliveryResource(record), status: .accepted)
    }

    /// Queues a delivered or failed delivery again (the API and the console).
    func redeliver(_ id: String, by actor: Actor) async throws -> DeliveryRecord {
        guard try await store.redeliver(id: id, now: clock.now()) else {
            guard try await store.delivery(id: id) != nil else { throw Self.notFound }
            throw Problem(.conflict, code: "delivery_pending", detail: "This delivery is still pending; it will be tried again on its own.")
        }
        try await audit.audit(AuditEntry(at: clock.now(), actor: actor, action: "delivery.redelivered", tenantID: nil, details: ["delivery": id]))
        guard let record = try await store.delivery(id: id) else { throw Self.notFound }
        return record
    }

    /// Queues every delivery that failed since `since` again (the API and the console).
    func redeliverFailed(since: Date, by actor: Actor) async throws -> Int {
        let count = try await store.redeliverFailed(since: since, now: clock.now())
        try await audit.audit(AuditEntry(at: clock.now(), actor: actor, action: "delivery.redelivered_failed", tenantID: nil, details: ["count": "\(count)"]))
        return count
    }

    @Sendable func redeliverFailed(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let reader = FieldReader(try await JSONBody.read(request))
        reader.allowOnly(["since"])
        let sinceText = reader.string("since", required: true)
        let since = sinceText.flatMap(strictTimestamp)
        if sinceText != nil, since == nil { reader.fail("since", "invalid", "An ISO 8601 time, like 2026-11-21T10:00:00Z.") }
        try reader.throwIfInvalid()
        let count = try await redeliverFailed(since: since ?? .distantPast, by: context.actor)
        return try Response.json(["requeued": count], status: .accepted)
    }

    struct EndpointResource: Encodable {
        var configured: Bool
        var enabled: Bool
        var disabled_at: Nullable<Date>
        var pending: Int
        var failed: Int
        var delivered: Int
        var oldest_pending_seconds: Nullable<Double>
    }

    @Sendable func endpoint(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try Response.json(try await endpointState())
    }

    func endpointState() async throws -> EndpointResource {
        let stats = try await store.deliveryStats(now: clock.now())
        return EndpointResource(
            configured: eventsURL != nil, enabled: stats.endpointDisabledAt == nil, disabled_at: Nullable(stats.endpointDisabledAt),
            pending: stats.pending, failed: stats.failed, delivered: stats.delivered, oldest_pending_seconds: Nullable(stats.oldestPendingAge)
        )
    }

    @Sendable func enable(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let changed = try await store.enableEventsEndpoint()
        if changed {
            try await audit.audit(AuditEntry(at: clock.now(), actor: context.actor, action: "events_endpoint.enabled", tenantID: nil))
        }
        return try await endpoint(request, context: context)
    }

    static let notFound = Problem(.notFound, code: "delivery_not_found", detail: "No delivery has this id.")
}
