import Foundation
import Tracing

extension OnboardingService {
    /// Claims the work that is due and runs it all; returns how many items ran. Tests call it to step the queue
    /// once; the background worker keeps items flowing with `claimDueWork` and `run` instead.
    @discardableResult
    public func runDueWork(limit: Int = 16) async -> Int {
        let items = await claimDueWork(limit: limit)
        await withTaskGroup(of: Void.self) { group in
            for item in items {
                group.addTask { await self.run(item) }
            }
        }
        return items.count
    }

    /// Claims up to `limit` due items, each with its tenant's lease (one item per tenant at a time). `fair`: no more
    /// items per provider than it has free call slots, so one provider's slow calls never hold the other's work, and
    /// no claimed item waits in line (holding its tenant) for a slot.
    public func claimDueWork(limit: Int, fair: Bool = false) async -> [WorkItem] {
        var quotas: [ProviderKind: Int]?
        if fair {
            var free: [ProviderKind: Int] = [:]
            for (kind, gate) in gates { free[kind] = await gate.freeSlots() }
            quotas = free
        }
        let now = clock.now()
        do {
            return try await store.claimDueWork(
                now: now, limit: limit, leaseUntil: now.addingTimeInterval(settings.workLease), owner: owner, quotas: quotas
            )
        } catch {
            logger.error("claiming work failed", metadata: ["error": "\(String(describing: error))"])
            return []
        }
    }

    /// Runs one claimed item under its lease, then lets the lease go. Its log lines carry the id of the request
    /// that queued it, and the tenant's id; its span is a child of that request's (a trace of its own when none).
    public func run(_ item: WorkItem) async {
        await withSpan("job \(item.kind.rawValue)", context: RequestScope.context(continuing: item.traceParent), ofKind: .consumer) { span in
            span.attributes["tenant.id"] = item.tenantID
            span.attributes["job.kind"] = item.kind.rawValue
            span.attributes["job.attempt"] = item.attempts
            if let requestID = item.requestID { span.attributes["request.id"] = requestID }
            await RequestScope.$requestID.withValue(item.requestID) {
                await RequestScope.$traceParent.withValue(item.traceParent) {
                    await RequestScope.$attempt.withValue(item.attempts) { await runScoped(item) }
                }
            }
        }
    }

    private func runScoped(_ item: WorkItem) async {
        do {
            let tenant = try await tenant(id: item.tenantID)
            switch item.kind {
            case .submit, .check:
                // A webhook or an operator may have moved the tenant on while this waited: do what its state needs.
                _ = try await step(tenant.id, lease: item.lease, source: .poll)
            case .webhook:
                try await processWebhook(item, tenant: tenant)
            }
        } catch .tenantChanged {
            logger.info("work discarded: the tenant changed meanwhile", metadata: ["tenant.id": "\(item.tenantID)", "work": "\(item.kind.rawValue)"])
        } catch {
            // The item stays queued (due when its lease runs out) and is claimed again: nothing is lost.
            logger.warning("work failed", metadata: ["tenant.id": "\(item.tenantID)", "work": "\(item.kind.rawValue)", "error": "\(error.code)"])
        }
        await release(item.lease)
    }
}
