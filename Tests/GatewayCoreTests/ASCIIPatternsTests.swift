import GatewayCore
import GatewayTesting
import Providers
import Testing

/// The byte scanners decide exactly what the regular expressions they replaced decided (the expressions are kept
/// here, as the reference), over strings built from each shape's own pieces, near misses and non-ASCII characters.
@Suite struct ASCIIPatternsTests {
    /// Pieces a string is made of: the characters each shape knows, its separators, and what it must refuse.
    static let pieces: [String] = [
        "a", "Z", "m", "0", "9", "5", ".", "-", "_", "%", "+", "'", "@", " ", "(", ")", "ab", "x1", "--", "..", "@@",
        "example", "co", "uk", "1000", "001", "é", "e\u{301}", "\u{301}", "\u{212A}", "\u{661}", "Ａ", "\r\n", "\t", "/", "#", "A-Z", "0-9",
    ]

    static func candidate(_ random: inout SeededGenerator) -> String {
        (0..<Int.random(in: 0...9, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    /// Strings near each shape: a valid example with one piece changed, added or taken away.
    static func nearMiss(_ random: inout SeededGenerator) -> String {
        var text = Array(["maria.p+x@example.co.uk", "+30 210 123 4567", "1000-001", "acme-ltd", "a@b.c", "(210) 1-2.3"].randomElement(using: &random)!)
        let at = Int.random(in: 0...text.count, using: &random)
        switch Int.random(in: 0..<3, using: &random) {
        case 0: text.insert(contentsOf: pieces.randomElement(using: &random)!, at: at)
        case 1: if at < text.count { text.remove(at: at) }
        default: if at < text.count { text[at] = pieces.randomElement(using: &random)!.first ?? "x" }
        }
        return String(text)
    }

    @Test func scannersDecideWhatTheRegexesDecided() {
        var random = SeededGenerator(seed: 23)
        var matched = (email: 0, phone: 0, postCode: 0, label: 0)
        for round in 0..<10_000 {
            let text = round.isMultiple(of: 2) ? Self.candidate(&random) : Self.nearMiss(&random)
            let email = text.wholeMatch(of: /[A-Za-z0-9._%+\-']+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+/) != nil
            #expect(ASCIIPatterns.isEmail(text) == email, "email, round \(round): \(text.debugDescription)")
            let phone = text.wholeMatch(of: /\+?[0-9 ()\-.]+/) != nil
            #expect(ASCIIPatterns.isPhoneShape(text) == phone, "phone, round \(round): \(text.debugDescription)")
            let postCode = text.wholeMatch(of: /[0-9]{4}-[0-9]{3}/) != nil
            #expect(ASCIIPatterns.isPortuguesePostCode(text) == postCode, "post code, round \(round): \(text.debugDescription)")
            let label = text.utf8.count <= 63 && text.utf8.allSatisfy { $0 < 0x80 } && text.wholeMatch(of: /[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?/) != nil
            #expect(ASCIIPatterns.isLowercaseDNSLabel(text) == label, "label, round \(round): \(text.debugDescription)")
            if email { matched.email += 1 }
            if phone { matched.phone += 1 }
            if postCode { matched.postCode += 1 }
            if label { matched.label += 1 }
        }
        // The generator reaches every shape's matches, not only its refusals.
        #expect(matched.email > 50 && matched.phone > 50 && matched.postCode > 50 && matched.label > 50, "\(matched)")
    }

    @Test func labelsAtTheirLimits() {
        #expect(ASCIIPatterns.isLowercaseDNSLabel(String(repeating: "a", count: 63)))
        #expect(!ASCIIPatterns.isLowercaseDNSLabel(String(repeating: "a", count: 64)))
        #expect(!ASCIIPatterns.isLowercaseDNSLabel(""))
        #expect(ASCIIPatterns.isLowercaseDNSLabel("a"))
        #expect(!ASCIIPatterns.isLowercaseDNSLabel("-a"))
        #expect(!ASCIIPatterns.isEmail("a@" + String(repeating: "b", count: 10)))
    }
}
