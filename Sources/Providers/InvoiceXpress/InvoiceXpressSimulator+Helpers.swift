import Foundation
import GatewayCore

/// InvoiceXpress's sandbox test helpers (`/sandbox/test-helpers/invoicexpress/…`): make a fiscal id one an existing
/// user already holds, read an account, rotate its key, switch the error format between v2 JSON and v1 XML.
extension InvoiceXpressSimulator {
    /// What the helpers answer of an account (`fiscal_id` is `null` when it holds none).
    static func answer(_ account: Account) -> SandboxHelperAnswer {
        .ok(.object([
            "account_id": .number(Double(account.id)), "account_name": .string(account.name), "api_key": .string(account.apiKey),
            "fiscal_id": JSONValue(account.fiscalID), "created_by_partner": .bool(account.createdByPartner),
        ]))
    }

    static let unknownAccount = SandboxHelperAnswer.notFound("The simulated InvoiceXpress has no account with this name.")

    public nonisolated var sandboxHelpers: [SandboxHelper] {
        [
            SandboxHelper(.get, "accounts/{account_name}") { request in
                guard let account = await self.account(named: request["account_name"]) else { return Self.unknownAccount }
                return Self.answer(account)
            },
            SandboxHelper(.post, "accounts/{account_name}/rotate-key") { request in
                guard let account = await self.rotateKey(request["account_name"]) else { return Self.unknownAccount }
                return Self.answer(account)
            },
            SandboxHelper(.get, "fiscal-ids/{fiscal_id}") { request in
                guard let account = await self.account(fiscalID: request["fiscal_id"]) else {
                    return .notFound("The simulated InvoiceXpress has no account with this fiscal id.")
                }
                return Self.answer(account)
            },
            SandboxHelper(.post, "fiscal-ids/{fiscal_id}/existing-user") { request in
                let fiscalID = request["fiscal_id"]
                guard TaxIdentifiers.isValidPortugueseNIF(fiscalID) else {
                    return .invalid([FieldError(field: "fiscal_id", code: "invalid", message: "A valid Portuguese NIF: nine digits with a correct check digit.")])
                }
                if let taken = await self.account(fiscalID: fiscalID) {
                    return taken.createdByPartner ? .conflict("The partner already made an account for this fiscal id.") : Self.answer(taken)
                }
                return Self.answer(await self.open(organization: "existing \(fiscalID)", email: "owner-\(fiscalID)@example.pt", fiscalID: fiscalID, byPartner: false))
            },
            SandboxHelper(.put, "error-format", takesBody: true) { request in
                guard case .object(let body)? = request.body, case .string(let text)? = body["format"], let format = ErrorFormat(rawValue: text), body.count == 1 else {
                    return .invalid([FieldError(field: "format", code: "invalid", message: "json or xml.")])
                }
                await self.setErrorFormat(format)
                return .ok(.object(["format": .string(format.rawValue)]))
            },
        ]
    }
}
