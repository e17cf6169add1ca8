import Foundation
import GatewayCore
@testable import GatewayServer
import GatewayTesting
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The console's guards: sign-in for a session cookie, CSRF on every form, the security headers, rate-limited and
/// audited sign-ins, and actions that go through the admin use cases. (The pages in a real browser:
/// `scripts/console_check.py`.)
@Suite struct ConsoleTests {
    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// Signs in; the session cookie ("name=value") and the CSRF token of its forms.
    static func signIn(_ h: SandboxHarness) async throws -> (cookie: String, csrf: String) {
        let token = try #require(h.gateway.config.adminToken)
        let answer = try await h.call(.post, "/console/sign-in", key: nil, json: "token=\(token)", headers: form)
        #expect(answer.status == 303)
        let cookie = try #require(answer.headers[.setCookie]?.split(separator: ";").first.map(String.init))
        let page = try await h.call(.get, "/console/api-keys", key: nil, headers: [.cookie: cookie]).text
        let csrf = try #require(page.firstMatch(of: /name="csrf" value="([^"]+)"/)?.output.1)
        return (cookie, String(csrf))
    }

    @Test func aSessionIsNeededAndEveryFormNeedsItsCSRFToken() async throws {
        try await SandboxHarness.run { h in
            let id = try #require(try await h.createWrapp("cust-console").string("id"))
            let anonymous = try await h.call(.get, "/console/tenants/\(id)", key: nil)
            #expect(anonymous.status == 303)
            #expect(anonymous.headers[.location] == "/console/sign-in")
            #expect(try await h.call(.post, "/console/tenants/\(id)/refresh", key: nil, json: "confirm=yes", headers: Self.form).status == 403)
            let bearer = try await h.call(.get, "/console", key: h.gateway.config.adminToken)
            #expect(bearer.status == 303, "the admin token as a header is not a session")

            let (cookie, csrf) = try await Self.signIn(h)
            let page = try await h.call(.get, "/console/tenants/\(id)", key: nil, headers: [.cookie: cookie])
            #expect(page.status == 200)
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            #expect(page.headers[.cacheControl] == "no-store")
            #expect(!page.text.contains("<script"))

            var withSession = Self.form
            withSession[.cookie] = cookie
            #expect(try await h.call(.post, "/console/tenants/\(id)/refresh", key: nil, json: "confirm=yes", headers: withSession).status == 403)
            #expect(try await h.call(.post, "/console/tenants/\(id)/refresh", key: nil, json: "confirm=yes&csrf=x\(csrf)", headers: withSession).status == 403)
            let unconfirmed = try await h.call(.post, "/console/tenants/\(id)/refresh", key: nil, json: "csrf=\(csrf)", headers: withSession)
            #expect(unconfirmed.status == 422, "an action needs its confirmation")
            let done = try await h.call(.post, "/console/tenants/\(id)/refresh", key: nil, json: "confirm=yes&csrf=\(csrf)", headers: withSession)
            #expect(done.status == 303)
            #expect(done.headers[.location] == "/console/tenants/\(id)?done=refresh")
            let audited = try await h.store.auditEntries(tenantID: id).filter { $0.action == "tenant.polled" }
            #expect(audited.map(\.actor) == ["console"], "audited as done from the console")
            #expect(audited.first?.details["ip"] == "127.0.0.1")

            let out = try await h.call(.post, "/console/sign-out", key: nil, json: "csrf=\(csrf)", headers: withSession)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await h.call(.get, "/console", key: nil, headers: [.cookie: cookie]).status == 303, "the session ended")
        }
    }

    @Test func theCookieIsSecureOnlyBehindHTTPSAndSignInIsThrottled() async throws {
        try await SandboxHarness.run { h in
            let token = try #require(h.gateway.config.adminToken)
            let plain = try await h.call(.post, "/console/sign-in", key: nil, json: "token=\(token)", headers: Self.form)
            let cookie = try #require(plain.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"))
            var proxied = Self.form
            proxied[HTTPField.Name("X-Forwarded-Proto")!] = "https"
            let secure = try await h.call(.post, "/console/sign-in", key: nil, json: "token=\(token)", headers: proxied)
            #expect(secure.headers[.setCookie]?.contains("; Secure") == true, "loopback is a trusted proxy by default")

            for attempt in 0..<5 {
                let wrong = try await h.call(.post, "/console/sign-in", key: nil, json: "token=guess\(attempt)", headers: Self.form)
                #expect(wrong.status == 401)
                #expect(!wrong.text.contains("guess\(attempt)"), "the attempt is not echoed")
            }
            for _ in 0..<3 {
                let throttled = try await h.call(.post, "/console/sign-in", key: nil, json: "token=\(token)", headers: Self.form)
                #expect(throttled.status == 429, "even the right token waits")
                #expect(Int(throttled.headers[.retryAfter] ?? "") ?? 0 > 0)
            }
            let actions = try await h.store.auditEntries(tenantID: nil).map(\.action)
            #expect(actions.filter { $0 == "console.sign_in_failed" }.count == 5)
            #expect(actions.filter { $0 == "console.sign_in_throttled" }.count == 1, "audited once, not at every refused try")
            #expect(!h.logs.text.contains(token), "the admin token never reaches the log")
        }
    }

    @Test func withoutAnAdminTokenThereIsNoConsole() async throws {
        let router = Router(context: GatewayRequestContext.self)
        router.group("console")
            .add(middleware: ConsoleMiddleware(enabled: false, sessions: ConsoleSessions(), clock: TestClock()))
            .get("sign-in") { _, _ in "the page" }
        let status = try await Application(router: router).test(.live) { client in
            try await client.execute(uri: "/console/sign-in", method: .get).status
        }
        #expect(status == .notFound)
    }

    @Test func aMalformedAcceptHeaderIsNotACrash() {
        #expect(HealthController.specMediaType(accept: ";") == "application/yaml")
        #expect(HealthController.specMediaType(accept: "a,;, text/yaml;q=0.9") == "text/yaml")
        #expect(HealthController.specMediaType(accept: "text/yaml, application/yaml") == "application/yaml")
    }

    @Test func everyAnswerUnderConsoleCarriesTheHeadersAndADisabledConsoleIsJustNotThere() async throws {
        try await SandboxHarness.run { h in
            let head = try await h.call(.head, "/console/tenants", key: nil)
            #expect(head.headers[HTTPField.Name("X-Frame-Options")!] == "DENY", "also what the router answers itself (\(head.status))")
            let unknown = try await h.call(.put, "/console/nowhere", key: nil)
            #expect(unknown.headers[.contentSecurityPolicy] != nil)
        }
        let router = Router(context: GatewayRequestContext.self)
        router.middlewares.add(EdgeMiddleware(
            scopes: RequestScopeMiddleware(trusted: [], providers: [], accessLog: Logger(label: "test")), metrics: GatewayMetrics(),
            consoleEnabled: false, problems: ProblemMiddleware(allowedMethods: AllowedMethods())
        ))
        router.get("console/sign-in") { _, _ in "the page" }
        let answers = try await Application(router: router).test(.live) { client in
            [try await client.execute(uri: "/console/sign-in", method: .get).status, try await client.execute(uri: "/console/x", method: .delete).status]
        }
        #expect(answers == [.notFound, .notFound])
    }

    @Test func textFromTenantsIsEscaped() {
        let name = #"<img src=x onerror="alert(1)">&'"#
        let page: HTML = "<td>\(name)</td><td title=\"\(name)\">\(HTML(raw: "<b>ok</b>"))</td>"
        #expect(page.text == "<td>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;</td><td title=\"&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;\"><b>ok</b></td>")
        #expect(FormBody.parse("a=1+2&b=%C3%A9%26&scopes=x&scopes=y&=z&c") == ["a": "1 2", "b": "é&", "scopes": "x,y", "c": ""])
    }
}
