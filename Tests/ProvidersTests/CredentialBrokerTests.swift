import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// The adapters as credential brokers: provider numbers and text bounded before use, and a refusal counted only
/// when it is the customer's.
@Suite struct CredentialBrokerTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func jwt(_ claims: String) -> String {
        let encode = { (text: String) in
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        return encode(#"{"alg":"HS256"}"#) + "." + encode(claims) + ".sig"
    }

    @Test func aJWTsExpiryIsBelievedOnlyWithinBounds() {
        let fallback = Self.now.addingTimeInterval(23 * 3600)
        let exp = Self.now.timeIntervalSince1970
        #expect(WrappAdapter.expiry(ofJWT: Self.jwt(#"{"exp":\#(Int(exp) + 3600)}"#), now: Self.now) == Self.now.addingTimeInterval(3600))
        // Readable but out of bounds: held to a minute, or a week, from now.
        for (claims, held) in [
            (#"{"exp":\#(Int(exp) + 30)}"#, 60.0), (#"{"exp":\#(Int(exp) - 3600)}"#, 60), (#"{"exp":\#(Int(exp) + 30 * 86_400)}"#, 7 * 86_400),
            (#"{"exp":1e300}"#, 7 * 86_400), (#"{"exp":-1e300}"#, 60),
        ] {
            #expect(WrappAdapter.expiry(ofJWT: Self.jwt(claims), now: Self.now) == Self.now.addingTimeInterval(held), "\(claims)")
        }
        for claims in [#"{"exp":"soon"}"#, #"{}"#, "not json"] {
            #expect(WrappAdapter.expiry(ofJWT: Self.jwt(claims), now: Self.now) == fallback, "\(claims)")
        }
        #expect(WrappAdapter.expiry(ofJWT: "opaque-token", now: Self.now) == fallback)
        #expect(WrappAdapter.expiry(ofJWT: "a.\(String(repeating: "A", count: 5000)).c", now: Self.now) == fallback)
    }

    @Test func tenantDetailsAreReadByTypeAndBounded() {
        let details = WrappAdapter.details(from: [
            "issue_invoice_status": true, "has_plan": "yes", "plan_name": "Pro\u{0}\u{7}" + String(repeating: "x", count: 500),
            "next_payment_date": "2027-02-30", "next_payment_amount": "1e9", "email": "kept@out.example", "partner_user_id": "p",
        ], readAt: Self.now)
        #expect(details.values["issue_invoice_status"] == .bool(true))
        #expect(details.values["has_plan"] == nil, "a string is not a boolean")
        guard case .string(let name)? = details.values["plan_name"] else { Issue.record("no plan name"); return }
        #expect(name.count == 100 && name.hasPrefix("Pro") && !name.unicodeScalars.contains { $0.value < 0x20 })
        #expect(details.values["next_payment_date"] == nil, "not a real day")
        #expect(details.values["next_payment_amount"] == nil, "not decimal text")
        #expect(details.values["email"] == nil, "only named fields")
        let good = WrappAdapter.details(from: ["next_payment_date": "2027-01-15T00:00:00Z", "next_payment_amount": 19.9], readAt: Self.now)
        #expect(good.values["next_payment_date"] == .string("2027-01-15"))
        #expect(good.values["next_payment_amount"] == .string("19.9"))
    }

    /// MagniFinance's withdrawal is its `PartnershipNotFound` envelope (or a readable empty list); a bare 404, a list
    /// of a shape we do not know, or a success that is not a list is unknown: one format change must not suspend
    /// every company.
    @Test func magniFinanceRefusesOnlyInItsOwnWords() async {
        let cases: [(status: Int, body: String, refused: Bool)] = [
            (200, #"{"IsError":true,"IsSuccess":false,"Type":1,"ErrorValue":{"Value":38,"Name":"PartnershipNotFound"}}"#, true),
            (200, #"{"IsError":false,"IsSuccess":true,"Type":0,"Object":[]}"#, true),
            (404, "", false),
            (404, "<html><body>Not Found</body></html>", false),
            (200, #"{"IsError":false,"IsSuccess":true,"Type":0,"Object":"granted"}"#, false),
            (200, #"{"IsError":false,"IsSuccess":true,"Type":0,"Object":[{"Token":"renamed-field"}]}"#, false),
        ]
        for (status, body, refused) in cases {
            let answer = ProviderResponse(status: status, headers: [("Content-Type", body.hasPrefix("<") ? "text/html" : "application/json")], body: Data(body.utf8))
            let http = ProviderHTTPClient.answering { _, _, _, _ in .success(answer) }
            let magni = MagniFinanceAdapter(configuration: .init(baseURL: { "http://127.0.0.1:9" }, email: "ippn@example.com", token: "t", password: "p"), http: http)
            let tenant = ProviderTenant(
                tenantID: "ten_1", externalID: "e", profile: Profile(company: Company(taxID: "513495886", country: "PT")), hasCredentials: true
            )
            let check = await magni.checkCredentials(.magnifinance(accessTokens: [.init(token: "t-1", description: nil)]), for: tenant)
            var wasRefused = false
            if case .refused? = check.verdict { wasRefused = true }
            #expect(wasRefused == refused, "\(status) \(body)")
        }
    }

    /// InvoiceXpress refuses a key with its own 401, 403 or 404; the same statuses as an HTML page (something in front
    /// of it) say nothing about the key.
    @Test func invoiceXpressRefusesOnlyWithItsOwnAnswer() async throws {
        for (status, html, refused) in [(401, false, true), (403, false, true), (404, false, true), (401, true, false), (403, true, false), (404, true, false), (500, false, false)] {
            let answer = ProviderResponse(
                status: status, headers: [("Content-Type", html ? "text/html" : "application/json")],
                body: Data((html ? "<html><body>Denied</body></html>" : #"{"errors":{"error":"Access denied"}}"#).utf8)
            )
            let http = ProviderHTTPClient.answering { _, _, _, _ in .success(answer) }
            let module = InvoiceXpressModule()
            let adapter = module.makeAdapter(
                module.sandboxConfiguration { _, prefix in prefix + "key" }, baseURL: { "http://127.0.0.1:9/{account}" }, http: http
            )
            let broker = try #require(adapter.broker)
            let credentials = ProviderCredentials(provider: .invoicexpress, fields: ["account_name": .string("exemplo-lda"), "api_key": .string("k-1")])
            let tenant = ProviderTenant(tenantID: "ten_1", externalID: "e", profile: Profile(), hasCredentials: true)
            let check = await broker.checkCredentials(credentials, for: tenant)
            var wasRefused = false
            if case .refused? = check.verdict { wasRefused = true }
            #expect(wasRefused == refused, "\(status) html=\(html)")
        }
    }

    /// `/tenant_details` naming another `partner_user_id` is odd, not Wrapp's refusal of the key (the binding was
    /// proven when the key was kept): unknown, and nobody is suspended for it.
    @Test func tenantDetailsNamingSomeoneElseIsNoRefusal() async {
        let http = ProviderHTTPClient.answering { _, url, _, _ in
            let json: String = if url.hasSuffix("/embedded_check_user") {
                #"{"user":"maria@example.com","active_subscription":true}"#
            } else if url.hasSuffix("/login") {
                #"{"data":{"type":"jwt","attributes":{"jwt":"a.b.c"}}}"#
            } else {
                #"{"partner_user_id":"someone-else","has_plan":true}"#
            }
            return .success(ProviderResponse(status: 200, headers: [("Content-Type", "application/json")], body: Data(json.utf8)))
        }
        let wrapp = WrappAdapter(configuration: .init(baseURL: { "http://127.0.0.1:9" }, partnerAPIKey: "p"), http: http)
        let answer = await wrapp.checkCredentials(.wrapp(wrappUserID: "u", apiKey: "k"), for: Adapters.wrappTenant("cust-x", hasCredentials: true))
        guard case .unknown? = answer.verdict else { Issue.record("expected unknown, got \(String(describing: answer.verdict))"); return }
        #expect(answer.details == nil, "someone else's details are not this customer's")
    }

    /// `/login` carries the partner key: when Wrapp refuses the partner's own calls, its 401 says nothing of the
    /// customer's key, and no tenant may be suspended for it. With the partner key working, a wrong key is refused.
    @Test func aLoginRefusedWhileThePartnerKeyFailsIsNoRefusal() async throws {
        try await SandboxHarness.run { harness in
            let tenant = Adapters.wrappTenant("cust-broker", hasCredentials: true)
            let good = try Adapters(harness)
            _ = await good.wrapp.submit(tenant, previousAttempts: 0)
            await good.wrappSimulator.logIn("cust-broker")
            let guessed = ProviderCredentials.wrapp(wrappUserID: "nobody", apiKey: "guessed")
            let refused = await good.wrapp.checkCredentials(guessed, for: tenant)
            guard case .refused(_, let action)? = refused.verdict else { Issue.record("expected refused, got \(String(describing: refused.verdict))"); return }
            #expect(action?.type == .provideCredentials)

            let wrongPartner = try Adapters(harness, wrappKey: "revoked-partner-key")
            let unknown = await wrongPartner.wrapp.checkCredentials(guessed, for: tenant)
            guard case .unknown? = unknown.verdict else { Issue.record("expected unknown, got \(String(describing: unknown.verdict))"); return }
        }
    }
}
