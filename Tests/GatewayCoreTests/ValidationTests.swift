import Foundation
import Testing

@testable import GatewayCore
import Providers

@Suite struct ValidationTests {
    @Test(arguments: ["513495886", "500000000", "123456789", "999999990"])
    func validPortugueseNIFs(_ nif: String) {
        #expect(TaxIdentifiers.isValidPortugueseNIF(nif))
    }

    @Test(arguments: ["513495887", "12345678", "1234567890", "412345678", "51349588a", " 13495886"])
    func invalidPortugueseNIFs(_ nif: String) {
        #expect(!TaxIdentifiers.isValidPortugueseNIF(nif))
    }

    @Test(arguments: ["094014201", "090000045", "997095609"])
    func validGreekAFMs(_ afm: String) {
        #expect(TaxIdentifiers.isValidGreekAFM(afm))
    }

    @Test(arguments: ["094014202", "000000000", "12345678", "09401420x"])
    func invalidGreekAFMs(_ afm: String) {
        #expect(!TaxIdentifiers.isValidGreekAFM(afm))
    }

    @Test func wrappNeedsEmailAndPhone() {
        let errors = ProfileValidator.validate(provider: WrappModule(), externalID: "x", profile: Profile(), metadata: [:])
        #expect(Set(errors.map(\.field)) == ["profile.email", "profile.phone"])
        #expect(errors.allSatisfy { $0.code == "required" })
    }

    @Test func magniFinanceNeedsTaxIDAndCountry() {
        let errors = ProfileValidator.validate(provider: MagniFinanceModule(), externalID: "x", profile: Profile(email: "a@b.pt"), metadata: [:])
        #expect(Set(errors.map(\.field)) == ["profile.company.tax_id", "profile.company.country"])
    }

    @Test func everyProblemIsReportedAtOnce() {
        let profile = Profile(
            email: "not-an-email", phone: "12", contactName: String(repeating: "n", count: 76),
            company: Company(taxID: "513495887", legalName: String(repeating: "L", count: 51), postCode: "1000", country: "PT")
        )
        let errors = ProfileValidator.validate(provider: MagniFinanceModule(), externalID: "", profile: profile, metadata: [:])
        let fields = Set(errors.map(\.field))
        #expect(fields == [
            "external_id", "profile.email", "profile.phone", "profile.contact_name", "profile.company.tax_id",
            "profile.company.legal_name", "profile.company.post_code",
        ])
        #expect(errors.first { $0.field == "profile.company.tax_id" }?.code == "invalid_tax_id")
    }

    @Test func magniFinanceMaximumLengthsAreExact() {
        let atLimit = Profile(company: Company(taxID: "513495886", address: String(repeating: "a", count: 200), city: String(repeating: "c", count: 50), country: "PT"))
        #expect(ProfileValidator.validate(provider: MagniFinanceModule(), externalID: "x", profile: atLimit, metadata: [:]).isEmpty)
        var over = atLimit
        over.company?.address! += "a"
        #expect(ProfileValidator.validate(provider: MagniFinanceModule(), externalID: "x", profile: over, metadata: [:]).map(\.field) == ["profile.company.address"])
    }

    @Test func countriesAreISOAlpha2InCapitals() {
        for (country, valid) in [("GR", true), ("PT", true), ("pt", false), ("XX", false), ("GRC", false), ("UK", false)] {
            let profile = Profile(company: Company(taxID: "1", country: country))
            let errors = ProfileValidator.validate(provider: MagniFinanceModule(), externalID: "x", profile: profile, metadata: [:])
            #expect(errors.contains { $0.field == "profile.company.country" } == !valid, "\(country)")
        }
    }

    @Test func emailsAndPhones() {
        #expect(ProfileValidator.isPlausibleEmail("maria.p+invoices@example.co.uk"))
        #expect(!ProfileValidator.isPlausibleEmail("maria@"))
        #expect(!ProfileValidator.isPlausibleEmail("maria example@x.com"))
        #expect(!ProfileValidator.isPlausibleEmail("maria@localhost"))
        #expect(ProfileValidator.isPlausiblePhone("+30 210 123 4567"))
        #expect(ProfileValidator.isPlausiblePhone("(210) 123-4567"))
        #expect(!ProfileValidator.isPlausiblePhone("+30 call me"))
        #expect(!ProfileValidator.isPlausiblePhone("123"))
    }

    @Test func limitsCountCodePointsNotGraphemes() {
        let zalgo = String(repeating: "e\u{0301}\u{0316}", count: 100)  // 100 graphemes, 300 code points
        #expect(zalgo.count == 100 && zalgo.lengthForLimits == 300)
        #expect(ProfileValidator.validate(["note": zalgo]).isEmpty, "500 is the limit")
        #expect(ProfileValidator.validateExternalID(zalgo).map(\.code) == ["too_long"])
        let profile = Profile(company: Company(taxID: "513495886", legalName: String(repeating: "e\u{0301}", count: 30), country: "PT"))
        #expect(ProfileValidator.validate(profile, for: MagniFinanceModule()).map(\.field) == ["profile.company.legal_name"], "MagniFinance counts UTF-16 units")
    }

    @Test func metadataIsBounded() {
        let many = Dictionary(uniqueKeysWithValues: (0..<51).map { ("k\($0)", "v") })
        #expect(ProfileValidator.validate(many).map(\.code).contains("too_many_keys"))
        #expect(ProfileValidator.validate(["plan": String(repeating: "x", count: 501)]).map(\.field) == ["metadata.plan"])
        #expect(ProfileValidator.validate(["plan": "pro"]).isEmpty)
    }
}
