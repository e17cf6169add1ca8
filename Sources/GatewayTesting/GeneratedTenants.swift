import Foundation
import GatewayCore
import Providers

/// Generated tenants for property tests: every field, optional or not, with text that needs escaping (quotes,
/// backslashes, controls, non-ASCII), so a renderer or a store that mishandles any of it shows up.
public enum GeneratedTenants {
    public static let pieces = ["a", "Zé", "\"", "\\", "/", "\n", "\t", "\r", "\u{8}", "\u{c}", "\u{1}", "\u{1f}", "€", "😀", " ", "<>&", "'", "\u{7f}", "0"]

    public static func text(_ random: inout SeededGenerator) -> String {
        (0..<Int.random(in: 0...6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    public static func maybe(_ random: inout SeededGenerator) -> String? {
        Bool.random(using: &random) ? text(&random) : nil
    }

    public static func date(_ random: inout SeededGenerator) -> Date {
        Date(timeIntervalSince1970: Double.random(in: 0...4_102_444_800, using: &random))
    }

    /// A tenant of one of `providers` (which this module does not name: see the provider boundary).
    public static func tenant(_ random: inout SeededGenerator, round: Int, providers: [ProviderKind]) -> Tenant {
        let kinds: [NextAction.Kind] = [.redirectToURL, .awaitApproval, .provideCredentials]
        let company = Bool.random(using: &random) ? Company(
            taxID: maybe(&random), legalName: maybe(&random), address: maybe(&random), city: maybe(&random),
            postCode: maybe(&random), country: maybe(&random)
        ) : nil
        var metadata: [String: String] = [:]
        for _ in 0..<Int.random(in: 0...4, using: &random) { metadata[text(&random)] = text(&random) }
        let lastError = Bool.random(using: &random) ? TenantError(
            code: text(&random), message: text(&random),
            errors: (0..<Int.random(in: 0...3, using: &random)).map { _ in FieldError(field: text(&random), code: text(&random), message: text(&random)) },
            at: date(&random)
        ) : nil
        return Tenant(
            id: "ten_\(round)\(text(&random))", provider: providers.randomElement(using: &random)!, externalID: text(&random),
            state: TenantState.allCases.randomElement(using: &random)!,
            nextAction: Bool.random(using: &random) ? NextAction(type: kinds.randomElement(using: &random)!, url: maybe(&random)) : nil,
            providerStatus: maybe(&random),
            profile: Profile(email: maybe(&random), phone: maybe(&random), contactName: maybe(&random), company: company),
            metadata: metadata, credentialsAvailable: Bool.random(using: &random), lastError: lastError,
            createdAt: date(&random), updatedAt: date(&random), stateChangedAt: date(&random),
            providerDetails: Bool.random(using: &random) ? ProviderDetails(
                values: Dictionary((0..<Int.random(in: 0...4, using: &random)).map { _ in
                    (text(&random), Bool.random(using: &random) ? ProviderDetails.Value.string(text(&random)) : .bool(Bool.random(using: &random)))
                }, uniquingKeysWith: { first, _ in first }),
                readAt: date(&random)
            ) : nil
        )
    }
}

/// The seeded generator of the property tests: the simulators' SplitMix64, so a failure names a round that repeats.
public typealias SeededGenerator = SplitMix64
