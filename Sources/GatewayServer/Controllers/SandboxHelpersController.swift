import Foundation
import GatewayCore
import Hummingbird
import Providers

/// `/sandbox/test-helpers/…` (sandbox mode only): what the customer and the provider would do, for the partner's own
/// integration tests — complete a Wrapp login, make a Wrapp customer one who already had an account, lapse a
/// subscription, make a MagniFinance company an existing client and approve it, inject provider faults. Each acts on
/// the in-process simulators exactly as the simulated provider pages and APIs do; nothing here touches the gateway's
/// own records, which learn of every change the way they would from the real provider.
struct SandboxHelpersController {
    let wrapp: WrappSimulator
    let magniFinance: MagniFinanceSimulator

    var endpoints: RouteCollection<GatewayRequestContext> {
        RouteCollection(context: GatewayRequestContext.self)
            .get("wrapp/customers/:partner_user_id", use: wrappCustomer)
            .post("wrapp/customers/:partner_user_id/complete-login", use: completeWrappLogin)
            .post("wrapp/customers/:partner_user_id/pre-existing", use: markPreExisting)
            .put("wrapp/customers/:partner_user_id/subscription", use: setSubscription)
            .get("magnifinance/companies/:tax_id", use: magniFinanceCompany)
            .post("magnifinance/companies/:tax_id/existing-client", use: markExistingClient)
            .post("magnifinance/companies/:tax_id/approve", use: approve)
            .post(":provider/faults", use: injectFault)
            .delete(":provider/faults", use: clearFaults)
    }

    // MARK: - Wrapp

    struct WrappCustomer: Encodable {
        var partner_user_id: String
        var wrapp_user_id: String
        var api_key: String
        var email: Nullable<String>
        var pre_existing: Bool
        var logged_in: Bool
        var subscription_active: Bool
        var webhook_status: Nullable<Int>
        /// Where this simulated Wrapp posts the customer's webhooks (the gateway gave it with the login call).
        var webhook_endpoint: Nullable<String>

        init(_ user: WrappSimulator.User, webhookStatus: Int? = nil) {
            partner_user_id = user.partnerUserID
            wrapp_user_id = user.wrappUserID
            api_key = user.apiKey
            email = Nullable(user.email.isEmpty ? nil : user.email)
            pre_existing = user.existedBefore
            logged_in = user.loggedIn
            subscription_active = user.subscriptionActive
            webhook_status = Nullable(webhookStatus)
            webhook_endpoint = Nullable(user.webhookEndpoint)
        }
    }

    @Sendable func wrappCustomer(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try Response.json(WrappCustomer(try await knownWrappUser(context)))
    }

    @Sendable func completeWrappLogin(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let user = try await knownWrappUser(context)
        guard !user.email.isEmpty else {
            throw Problem(.conflict, code: "invalid_state", detail: "This customer has no Wrapp login yet: create its tenant first.")
        }
        let status = await wrapp.completeOnboarding(user.partnerUserID)
        guard let done = await wrapp.user(user.partnerUserID) else { throw Self.unknownCustomer }
        return try Response.json(WrappCustomer(done, webhookStatus: status))
    }

    @Sendable func markPreExisting(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let id = try context.parameters.require("partner_user_id")
        if let user = await wrapp.user(id), user.loggedIn, !user.existedBefore {
            throw Problem(.conflict, code: "invalid_state", detail: "This customer already logged in as a new Wrapp user.")
        }
        return try Response.json(WrappCustomer(await wrapp.markPreExisting(id)))
    }

    @Sendable func setSubscription(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let reader = FieldReader(try await JSONBody.read(request, limit: 4096))
        reader.allowOnly(["active"])
        let active = reader.boolean("active", required: true)
        try reader.throwIfInvalid()
        let user = try await knownWrappUser(context)
        guard user.loggedIn else {
            throw Problem(.conflict, code: "invalid_state", detail: "This customer has not logged in at Wrapp yet: complete the login first.")
        }
        await wrapp.setSubscription(user.partnerUserID, active: active ?? false)
        guard let changed = await wrapp.user(user.partnerUserID) else { throw Self.unknownCustomer }
        return try Response.json(WrappCustomer(changed))
    }

    private func knownWrappUser(_ context: GatewayRequestContext) async throws -> WrappSimulator.User {
        guard let user = await wrapp.user(try context.parameters.require("partner_user_id")) else { throw Self.unknownCustomer }
        return user
    }

    static let unknownCustomer = Problem(
        .notFound, code: "not_found", detail: "The simulated Wrapp knows no customer with this partner_user_id: create its tenant first."
    )

    // MARK: - MagniFinance

    struct MagniFinanceCompany: Encodable {
        var tax_id: String
        var existing_client: Bool
        var partnership: String
        var add_partner_calls: Int

        init(_ company: MagniFinanceSimulator.Company) {
            tax_id = company.taxID
            existing_client = company.existingClient
            partnership = company.partnership.rawValue
            add_partner_calls = company.addPartnerCalls
        }
    }

