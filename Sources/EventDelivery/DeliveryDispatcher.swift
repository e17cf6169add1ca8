import Foundation
import GatewayCore
import Logging
import Tracing

/// Delivers due events: claims them from the outbox, signs and posts each, and records the outcome. A tenant's
/// events go one after another in order; different tenants' go side by side, so one failing event holds up only
/// the later events of its own tenant in the same round, never anyone else's.
public final class DeliveryDispatcher: Sendable {
    let store: any DeliveryStore
    let signer: WebhookSigner
    let sender: EventSender
    let render: @Sendable (TenantEvent) throws -> Data
    let clock: any GatewayClock
    let random: any Randomness
    let logger: Logger
    let lease: TimeInterval = 60
    /// Hears every delivery's result, for metrics.
    let onResult: @Sendable (DeliveryResult) -> Void
    /// Seconds before each retry (`GATEWAY_EVENTS_RETRY_SCHEDULE`).
    let schedule: [TimeInterval]

    public init(
        store: any DeliveryStore, signer: WebhookSigner, sender: EventSender, render: @escaping @Sendable (TenantEvent) throws -> Data,
        clock: any GatewayClock, random: any Randomness, logger: Logger, schedule: [TimeInterval] = DeliverySchedule.delays,
        onResult: @escaping @Sendable (DeliveryResult) -> Void = { _ in }
    ) {
        self.schedule = schedule
        self.onResult = onResult
        self.store = store
        self.signer = signer
        self.sender = sender
        self.render = render
        self.clock = clock
        self.random = random
        self.logger = logger
    }

    /// One round: returns how many deliveries were attempted.
    @discardableResult
    public func runOnce(limit: Int = 64) async -> Int {
        let now = clock.now()
        let due: [PendingDelivery]
        do {
            due = try await store.claimDueDeliveries(now: now, limit: limit, leaseUntil: now.addingTimeInterval(lease))
        } catch {
            logger.error("claiming deliveries failed", metadata: ["error": "\(String(describing: error))"])
            return 0
        }
        let byTenant = Dictionary(grouping: due, by: \.tenantID).values.map { $0.sorted { $0.eventSeq < $1.eventSeq } }
        await withTaskGroup(of: Void.self) { group in
            for deliveries in byTenant {
                group.addTask {
                    var claimedUntil = deliveries.first?.claimedUntil ?? now
                    for (index, var delivery) in deliveries.enumerated() {
                        // One tenant's deliveries go one after another, and a slow endpoint may take longer than
                        // the claim: before each, the claims of those left are renewed. One no longer held (another
                        // replica took it after the claim ran out) is not sent by this one.
                        if index > 0 {
                            let rest = deliveries[index...].map(\.id)
                            let until = self.clock.now().addingTimeInterval(self.lease)
                            guard let held = try? await self.store.renewDeliveries(ids: rest, claimedUntil: claimedUntil, until: until) else { break }
                            claimedUntil = until
                            guard held.contains(delivery.id) else { continue }
                        }
                        delivery.claimedUntil = claimedUntil
                        // After the endpoint said 410, nothing more goes out; the rest go back to the queue at once
                        // rather than sitting out their lease.
                        guard await self.deliver(delivery) != .endpointGone else {
                            let rest = deliveries[(index + 1)...].map(\.id)
                            try? await self.store.releaseDeliveries(ids: rest, now: self.clock.now())
                            break
                        }
                    }
                }
            }
        }
        return due.count
    }

    func deliver(_ delivery: PendingDelivery) async -> DeliveryResult {
        let body: Data
        do {
            body = try render(delivery.event)
        } catch {
            logger.error("event could not be rendered", metadata: ["delivery.id": "\(delivery.id)"])
            return .failed
        }
        let sentAt = clock.now()
        let failures = delivery.attempts + 1
        // Each attempt is a span of its own, and the request carries it (`traceparent`) for the partner's tracing.
        let outcome = await withSpan("event delivery", context: .topLevel, ofKind: .producer) { span in
            span.attributes["event.id"] = delivery.event.id
            span.attributes["event.type"] = delivery.event.type.rawValue
            span.attributes["tenant.id"] = delivery.tenantID
            span.attributes["delivery.id"] = delivery.id
            span.attributes["delivery.attempt"] = failures
            var headers = signer.headers(id: delivery.event.id, timestamp: Int(sentAt.timeIntervalSince1970), body: body)
            if let traceParent = RequestScope.currentTraceParent { headers.append(("traceparent", traceParent)) }
            let outcome = await sender.send(body: body, headers: headers)
            if let status = outcome.statusCode { span.attributes["http.response.status_code"] = status }
            if !outcome.succeeded { span.setStatus(SpanStatus(code: .error, message: outcome.error ?? "not accepted")) }
            return outcome
        }
        let result: DeliveryResult
        if outcome.succeeded {
            result = .delivered
        } else if outcome.statusCode == 410 {
            result = .endpointGone
        } else if let next = DeliverySchedule.nextAttempt(after: failures, now: sentAt, retryAfter: outcome.retryAfter, unit: random.unit(), delays: schedule) {
            result = .retry(at: next)
        } else {
            result = .failed
        }
        let attempt = DeliveryAttempt(
            at: sentAt, statusCode: outcome.statusCode, durationMilliseconds: outcome.durationMilliseconds,
            error: outcome.error ?? (outcome.succeeded ? nil : outcome.statusCode.map { "answered \($0)" }), excerpt: outcome.excerpt
        )
        do {
            guard try await store.recordDeliveryAttempt(id: delivery.id, claimedUntil: delivery.claimedUntil, attempt: attempt, result: result) else {
                // Another holder has it now (it records its own attempt); this outcome is not written over it.
                logger.warning("delivery claim lost while sending; this attempt is not recorded", metadata: ["delivery.id": "\(delivery.id)"])
                return result
            }
            if result == .endpointGone {
                try await store.disableEventsEndpoint(at: sentAt, reason: "answered 410 Gone")
                logger.error("events endpoint answered 410 Gone: deliveries paused until it is enabled again")
            }
        } catch {
            // The lease runs out and the delivery is tried again: at least once, with the same webhook-id.
            logger.error("recording a delivery failed", metadata: ["delivery.id": "\(delivery.id)", "error": "\(String(describing: error))"])
        }
        onResult(result)
        if result != .delivered {
            logger.warning("event delivery failed", metadata: [
                "delivery.id": "\(delivery.id)", "tenant.id": "\(delivery.tenantID)", "attempt": "\(failures)",
                "status": "\(outcome.statusCode.map(String.init) ?? "-")", "error": "\(outcome.error ?? "-")",
            ])
        }
        return result
    }
}
