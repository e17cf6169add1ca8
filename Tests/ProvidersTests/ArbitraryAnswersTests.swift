import Foundation
import GatewayCore
import PropertyBased
import Providers
import Testing

/// Whatever a provider (or anything on the path) answers — any status, any header, any body — every adapter call
/// and the envelope decoder give an answer and never crash: no trap is reachable from provider input.
@Suite struct ArbitraryAnswersTests {
    static let retryAfters = [
        "inf", "-inf", "nan", "NaN", "1e309", "-1", "0", "5", "99999999999999999999999999", String(repeating: "9", count: 400), "1.5", "+3",
        " 7 ", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "yesterday", "", "0x10", "٣", "3600",
    ]
    static let contentTypes = ["application/json", "text/html; charset=utf-8", "text/plain", "application/xml", "", "application/json; charset=\u{0}"]

    /// A body of one of several shapes, seeded by `kind` and `text`.
    static func body(kind: Int, text: String, number: Int) -> Data {
        let huge = ["1e400", "-1e400", "9223372036854775808", "-9223372036854775809", "1.7976931348623157e308", "0.0000001", "-0", "\(number)"]
        let value = huge[abs(number) % huge.count]
        let json: String = switch kind {
        case 0: text
        case 1: "<html><body>\(text)</body></html>"
        case 2: #"{"RequestId":\#(value),"Object":[{"AccessToken":\#(value),"Description":\#(value)}],"Type":\#(value),"IsError":\#(number % 2 == 0),"ErrorValue":{"Value":\#(value),"Name":"\#(text.count)"}}"#
        case 3: #"{"Object":[{"AccessToken":"tok-\#(number)"}],"Type":"Success","IsSuccess":true,"ValidationErrors":[{"Field":\#(value),"Type":\#(value),"ElementNumber":\#(value)}]}"#
        case 4: #"{"ErrorValue":{"Value":"\#(value)","Name":"PartnershipNotFound"},"ErrorHumanReadable":"already partner \#(number)","IsError":true}"#
        case 5: #"{"login_url":"\#(text)","url":\#(value),"user_id":\#(value),"api_key":\#(value),"partner_user_id":"cust-1","status":\#(value)}"#
        case 6: #"{"data":{"id":\#(value),"attributes":{"can_issue_invoices":\#(value),"subscription":{"active":\#(value),"next_payment_at":\#(value)}}}}"#
        case 7: #"{"jwt":"\#(text)","errors":[{"message":\#(value)}],"message":[\#(value)]}"#
        case 8: String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        case 9: #"{"a":"\#(String(repeating: "\u{FFFD}", count: 40))","b":\#(value)}"#
        default: ""
        }
        return Data(json.utf8)
    }

    static let tenant = ProviderTenant(
        tenantID: "ten_fuzz", externalID: "cust-1",
        profile: Profile(email: "a@example.com", phone: "+302101234567", company: Company(taxID: "513495886", country: "PT")),
        hasCredentials: false, webhookURL: "http://127.0.0.1:9/webhooks/wrapp/x"
    )

    @Test func anyAnswerToAnyCallIsAnAnswerNeverACrash() async {
        await propertyCheck(
            count: 200,
            input: Gen.int(in: 100...599), Gen.int(in: 0...19), Gen.int(in: 0...11), Gen.ascii.string(of: 0...80)
        ) { status, retryAfter, kind, text in
            await Self.exercise(status: status, retryAfter: retryAfter, kind: kind, text: text)
        }
    }

    /// Every adapter call against one generated answer.
    static func exercise(status: Int, retryAfter: Int, kind: Int, text: String) async {
        let answer = ProviderResponse(
            status: status,
            headers: [
                ("Retry-After", Self.retryAfters[retryAfter]), ("Content-Type", Self.contentTypes[kind % Self.contentTypes.count]),
                ("Location", kind % 3 == 0 ? "http://elsewhere.invalid/\(text)" : text),
            ],
            body: Self.body(kind: kind, text: text, number: status * 31 + retryAfter)
        )
        let http = ProviderHTTPClient.answering { _, _, _, _ in .success(answer) }
        let wrapp = WrappAdapter(configuration: .init(baseURL: { "http://127.0.0.1:9" }, partnerAPIKey: "partner-key-x"), http: http)
        let magni = MagniFinanceAdapter(
            configuration: .init(baseURL: { "http://127.0.0.1:9" }, email: "ippn@example.com", token: "t", password: "p"), http: http
        )
        var answers: [ProviderAnswer] = []
        for tenant in [Self.tenant, { var t = Self.tenant; t.hasCredentials = true; return t }()] {
            answers.append(await wrapp.submit(tenant, previousAttempts: 0))
            answers.append(await wrapp.check(tenant))
            answers.append(await magni.submit(tenant, previousAttempts: 0))
            answers.append(await magni.submit(tenant, previousAttempts: 1))
            answers.append(await magni.check(tenant))
        }
        _ = await wrapp.verify(.wrapp(wrappUserID: "u-1", apiKey: "k"), for: Self.tenant)
        // A credential check never takes a server error or a page for the customer's refusal.
        let stored = { var t = Self.tenant; t.hasCredentials = true; return t }()
        let wrappCheck = await wrapp.checkCredentials(.wrapp(wrappUserID: "u-1", apiKey: "k"), for: stored)
        let magniCheck = await magni.checkCredentials(.magnifinance(accessTokens: [.init(token: "t-1", description: nil)]), for: stored)
        if status >= 500 || status == 429 || Self.contentTypes[kind % Self.contentTypes.count].contains("html") {
            for verdict in [wrappCheck.verdict, magniCheck.verdict] {
                if case .refused? = verdict { Issue.record("a \(status) answer read as a refusal") }
            }
        }
        _ = await wrapp.accessToken(with: .wrapp(wrappUserID: "u-1", apiKey: "k"))
        _ = await wrapp.onboardingURL(for: Self.tenant)
        _ = wrapp.interpretWebhook(answer.body)
        _ = answer.retryAfter()
        for answer in answers {
            if case .unavailable(_, let wait) = answer.finding, let wait {
                #expect(wait.isFinite && wait >= 0 && wait <= Bounds.defaultRetryAfterCap, "a provider's number is bounded: \(wait)")
            }
            // A server error, a 429 or a redirect never reads as a provider's final word.
            if status >= 500 || status == 429 || (300..<400).contains(status) {
                if case .rejected = answer.finding { Issue.record("\(status) read as a refusal") }
                if case .ready = answer.finding { Issue.record("\(status) read as ready") }
            }
        }
    }
}