    @Sendable func magniFinanceCompany(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try Response.json(MagniFinanceCompany(await magniFinance.company(try taxID(context))))
    }

    @Sendable func markExistingClient(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let taxID = try taxID(context)
        guard await magniFinance.company(taxID).partnership == .none else {
            throw Problem(.conflict, code: "invalid_state", detail: "The partnership was already asked for: mark the company before creating its tenant.")
        }
        await magniFinance.markExistingClient(taxID)
        return try Response.json(MagniFinanceCompany(await magniFinance.company(taxID)))
    }

    @Sendable func approve(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let taxID = try taxID(context)
        guard await magniFinance.approve(taxID) else {
            throw Problem(.notFound, code: "not_found", detail: "The simulated MagniFinance has no partnership request for this tax id.")
        }
        return try Response.json(MagniFinanceCompany(await magniFinance.company(taxID)))
    }

    private func taxID(_ context: GatewayRequestContext) throws -> String {
        let taxID = try context.parameters.require("tax_id")
        guard (1...20).contains(taxID.count), taxID.allSatisfy(\.isASCII), taxID.allSatisfy(\.isNumber) else {
            throw Problem.validation(field: "tax_id", code: "invalid", message: "A tax id is 1 to 20 digits.")
        }
        return taxID
    }

    // MARK: - Faults

    /// The provider operations a fault can be put on, as the simulators name them.
    static let operations: [ProviderKind: [String]] = [
        .wrapp: ["external_login", "embedded_check_user", "login"],
        .magnifinance: ["partner", "partner/accessTokens"],
    ]

    static let styles: [String: SimulatedFault.Style] = [
        "message": .message, "error": .error, "errors_message": .errorsMessage, "errors_string": .errorsString, "html": .html,
        "envelope_error": .envelopeError, "garbage": .garbage, "late_success": .lateSuccess,
    ]

    struct Faults: Encodable {
        var provider: String
        var pending: Int
    }

    @Sendable func injectFault(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let provider = try provider(context)
        let reader = FieldReader(try await JSONBody.read(request, limit: 4096))
        reader.allowOnly(["operation", "status", "style", "times", "retry_after", "retry_after_header", "delay_ms"])
        for key in reader.object.keys.sorted() where reader.object[key] is NSNull {
            reader.fail(key, "invalid_type", "Leave the field out rather than send null.")
        }
        let known = Self.operations[provider] ?? []
        let operation = reader.string("operation", required: true)
        if let operation, !known.contains(operation) {
            reader.fail("operation", "invalid", "One of \(known.joined(separator: ", ")) for \(provider.rawValue).")
        }
        let status = reader.integer("status", in: 200...599, required: true)
        let styleName = reader.string("style") ?? "message"
        let style = Self.styles[styleName]
        if style == nil { reader.fail("style", "invalid", "One of \(Self.styles.keys.sorted().joined(separator: ", ")).") }
        let times = reader.integer("times", in: 1...1000) ?? 1
        let retryAfter = reader.integer("retry_after", in: 0...3600)
        let delay = reader.integer("delay_ms", in: 0...60_000)
        let retryAfterHeader = reader.string("retry_after_header")
        if let retryAfterHeader, retryAfterHeader.utf8.count > 64 || retryAfterHeader.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value > 0x7E }) {
            reader.fail("retry_after_header", "invalid", "Up to 64 printable ASCII characters, sent as Retry-After as written.")
        }
        if style == .lateSuccess, delay == nil, reader.object["delay_ms"] == nil {
            reader.fail("delay_ms", "required", "A late success needs delay_ms: how long the answer is held back.")
        }
        try reader.throwIfInvalid()
        guard let operation, let status, let style else { throw Problem.validation([]) }
        let fault = SimulatedFault(operation: operation, status: status, style: style, times: times, retryAfter: retryAfter, retryAfterHeader: retryAfterHeader, delayMilliseconds: delay)
        switch provider {
        case .wrapp:
            await wrapp.add(fault)
            return try Response.json(Faults(provider: provider.rawValue, pending: await wrapp.pendingFaults))
        case .magnifinance:
            await magniFinance.add(fault)
            return try Response.json(Faults(provider: provider.rawValue, pending: await magniFinance.pendingFaults))
        }
    }

    @Sendable func clearFaults(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let provider = try provider(context)
        switch provider {
        case .wrapp: await wrapp.clearFaults()
        case .magnifinance: await magniFinance.clearFaults()
        }
        return try Response.json(Faults(provider: provider.rawValue, pending: 0))
    }

    private func provider(_ context: GatewayRequestContext) throws -> ProviderKind {
        guard let provider = ProviderKind(rawValue: try context.parameters.require("provider")) else {
            throw Problem(.notFound, code: "not_found", detail: "No such provider: wrapp or magnifinance.")
        }
        return provider
    }
}
