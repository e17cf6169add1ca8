import Foundation
import GatewayCore

/// MagniFinance's sandbox test helpers (`/sandbox/test-helpers/magnifinance/…`): make a company an existing client,
/// approve its partnership, read what the simulated MagniFinance holds for it.
extension MagniFinanceSimulator: ProviderSimulator {
    struct CompanyAnswer: Encodable {
        var tax_id: String
        var existing_client: Bool
        var partnership: String
        var add_partner_calls: Int

        init(_ company: Company) {
            tax_id = company.taxID
            existing_client = company.existingClient
            partnership = company.partnership.rawValue
            add_partner_calls = company.addPartnerCalls
        }
    }

    /// A tax id in a helper's path: 1 to 20 digits.
    static func taxID(_ request: SandboxHelperRequest) -> String? {
        let taxID = request["tax_id"]
        guard (1...20).contains(taxID.count), taxID.allSatisfy(\.isASCII), taxID.allSatisfy(\.isNumber) else { return nil }
        return taxID
    }

    static let invalidTaxID = SandboxHelperAnswer.invalid([FieldError(field: "tax_id", code: "invalid", message: "A tax id is 1 to 20 digits.")])

    public nonisolated var sandboxHelpers: [SandboxHelper] {
        [
            SandboxHelper(.get, "companies/{tax_id}") { request in
                guard let taxID = Self.taxID(request) else { return Self.invalidTaxID }
                return .encoding(CompanyAnswer(await self.company(taxID)))
            },
            SandboxHelper(.post, "companies/{tax_id}/existing-client") { request in
                guard let taxID = Self.taxID(request) else { return Self.invalidTaxID }
                guard await self.company(taxID).partnership == .none else {
                    return .conflict("The partnership was already asked for: mark the company before creating its tenant.")
                }
                await self.markExistingClient(taxID)
                return .encoding(CompanyAnswer(await self.company(taxID)))
            },
            SandboxHelper(.post, "companies/{tax_id}/withdraw") { request in
                guard let taxID = Self.taxID(request) else { return Self.invalidTaxID }
                guard await self.withdraw(taxID) else {
                    return .notFound("The simulated MagniFinance has no granted partnership for this tax id.")
                }
                return .encoding(CompanyAnswer(await self.company(taxID)))
            },
            SandboxHelper(.post, "companies/{tax_id}/approve") { request in
                guard let taxID = Self.taxID(request) else { return Self.invalidTaxID }
                guard await self.approve(taxID) else {
                    return .notFound("The simulated MagniFinance has no partnership request for this tax id.")
                }
                return .encoding(CompanyAnswer(await self.company(taxID)))
            },
        ]
    }
}
