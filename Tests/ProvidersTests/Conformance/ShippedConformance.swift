import Foundation
import GatewayCore
import GatewayTesting
import Providers

extension ConformanceSubject {
    /// How the conformance kit drives the simulated Wrapp: a customer logs in (the sandbox helper), Wrapp posts the key.
    static let wrapp = ConformanceSubject(
        module: WrappModule(),
        profile: { _ in Profile(email: "maria@example.com", phone: "+302101234567") },
        submitOperation: "external_login",
        // Wrapp refuses a blank phone with a 422 that names the field.
        refusedProfile: { _ in Profile(email: "maria@example.com", phone: "") },
        accountsOpened: { simulator, externalID, _ in await (simulator as? WrappSimulator)?.user(externalID) == nil ? 0 : 1 },
        finishOnboarding: { harness, externalID, _ in _ = await harness.simulator(WrappSimulator.self).completeOnboarding(externalID) },
        webhookURL: { simulator, externalID in await (simulator as? WrappSimulator)?.user(externalID)?.webhookEndpoint },
        webhookBody: { externalID in Data(#"{"partner_user_id":"\#(externalID)"}"#.utf8) }
    )

    /// How the conformance kit drives the simulated MagniFinance: a new company is granted at once, so there is
    /// nothing for the customer to do.
    static let magnifinance = ConformanceSubject(
        module: MagniFinanceModule(),
        profile: { externalID in
            Profile(email: "ana@example.pt", contactName: "Ana Sousa", company: Company(
                taxID: portugueseNIF(externalID), legalName: "Exemplo Lda", postCode: "1000-001", country: "PT"
            ))
        },
        submitOperation: "partner",
        // AddPartner refuses a legal name over 50 characters, naming the field.
        refusedProfile: { externalID in
            Profile(email: "ana@example.pt", contactName: "Ana Sousa", company: Company(
                taxID: portugueseNIF(externalID), legalName: String(repeating: "L", count: 60), postCode: "1000-001", country: "PT"
            ))
        },
        accountsOpened: { simulator, _, profile in
            await (simulator as? MagniFinanceSimulator)?.company(profile.company?.taxID ?? "").addPartnerCalls ?? 0
        },
        finishOnboarding: { _, _, _ in }
    )

    /// A valid Portuguese NIF of its own for each external id (5, seven digits from the id's hash, the check digit).
    static func portugueseNIF(_ seed: String) -> String {
        var hash: UInt64 = 1_469_598_103_934_665_603
        for byte in seed.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        var digits = [5] + String(format: "%07d", Int(hash % 10_000_000)).compactMap(\.wholeNumberValue)
        let sum = digits.enumerated().reduce(0) { $0 + $1.element * (9 - $1.offset) }
        digits.append(sum % 11 < 2 ? 0 : 11 - sum % 11)
        return digits.map(String.init).joined()
    }
}
