import Foundation
import Testing

@testable import GatewayCore
import GatewayTesting
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
            let tenant = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
            let expected = try encoder.encode(tenant)
            var written: [UInt8] = []
            let link = tenant.nextAction?.type == .redirectToURL ? Links().onboardingLink(for: tenant.id) : nil
            TenantJSON.write(tenant, link: link, into: &written)
            #expect(Data(written) == expected, "round \(round): \(String(decoding: written, as: UTF8.self)) vs \(String(decoding: expected, as: UTF8.self))")
            if Data(written) != expected { return }
        }
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

/// The kept rendering (`TenantJSON.Representation`, no link) with the link added at read time must be the API's bytes.
@Suite struct KeptRenderingTests {
    @Test func theLinkAddedToAKeptRenderingGivesTheAPIsBytes() {
        var random = SeededGenerator(seed: 2_026_120_6)
        let links = TenantJSONTests.Links()
        for round in 0..<2_000 {
            let tenant = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
            var expected: [UInt8] = []
            TenantJSON.write(tenant, link: tenant.nextAction?.type == .redirectToURL ? links.onboardingLink(for: tenant.id) : nil, into: &expected)
            var served: [UInt8] = []
            TenantJSON.appendWithOnboardingLink(TenantJSON.Representation().render(tenant), link: links.onboardingLink(for:), id: tenant.id, into: &served)
            #expect(served == expected, "round \(round): \(String(decoding: served, as: UTF8.self))")
            if served != expected { return }
        }
    }

    @Test func aMetadataValueOrErrorThatSpellsTheMarkerIsNotTakenForTheNextAction() {
        let marker = #""next_action":{"type":"redirect_to_url""#
        let tenant = Tenant(
            id: "ten_1", provider: .wrapp, externalID: marker, state: .pending, nextAction: NextAction(type: .awaitApproval, url: marker),
            profile: Profile(email: marker), metadata: [marker: marker, "next_action": "{"],
            lastError: TenantError(code: marker, message: marker, errors: [], at: Date(timeIntervalSince1970: 0)),
            createdAt: Date(timeIntervalSince1970: 0), updatedAt: Date(timeIntervalSince1970: 0), stateChangedAt: Date(timeIntervalSince1970: 0)
        )
        let kept = TenantJSON.Representation().render(tenant)
        var served: [UInt8] = []
        TenantJSON.appendWithOnboardingLink(kept, link: { _ in "LINK" }, id: tenant.id, into: &served)
        #expect(served == kept, "no redirect, no link: \(String(decoding: served, as: UTF8.self))")
    }
}
