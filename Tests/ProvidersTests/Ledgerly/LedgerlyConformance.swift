import Foundation
import GatewayCore
import GatewayTesting
import Providers

extension ConformanceSubject {
    /// How the conformance kit drives Ledgerly's simulator.
    static let ledgerly = ConformanceSubject(
        module: LedgerlyModule(),
        profile: { Profile(email: "\($0)@example.com") },
        submitOperation: "signups",
        refusedProfile: { _ in Profile(email: "nobody@example.invalid") },
        accountsOpened: { simulator, externalID, _ in await (simulator as? LedgerlySimulator)?.posted[externalID] ?? 0 },
        finishOnboarding: { harness, externalID, _ in
            _ = try await harness.call(.post, "/sandbox/test-helpers/ledgerly/customers/\(externalID)/complete", key: nil)
        },
        webhookURL: { simulator, externalID in await (simulator as? LedgerlySimulator)?.signup(externalID)?.callbackURL },
        webhookBody: { externalID in Data(#"{"reference":"\#(externalID)"}"#.utf8) }
    )
}
