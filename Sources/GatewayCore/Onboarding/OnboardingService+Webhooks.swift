import Foundation

/// How a webhook delivery was taken in.
public enum WebhookReceipt: Sendable, Equatable {
    case stored
    case duplicate
}

extension OnboardingService {
    /// Takes in a provider webhook: finds the tenant by its URL token, checks the payload is the provider's and
    /// about this tenant, and stores it durably with its processing queued. Nothing else happens before `200`.
    public func receiveWebhook(provider kind: ProviderKind, token: String, body: Data, from ip: String? = nil) async throws(OnboardingError) -> WebhookReceipt {
        guard let recipient = try await storage({ try await store.webhookRecipient(forToken: token) }), recipient.provider == kind else {
            throw .webhookTokenUnknown
        }
        let tenantID = recipient.tenantID
        guard let interpreter = providers[kind] as? any WebhookInterpreting, let notice = interpreter.interpretWebhook(body) else {
            throw .webhookMalformed
        }
        guard notice.externalID == recipient.externalID else {
            let entry = AuditEntry(
                at: clock.now(), actor: Actor(name: "webhook:\(kind.rawValue)", ip: ip), action: "webhook.rejected", tenantID: tenantID,
                details: ["reason": "partner_user_id does not match the tenant"]
            )
            try await storage { try await store.audit(entry) }
            logger.warning("webhook rejected", metadata: ["tenant.id": "\(tenantID)", "reason": "partner_user_id mismatch"])
            throw .webhookRejected
        }
        let bearsCredentials = notice.credentials != nil
        let isNew = try await storage {
            try await store.receiveWebhook(tenantID: tenantID, payload: body, at: clock.now(), bearsCredentials: bearsCredentials)
        }
        logger.info("webhook received", metadata: ["tenant.id": "\(tenantID)", "duplicate": "\(!isNew)"])
        return isNew ? .stored : .duplicate
    }

    /// Processes a stored webhook under the tenant's lease. A key it brings is kept only once the provider proves
    /// it is this customer's (Wrapp: `/login` with the email Wrapp reports for the tenant's own `partner_user_id`),
    /// and never replaces credentials the tenant has. Only an explicit refusal discards the key: when the provider
    /// cannot tell, the webhook stays queued and is verified again later, because Wrapp sends the key only once.
    /// How often a webhook's key is tried before it is dropped as unverifiable (backoff from 5 s to the retry cap).
    static let webhookVerificationAttempts = 30

