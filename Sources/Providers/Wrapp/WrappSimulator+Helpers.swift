import Foundation
import GatewayCore

/// Wrapp's sandbox test helpers (`/sandbox/test-helpers/wrapp/…`): complete a login, make a customer one who already
/// had an account, lapse a subscription. Each acts on the simulator exactly as the simulated Wrapp pages and API do.
extension WrappSimulator: ProviderSimulator {
    /// What the helpers answer of a customer; absent values are `null`, as the helpers' schema says.
    static func customer(_ user: User, webhookStatus: Int? = nil) -> SandboxHelperAnswer {
        .ok(.object([
            "partner_user_id": .string(user.partnerUserID), "wrapp_user_id": .string(user.wrappUserID), "api_key": .string(user.apiKey),
            "email": JSONValue(user.email.isEmpty ? nil : user.email), "pre_existing": .bool(user.existedBefore),
            "logged_in": .bool(user.loggedIn), "subscription_active": .bool(user.subscriptionActive),
            "webhook_status": JSONValue(webhookStatus),
            // Where this simulated Wrapp posts the customer's webhooks (the gateway gave it with the login call).
            "webhook_endpoint": JSONValue(user.webhookEndpoint),
        ]))
    }

    static let unknownCustomer = SandboxHelperAnswer.notFound(
        "The simulated Wrapp knows no customer with this partner_user_id: create its tenant first."
    )

    public nonisolated var sandboxHelpers: [SandboxHelper] {
        [
            SandboxHelper(.get, "customers/{partner_user_id}") { request in
                guard let user = await self.user(request["partner_user_id"]) else { return Self.unknownCustomer }
                return Self.customer(user)
            },
            SandboxHelper(.post, "customers/{partner_user_id}/complete-login") { request in
                guard let user = await self.user(request["partner_user_id"]) else { return Self.unknownCustomer }
                guard !user.email.isEmpty else { return .conflict("This customer has no Wrapp login yet: create its tenant first.") }
                let status = await self.completeOnboarding(user.partnerUserID)
                guard let done = await self.user(user.partnerUserID) else { return Self.unknownCustomer }
                return Self.customer(done, webhookStatus: status)
            },
            SandboxHelper(.post, "customers/{partner_user_id}/pre-existing") { request in
                let id = request["partner_user_id"]
                if let user = await self.user(id), user.loggedIn, !user.existedBefore {
                    return .conflict("This customer already logged in as a new Wrapp user.")
                }
                return Self.customer(await self.markPreExisting(id))
            },
            SandboxHelper(.post, "customers/{partner_user_id}/revoke-key") { request in
                guard let user = await self.user(request["partner_user_id"]) else { return Self.unknownCustomer }
                guard user.loggedIn else { return .conflict("This customer has not logged in at Wrapp yet: complete the login first.") }
                guard let rotated = await self.revokeKey(user.partnerUserID) else { return Self.unknownCustomer }
                return Self.customer(rotated)
            },
            SandboxHelper(.put, "customers/{partner_user_id}/subscription", takesBody: true) { request in
                guard case .object(let body)? = request.body else {
                    return .invalid([FieldError(field: "active", code: "required", message: "This field is required.")])
                }
                var errors: [FieldError] = []
                for key in body.keys.sorted() where key != "active" {
                    errors.append(FieldError(field: String(key.prefix(64)), code: "unknown_field", message: "This field is not accepted here."))
                }
                let active: Bool?
                switch body["active"] {
                case .bool(let value)?: active = value
                case nil, .null?: active = nil; errors.append(FieldError(field: "active", code: "required", message: "This field is required."))
                case _?: active = nil; errors.append(FieldError(field: "active", code: "invalid_type", message: "Must be true or false."))
                }
                guard errors.isEmpty, let active else { return .invalid(errors) }
                guard let user = await self.user(request["partner_user_id"]) else { return Self.unknownCustomer }
                guard user.loggedIn else { return .conflict("This customer has not logged in at Wrapp yet: complete the login first.") }
                await self.setSubscription(user.partnerUserID, active: active)
                guard let changed = await self.user(user.partnerUserID) else { return Self.unknownCustomer }
                return Self.customer(changed)
            },
        ]
    }
}
