import Foundation
import GatewayCore
import GatewayTesting
import Providers

extension ConformanceSubject {
    /// How the conformance kit drives the simulated InvoiceXpress: an account is made at once, so the customer has
    /// nothing to do.
    static let invoicexpress = ConformanceSubject(
        module: InvoiceXpressModule(),
        profile: { externalID in
            Profile(email: "rui@example.pt", contactName: "Rui Costa", company: Company(taxID: portugueseNIF(externalID), legalName: "Exemplo \(externalID)", country: "PT"))
        },
        submitOperation: "accounts/create",
        // InvoiceXpress refuses an email it cannot deliver to ("Email is invalid").
        refusedProfile: { externalID in
            Profile(email: "rui@example.invalid", company: Company(taxID: portugueseNIF(externalID), legalName: "Exemplo \(externalID)", country: "PT"))
        },
        accountsOpened: { simulator, _, profile in
            await (simulator as? InvoiceXpressSimulator)?.accountsMade(for: profile.company?.taxID ?? "") ?? 0
        },
        finishOnboarding: { _, _, _ in }
    )
}
