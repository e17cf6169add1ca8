import Foundation
import GatewayCore
import Testing

@testable import Providers

/// InvoiceXpress's answers read as they come: both error formats, entities once, names that are host labels only.
@Suite struct InvoiceXpressAdapterTests {
    static func response(_ status: Int, _ body: String, type: String = "application/json") -> ProviderResponse {
        ProviderResponse(status: status, headers: [("Content-Type", type)], body: Data(body.utf8))
    }

    @Test(arguments: [
        (#"{"errors":{"error":"Vat Number is already used in another account"}}"#, "application/json", "Vat Number is already used in another account"),
        (#"{"errors":[{"error":"Email is invalid"}]}"#, "application/json", "Email is invalid"),
        (#"{"errors":{"error":["Terms and Conditions must be accepted"]}}"#, "application/json", "Terms and Conditions must be accepted"),
        (#"{"message":"Phone is invalid"}"#, "application/json", "Phone is invalid"),
        ("<?xml version=\"1.0\"?><errors><error>Email &amp;lt;is&amp;gt; invalid &#233;</error></errors>", "application/xml", "Email &lt;is&gt; invalid é"),
        ("<errors><error code=\"1\"><![CDATA[Vat Number is <already> used]]></error></errors>", "text/xml", "Vat Number is <already> used"),
        ("<html><body>500</body></html>", "text/html", ""),
    ])
    func errorMessages(_ body: String, _ type: String, _ expected: String) {
        #expect(InvoiceXpressAdapter.errorMessage(Self.response(422, body, type: type)) == expected)
    }

    @Test func anXMLErrorIsNotAnHTMLPage() {
        let xml = Self.response(422, "<?xml version=\"1.0\"?><errors><error>x</error></errors>", type: "application/xml")
        #expect(xml.isXML && !xml.isHTML)
        #expect(Self.response(502, "<html>bad gateway</html>", type: "text/plain").isHTML)
    }

    @Test func theFiscalIDTakenIsReadInEnglishAndPortuguese() {
        #expect(InvoiceXpressAdapter.fiscalIDTaken("Vat Number is already used in another account"))
        #expect(InvoiceXpressAdapter.fiscalIDTaken("O NIF já está a ser utilizado noutra conta"))
        #expect(!InvoiceXpressAdapter.fiscalIDTaken("Email is already used"), "another field taken is a refusal")
    }

    @Test(arguments: [
        ("exemplo-lda", true), ("a", true), ("0abc9", true), (String(repeating: "a", count: 63), true),
        (String(repeating: "a", count: 64), false), ("Exemplo", false), ("-x", false), ("x-", false), ("a.b", false),
        ("evil.example.com/x", false), ("ex\u{e9}mplo", false), ("exe\u{301}mplo", false), ("", false), ("a_b", false),
    ])
    func accountNamesAreHostLabels(_ name: String, _ valid: Bool) {
        #expect(InvoiceXpressModule.isAccountName(name) == valid, "\(name)")
    }

    @Test func aCreatedAccountIsReadOnlyWhenItsNameIsAHostLabel() throws {
        let good = try #require(InvoiceXpressAdapter.credentials(fromCreated: Data(#"{"account":{"id":7,"name":"Exemplo-1","url":"https://evil.example","api_key":"k1"}}"#.utf8)))
        #expect(good.fields["account_name"] == .string("exemplo-1") && good.fields["account_url"] == .string("https://exemplo-1.app.invoicexpress.com"))
        #expect(good.fields["account_id"] == .string("7"), "the url answered is never taken")
        #expect(InvoiceXpressAdapter.credentials(fromCreated: Data(#"{"account":{"name":"evil.com/x","api_key":"k1"}}"#.utf8)) == nil)
        let huge = try #require(InvoiceXpressAdapter.credentials(fromCreated: Data(#"{"account":{"id":1e300,"name":"a","api_key":"k"}}"#.utf8)))
        #expect(huge.fields["account_id"] == nil, "an id out of range is left out, never trapped on")
        let boolean = try #require(InvoiceXpressAdapter.credentials(fromCreated: Data(#"{"account":{"id":true,"name":"a","api_key":"k"}}"#.utf8)))
        #expect(boolean.fields["account_id"] == nil)
    }

    @Test func keysAreEncodedByteByByteAndScrubbedFromText() {
        let adapter = InvoiceXpressAdapter(
            baseURL: { "https://{account}.app.invoicexpress.com" }, partnerAccount: "partner", partnerKey: "k é/&", http: .live(timeout: 1), random: SystemRandomness()
        )
        let url = adapter.url(account: "partner", path: "/api/accounts/create.json", key: "k é/&")
        #expect(url == "https://partner.app.invoicexpress.com/api/accounts/create.json?api_key=k%20%C3%A9%2F%26")
        #expect(adapter.scrubbed("failed: \(url) and k é/&", keys: ["k é/&"]) == "failed: https://partner.app.invoicexpress.com/api/accounts/create.json?api_key=*** and ***")
    }
}