    func processWebhook(_ item: WorkItem, tenant: Tenant) async throws(OnboardingError) {
        guard let inboxID = item.inboxID else { return }
        let finish = { (outcome: String) async throws(OnboardingError) in
            try await self.storage { try await self.store.finishWebhook(inboxID: inboxID, workID: item.id, outcome: outcome, at: self.clock.now()) }
        }
        guard tenant.state != .offboarded,
            let body = try await storage({ try await store.webhookPayload(inboxID: inboxID) }),
            let interpreter = providers[tenant.provider] as? any WebhookInterpreting,
            let notice = interpreter.interpretWebhook(body)
        else { return try await finish("ignored") }

        let adapter = try provider(for: tenant.provider)
        var view = try await providerView(of: tenant)
        var credentials: ProviderCredentials?
        if let offered = notice.credentials {
            if tenant.credentialsAvailable, !tenant.credentialsRevoked {
                // An unsigned payload never replaces a key the tenant has; only PUT …/credentials does. Credentials the
                // provider refused are no key at all: a verified one (the customer re-linked) may take their place.
                try await settleUnkept(tenant, action: "webhook.credentials_ignored", reason: "the tenant already has credentials")
                return try await finish("credentials_ignored")
            }
            switch try await verify(item.lease, tenant.provider, { [view] in await adapter.verify(offered, for: view) }) {
            case .valid:
                credentials = offered
                view.hasCredentials = true
            case .invalid:
                try await settleUnkept(tenant, action: "webhook.credentials_rejected", reason: nil)
                return try await finish("credentials_rejected")
            case .customerUnknown where item.attempts >= Self.webhookVerificationAttempts:
                // Wrapp sends its webhook once the user exists. A key for a customer Wrapp still does not know after
                // about a day of tries is not Wrapp's (anyone who learns the URL can post), and is not kept for ever.
                // Transient failures never count here: they leave the key queued however long they last.
                try await settleUnkept(tenant, action: "webhook.unverifiable", reason: "the provider knows no user for this customer")
                return try await finish("unverifiable")
            case .customerUnknown:
                try await keepForLater(item, reason: "the provider knows no user for this customer yet", retryAfter: nil, tenantID: tenant.id)
                return
            case .unavailable(let reason, let retryAfter):
                try await keepForLater(item, reason: reason, retryAfter: retryAfter, tenantID: tenant.id)
                return
            }
        }
        let askedAt = clock.now()
        // The tenant's other queued webhooks that bring no key only say "ask again": the check asked now answers
        // them as well, so they are finished with this one. A burst (or a flood of one URL) costs one provider call,
        // not one per webhook.
        let covered = notice.credentials == nil ? await coveredWebhooks(item, tenantID: tenant.id, receivedBy: askedAt) : []
        var answer = try await status(item.lease, of: tenant, view: view, adapter: adapter)
        answer.credentials = credentials
        try await apply(answer, lease: item.lease, source: .webhook, at: askedAt, origin: .webhook)
        // A check that did not reach the provider (unavailable, held back by the circuit or the rate) answers
        // nothing: the others wait for their own turn.
        guard !covered.isEmpty, !answer.finding.isUnavailable else { return try await finish(credentials == nil ? "processed" : "credentials_accepted") }
        let webhooks = [(inboxID: inboxID, workID: item.id)] + covered.map { (inboxID: $0.inboxID, workID: $0.workID) }
        do {
            try await store.finishWebhooks(webhooks, outcome: "processed", at: clock.now(), lease: item.lease)
            logger.info("queued webhooks answered by one check", metadata: [
                "tenant.id": "\(tenant.id)", "webhooks": "\(webhooks.count)", "inbox.ids": "\(webhooks.map { String($0.inboxID) }.joined(separator: ","))",
            ])
        } catch is LeaseLost {
            throw .tenantChanged
        } catch {
            throw storageError(error)
        }
    }

    /// How many queued webhooks one check may finish besides its own (one transaction, one log line).
    static let webhooksCoveredPerCheck = 64

    /// The tenant's other queued webhooks, received by `receivedBy`, that bring no key (intake read each payload,
    /// checked it names this customer, and recorded whether it brings a key: a key is verified on its own). Best
    /// effort: when they cannot be read, each is processed on its own later.
    private func coveredWebhooks(_ item: WorkItem, tenantID: String, receivedBy: Date) async -> [QueuedWebhook] {
        do {
            return try await store.queuedWebhooks(tenantID: tenantID, excluding: item.id, receivedBy: receivedBy, limit: Self.webhooksCoveredPerCheck)
        } catch {
            logger.warning("queued webhooks could not be read; each is processed on its own", metadata: ["tenant.id": "\(tenantID)"])
            return []
        }
    }

    /// A webhook's key that is not kept: audited (never the key itself) and logged.
    private func settleUnkept(_ tenant: Tenant, action: String, reason: String?) async throws(OnboardingError) {
        let details = reason.map { ["reason": $0] } ?? [:]
        let entry = AuditEntry(at: clock.now(), actor: "webhook:\(tenant.provider.rawValue)", action: action, tenantID: tenant.id, details: details)
        try await storage { try await store.audit(entry) }
        logger.warning("webhook credentials not kept", metadata: ["tenant.id": "\(tenant.id)", "action": "\(action)"])
    }

    /// The key could not be verified now: the webhook stays queued, tried again with backoff.
    private func keepForLater(_ item: WorkItem, reason: String, retryAfter: TimeInterval?, tenantID: String) async throws(OnboardingError) {
        let delay = max(settings.schedule.delay(for: .submit(retryAfter: retryAfter), attempts: item.attempts, unit: random.unit()) ?? 60, 1)
        logger.info("webhook credentials not verifiable yet; kept for later", metadata: ["tenant.id": "\(tenantID)", "reason": "\(reason)"])
        try await storage { try await store.reschedule(workID: item.id, runAt: clock.now().addingTimeInterval(delay), lastError: reason) }
    }
}
