import Foundation

extension OnboardingService {
    /// Claims the work that is due and runs it; returns how many items ran. The background worker calls this in a
    /// loop; tests call it to step the queue once.
    @discardableResult
    public func runDueWork(limit: Int = 16) async -> Int {
        let now = clock.now()
        let items: [WorkItem]
        do {
            items = try await store.claimDueWork(now: now, limit: limit, leaseUntil: now.addingTimeInterval(settings.workLease))
        } catch {
            logger.error("claiming work failed", metadata: ["error": "\(String(describing: error))"])
            return 0
        }
        await withTaskGroup(of: Void.self) { group in
            for item in items {
                group.addTask { await self.run(item) }
            }
        }
        return items.count
    }

    func run(_ item: WorkItem) async {
        do {
            let tenant = try await tenant(id: item.tenantID)
            switch item.kind {
            case .submit:
                guard tenant.state == .pending else {
                    // A webhook or an operator moved the tenant on while this waited: just settle its work.
                    _ = try await check(tenant, source: .poll)
                    return
                }
                _ = try await submit(tenant, previousAttempts: item.attempts - 1, source: .poll)
            case .check:
                _ = try await check(tenant, source: .poll)
            case .webhook:
                try await processWebhook(item, tenant: tenant)
            }
        } catch {
            // The lease runs out and the item is claimed again: nothing is lost.
            logger.warning("work failed", metadata: ["tenant.id": "\(item.tenantID)", "work": "\(item.kind.rawValue)", "error": "\(error.code)"])
        }
    }
}
