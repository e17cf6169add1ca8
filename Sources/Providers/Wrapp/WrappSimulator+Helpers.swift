import Foundation
import GatewayCore

/// Wrapp's sandbox test helpers (`/sandbox/test-helpers/wrapp/…`): complete a login, make a customer one who already
/// had an account, lapse a subscription. Each acts on the simulator exactly as the simulated Wrapp pages and API do.
extension WrappSimulator: ProviderSimulator {
    struct Customer: Encodable {
        var partner_user_id: String
        var wrapp_user_id: String
        var api_key: String
        var email: String?
        var pre_existing: Bool
        var logged_in: Bool
        var subscription_active: Bool
        var webhook_status: Int?
        /// Where this simulated Wrapp posts the customer's webhooks (the gateway gave it with the login call).
        var webhook_endpoint: String?

        init(_ user: User, webhookStatus: Int? = nil) {
            partner_user_id = user.partnerUserID
            wrapp_user_id = user.wrappUserID
            api_key = user.apiKey
            email = user.email.isEmpty ? nil : user.email
            pre_existing = user.existedBefore
            logged_in = user.loggedIn
            subscription_active = user.subscriptionActive
            webhook_status = webhookStatus
            webhook_endpoint = user.webhookEndpoint
        }

        /// Absent values are `null`, as the helpers' schema says.
        func encode(to encoder: any Encoder) throws {
            enum Key: String, CodingKey {
                case partner_user_id, wrapp_user_id, api_key, email, pre_existing, logged_in, subscription_active, webhook_status, webhook_endpoint
            }
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(partner_user_id, forKey: .partner_user_id)
            try container.encode(wrapp_user_id, forKey: .wrapp_user_id)
            try container.encode(api_key, forKey: .api_key)
            try container.encode(email, forKey: .email)
            try container.encode(pre_existing, forKey: .pre_existing)
            try container.encode(logged_in, forKey: .logged_in)
            try container.encode(subscription_active, forKey: .subscription_active)
            try container.encode(webhook_status, forKey: .webhook_status)
            try container.encode(webhook_endpoint, forKey: .webhook_endpoint)
        }
    }

    static let unknownCustomer = SandboxHelperAnswer.notFound(
        "The simulated Wrapp knows no customer with this partner_user_id: create its tenant first."
    )

    public nonisolated var sandboxHelpers: [SandboxHelper] {
        [
            SandboxHelper(.get, "customers/{partner_user_id}") { request in
                guard let user = await self.user(request["partner_user_id"]) else { return Self.unknownCustomer }
                return .encoding(Customer(user))
            },
            SandboxHelper(.post, "customers/{partner_user_id}/complete-login") { request in
                guard let user = await self.user(request["partner_user_id"]) else { return Self.unknownCustomer }
                guard !user.email.isEmpty else { return .conflict("This customer has no Wrapp login yet: create its tenant first.") }
                let status = await self.completeOnboarding(user.partnerUserID)
                guard let done = await self.user(user.partnerUserID) else { return Self.unknownCustomer }
                return .encoding(Customer(done, webhookStatus: status))
            },
            SandboxHelper(.post, "customers/{partner_user_id}/pre-existing") { request in
                let id = request["partner_user_id"]
                if let user = await self.user(id), user.loggedIn, !user.existedBefore {
                    return .conflict("This customer already logged in as a new Wrapp user.")
                }
                return .encoding(Customer(await self.markPreExisting(id)))
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
                return .encoding(Customer(changed))
            },
        ]
    }
}
