import Foundation
import Testing

@testable import GatewayCore
import Providers

/// The hand-written tenant JSON must be byte for byte what `JSONEncoder.gateway` writes, or clients would see two
/// shapes of the same tenant (a GET against an event snapshot, say).
@Suite struct TenantJSONTests {
    struct Links: OnboardingLinkMaker {
        func onboardingLink(for tenantID: String) -> String { "https://gw.example/onboard/\(tenantID).sig" }
    }

    @Test func writesTheSameBytesAsFoundationsEncoderForGeneratedTenants() throws {
        var random = SeededGenerator(seed: 20261121)
        let encoder = JSONEncoder.gateway
        encoder.userInfo[.onboardingLinks] = Links()
        for round in 0..<2_000 {
            let tenant = Self.tenant(&random, round: round)
            let expected = try encoder.encode(tenant)
            var written: [UInt8] = []
            let link = tenant.nextAction?.type == .redirectToURL ? Links().onboardingLink(for: tenant.id) : nil
            TenantJSON.write(tenant, link: link, into: &written)
            #expect(Data(written) == expected, "round \(round): \(String(decoding: written, as: UTF8.self)) vs \(String(decoding: expected, as: UTF8.self))")
            if Data(written) != expected { return }
        }
    }

    static let pieces = ["a", "Zé", "\"", "\\", "/", "\n", "\t", "\r", "\u{8}", "\u{c}", "\u{1}", "\u{1f}", "€", "😀", " ", "<>&", "'", "\u{7f}", "0"]

    static func text(_ random: inout SeededGenerator) -> String {
        (0..<Int.random(in: 0...6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func maybe(_ random: inout SeededGenerator) -> String? {
        Bool.random(using: &random) ? text(&random) : nil
    }

    static func date(_ random: inout SeededGenerator) -> Date {
        Date(timeIntervalSince1970: Double.random(in: 0...4_102_444_800, using: &random))
    }

    static func tenant(_ random: inout SeededGenerator, round: Int) -> Tenant {
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
            id: "ten_\(round)\(text(&random))", provider: Bool.random(using: &random) ? .wrapp : .magnifinance, externalID: text(&random),
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

/// A small deterministic generator (SplitMix64), so a failure names a round that repeats.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Credentials in text")
struct CredentialsTextTests {
    @Test("interpolated, dumped or described, credentials never show a value")
    func redacted() {
        let credentials = ProviderCredentials(provider: ProviderKind(rawValue: "acme")!, fields: ["api_key": .string("s3cr3t-value"), "nested": .array([.object(["token": .string("t0ken-value")])])])
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in ["\(credentials)", String(describing: credentials), String(reflecting: credentials), dumped] {
            #expect(!text.contains("s3cr3t-value") && !text.contains("t0ken-value"), "\(text)")
        }
        #expect("\(credentials)".contains("api_key"))
    }
}
