import AsyncHTTPClient
import Foundation
import GatewayCore
import GatewayTesting
import HTTPTypes
import NIOCore
import Providers
import Testing

/// Issue 22 through HTTP: access tokens (reused until their margin, one login however many ask, on one store or two),
/// the provider proxy (only the provider's API, no redirect, no caller credentials, one re-login on a 401), and
/// credential health (a revoked key suspends, new credentials restore, transient faults change nothing).
@Suite struct CredentialsReadyTests {
    // MARK: - Access tokens

    @Test func aTokenIsReusedUntilItsMarginThenRenewed() async throws {
        try await SandboxHarness.run { h in
            let id = try await h.activeWrapp("tok-1")
            let key = try await h.partnerKey(["tenants:read", "tokens:issue"])
            let logins = await h.wrapp.loginCalls

            let first = try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key)
            #expect(first.status == 200)
            #expect(first.headers[.cacheControl] == "no-store")
            #expect(first.string("provider") == "wrapp")
            let token = try #require(first.string("token"))
            #expect(token.split(separator: ".").count == 3, "a JWT")
            #expect(first.value("use.headers.Authorization") as? String == "Bearer {token}")
            let expires = try #require(first.string("expires_at").flatMap { ISO8601DateFormatter().date(from: $0) })
            #expect(abs(expires.timeIntervalSinceNow - 86_400) < 120, "the JWT's own exp")
            #expect(await h.wrapp.loginCalls == logins + 1)

            // Handed out again, untouched, while more than the margin (1 h) of its life is left.
            h.clock.advance(22.5 * 3600)
            let again = try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key)
            #expect(again.string("token") == token)
            #expect(await h.wrapp.loginCalls == logins + 1)

            // Inside the margin: one fresh login, then that token is the one kept.
            h.clock.advance(1 * 3600)
            let renewed = try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key)
            let fresh = try #require(renewed.string("token"))
            #expect(fresh != token)
            #expect(await h.wrapp.loginCalls == logins + 2)
            #expect(try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key).string("token") == fresh)
            #expect(await h.wrapp.loginCalls == logins + 2)

            // A token the provider refused (it expired early, the customer logged out everywhere) is not handed out
            // again when the caller says so; saying it again later changes nothing once another is kept.
            await h.wrapp.expireJWTs()
            // (A token under a minute old is not replaced on a caller's word: another login would change nothing.)
            let young = try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key, json: #"{"replace":"\#(fresh)"}"#)
            #expect(young.string("token") == fresh)
            #expect(await h.wrapp.loginCalls == logins + 2)
            h.clock.advance(61)
            let replaced = try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key, json: #"{"replace":"\#(fresh)"}"#)
            let third = try #require(replaced.string("token"))
            #expect(third != fresh)
            #expect(await h.wrapp.loginCalls == logins + 3)
            #expect(try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key, json: #"{"replace":"\#(fresh)"}"#).string("token") == third)
            #expect(await h.wrapp.loginCalls == logins + 3)
            let bad = try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key, json: #"{"replace":"","other":1}"#)
            #expect(bad.status == 422)

            // Least privilege: the long-lived key is not this key's to read; every token handed out is audited.
            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials", key: key).status == 403)
            let audit = try await h.store.auditEntries(tenantID: id).filter { $0.action == "access_token.issued" }
            #expect(audit.count == 7)
            // Sealed at rest, never logged.
            let bytes = try await h.databaseBytes()
            for secret in [token, fresh, third] {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "a token is stored in plaintext")
                #expect(!h.logs.text.contains(secret), "a token was logged")
            }
            // Offboarding erases the kept token with the credentials.
            #expect(try await h.store.accessToken(tenantID: id) != nil)
            #expect(try await h.call(.delete, "/v1/tenants/\(id)").status == 200)
            #expect(try await h.store.accessToken(tenantID: id) == nil)
            #expect(try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key).status == 404)
        }
    }

    @Test func scopesAndProvidersRefuseWhatTheyMust() async throws {
        try await SandboxHarness.run { h in
            let id = try await h.activeWrapp("tok-2")
            let reader = try await h.partnerKey(["tenants:read", "credentials:read"])
            #expect(try await h.call(.post, "/v1/tenants/\(id)/access-token", key: reader).status == 403)
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details", key: reader).status == 403)
            let pending = try #require(try await h.createWrapp("tok-3").string("id"))
            let none = try await h.call(.post, "/v1/tenants/\(pending)/access-token")
            #expect(none.status == 404)
            #expect(none["code"] as? String == "credentials_not_available")
            #expect(try await h.call(.post, "/v1/tenants/ten_nope/access-token").status == 404)
        }
    }

    /// A thousand requests for one tenant's token at once make one `/login`: one flight per process, and across
    /// replicas the tenant's lease with the kept token read again under it.
    @Test(arguments: TestDatabase.all) func aThousandConcurrentTokenRequestsMakeOneLogin(_ database: TestDatabase) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-test-\(UUID().uuidString)")
        try await SandboxHarness.run(database: database, directory: directory) { h in
            let id = try await h.activeWrapp("burst-1")
            let logins = await h.wrapp.loginCalls
            // A login that takes a while, so the requests really arrive while it is in flight.
            await h.wrapp.setAnswerDelay(milliseconds: 300)
            let client = HTTPClient(configuration: .init(connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 250)))
            let first = h.gateway.address.loopbackURL
            do {
                if database == .postgres {
                    // A second replica on the same database (and the same simulated Wrapp): one login between the two.
                    try await SandboxHarness.run(database: database, directory: directory, simulators: h.gateway.simulators) { other in
                        try await Self.burst(client: client, replicas: [first, other.gateway.address.loopbackURL], tenantID: id, key: h.apiKey, count: 1000)
                    }
                } else {
                    try await Self.burst(client: client, replicas: [first], tenantID: id, key: h.apiKey, count: 1000)
                }
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
            #expect(await h.wrapp.loginCalls == logins + 1, "one /login for a thousand requests")
        }
    }

    /// Each request is retried, as a client must, when the gateway answers that it is overloaded (`503`: a connection
    /// to PostgreSQL not free within 3 s, as can happen with every other suite running beside this one on two cores)
    /// or that the tenant is busy (`409`): at most five times, and such answers must stay rare.
    static func burst(client: HTTPClient, replicas: [String], tenantID: String, key: String, count: Int) async throws {
        let tokens = try await withThrowingTaskGroup(of: (status: Int, token: String?, refused: [Int]).self) { group in
            for index in 0..<count {
                group.addTask {
                    var refused: [Int] = []
                    while true {
                        var request = HTTPClientRequest(url: replicas[index % replicas.count] + "/v1/tenants/\(tenantID)/access-token")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(key)")
                        let response = try await client.execute(request, timeout: .seconds(60))
                        let body = try await response.body.collect(upTo: 1 << 16)
                        let status = Int(response.status.code)
                        if [409, 503].contains(status), refused.count < 5 {
                            refused.append(status)
                            try await Task.sleep(for: .milliseconds(200))
                            continue
                        }
                        let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                        return (status, object?["token"] as? String, refused)
                    }
                }
            }
            var answers: [(status: Int, token: String?, refused: [Int])] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        #expect(tokens.allSatisfy { $0.status == 200 }, "statuses: \(Set(tokens.map(\.status)))")
        #expect(Set(tokens.compactMap(\.token)).count == 1, "every request got the same token")
        let refusals = tokens.flatMap(\.refused)
        #expect(refusals.count <= count / 20, "\(refusals.count) answers were 409 or 503 before a 200: \(Set(refusals))")
    }

    // MARK: - Proxy

    @Test func theProxyReachesOnlyTheProviderAPI() async throws {
        try await SandboxHarness.run { h in
            let id = try await h.activeWrapp("proxy-1")
            let key = try await h.partnerKey(["tenants:read", "provider:proxy"])
            let details = try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details", key: key)
            #expect(details.status == 200)
            #expect(details["partner_user_id"] as? String == "proxy-1")
            #expect(details.headers[.cacheControl] == "no-store")

            let before = await h.wrapp.calls
            for escape in [
                "%2e%2e/admin/api-keys", "invoices/%2E%2E/%2e%2e/x", ".%2e/x", "a%2F..%2Fb", "a%5Cb", "a%00b", "https:%2F%2Felsewhere.example/x",
                "https://elsewhere.example/x", "invoices//x", "./invoices", "invoices%3Fx=1", "invoices%23top", "a%252e%252e/b", "%zz",
            ] {
                let refused = try await h.call(.get, "/v1/tenants/\(id)/provider/\(escape)", key: key)
                #expect(refused.status == 422, "\(escape): \(refused.status)")
                let error = (refused["errors"] as? [[String: Any]])?.first
                #expect(error?["code"] as? String == "invalid_provider_path", "\(escape)")
            }
            // A path the router itself cuts short reaches no route at all.
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/", key: key).status != 200)
            #expect(await h.wrapp.calls == before, "nothing refused reached the provider")
            // An encoded slash is a separator, as a generated client sends a path parameter: still under the base.
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/invoices%2Fnone", key: key).status == 404)
            #expect(await h.wrapp.calls["/invoices/none"] == 1)

            // A redirect is refused, never followed: the JWT would go with it.
            let moved = try await h.call(.get, "/v1/tenants/\(id)/provider/moved", key: key)
            #expect(moved.status == 502)
            #expect(moved["code"] as? String == "provider_redirect_refused")
        }
    }

    @Test func theProxyAddsTheTokenAndDropsWhatTheCallerSent() async throws {
        try await SandboxHarness.run { h in
            let id = try await h.activeWrapp("proxy-2")
            let key = try await h.partnerKey(["provider:proxy"])
            var headers: HTTPFields = [:]
            headers[HTTPField.Name("X-Partner-API-Key")!] = "stolen-partner-key"
            headers[.cookie] = "session=abc"
            headers[.connection] = "X-Hop"
            headers[HTTPField.Name("X-Hop")!] = "1"
            headers[HTTPField.Name("X-Forwarded-For")!] = "10.0.0.1"
            headers[HTTPField.Name("Idempotency-Key")!] = "inv-1"
            let made = try await h.call(.post, "/v1/tenants/\(id)/provider/invoices?series=A&api_key=x", key: key, json: #"{"total":"12.30"}"#, headers: headers)
            #expect(made.status == 201)
            #expect(made.value("data.total") as? String == "12.30")
            let seen = try #require(await h.wrapp.lastInvoiceAPIRequest)
            #expect(seen.headers["authorization"]?.hasPrefix("Bearer ") == true)
            #expect(seen.headers["authorization"]?.contains(key) == false, "our API key never goes to the provider")
            for dropped in ["x-partner-api-key", "cookie", "x-hop", "x-forwarded-for"] {
                #expect(seen.headers[dropped] == nil, "\(dropped) was sent on")
            }
            #expect(seen.headers["idempotency-key"] == "inv-1")
            #expect(seen.headers["content-type"] == "application/json")
            #expect(seen.query["series"] == "A")
            let listed = try await h.call(.get, "/v1/tenants/\(id)/provider/invoices", key: key)
            #expect((listed.json["data"] as? [[String: Any]])?.count == 1)
            #expect(!h.logs.text.contains("stolen-partner-key"))
        }
    }

    /// A JWT that stopped working (expired, rotated) is not the customer's refusal: one fresh login, one retry.
    @Test func aProxied401MakesOneReloginAndOneRetry() async throws {
        try await SandboxHarness.run { h in
            let id = try await h.activeWrapp("proxy-3")
            let key = try await h.partnerKey(["provider:proxy"])
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details", key: key).status == 200)
            let logins = await h.wrapp.loginCalls
            let reads = await h.wrapp.calls["/tenant_details"] ?? 0
            h.clock.advance(61)
            await h.wrapp.expireJWTs()
            let retried = try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details", key: key)
            #expect(retried.status == 200)
            #expect(await h.wrapp.loginCalls == logins + 1, "one fresh login")
            #expect(await h.wrapp.calls["/tenant_details"] == reads + 2, "the call, then one retry")
            #expect(try await h.tenant(id).string("state") == "active")
        }
    }

    /// The provider's refusals are its answer: a `429` and its `Retry-After` come back as they are, and nothing is
    /// tried again by the proxy (a `POST` above all); a body over 1 MiB never leaves.
    @Test func theProxyPassesTheProvidersAnswersThroughAndNeverRetriesThem() async throws {
        try await SandboxHarness.run { h in
            let id = try await h.activeWrapp("proxy-4")
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/invoices").status == 200)
            await h.wrapp.add(SimulatedFault(operation: "invoices", status: 429, style: .message, retryAfter: 7))
            let limited = try await h.call(.post, "/v1/tenants/\(id)/provider/invoices", json: #"{"total":"1.00"}"#)
            #expect(limited.status == 429)
            #expect(limited.headers[.retryAfter] == "7")
            await h.wrapp.add(SimulatedFault(operation: "invoices", status: 503, style: .html))
            let unavailable = try await h.call(.post, "/v1/tenants/\(id)/provider/invoices", json: #"{"total":"1.00"}"#)
            #expect(unavailable.status == 503)
            #expect(unavailable.headers[.contentType]?.contains("text/html") == true, "the provider's own page")
            #expect(await h.wrapp.calls["/invoices"] == 3, "each call reached Wrapp once, none was repeated")
            let listed = try await h.call(.get, "/v1/tenants/\(id)/provider/invoices")
            #expect((listed.json["data"] as? [[String: Any]])?.isEmpty == true, "no invoice was made behind the caller's back")

            let huge = "{\"x\":\"" + String(repeating: "a", count: (1 << 20) + 16) + "\"}"
            let tooLarge = try await h.call(.post, "/v1/tenants/\(id)/provider/invoices", json: huge)
            #expect(tooLarge.status == 413)
            #expect(await h.wrapp.calls["/invoices"] == 4, "the large body never went")
        }
    }

    /// What the provider's answer may carry to the caller is an allowlist: no cookie, no CORS or HSTS on the gateway's
    /// origin, never cached; and no more calls at once than the proxy's cap, so a burst never starves onboarding.
    @Test func theProxyPassesOnlySafeHeadersAndCapsCallsAtOnce() async throws {
        try await SandboxHarness.run(environment: ["GATEWAY_PROXY_MAX_CONCURRENT": "1"]) { h in
            let id = try await h.activeWrapp("proxy-6")
            let answer = try await h.call(.get, "/v1/tenants/\(id)/provider/headers")
            #expect(answer.status == 200)
            #expect(answer.headers[.setCookie] == nil)
            #expect(answer.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == nil)
            #expect(answer.headers[HTTPField.Name("Strict-Transport-Security")!] == nil)
            #expect(answer.headers[.cacheControl] == "no-store", "never cached, whatever the provider says")
            #expect(answer.headers[.eTag] == "\"v1\"")
            #expect(answer.headers[HTTPField.Name("X-RateLimit-Remaining")!] == "41")

            await h.wrapp.setAnswerDelay(milliseconds: 600)
            async let first = h.callOnNewConnection(.get, "/v1/tenants/\(id)/provider/invoices")
            try await Task.sleep(for: .milliseconds(150))
            let second = try await h.callOnNewConnection(.get, "/v1/tenants/\(id)/provider/invoices")
            #expect(second.status == 503)
            #expect(second["code"] as? String == "proxy_busy")
            #expect(second.headers[.retryAfter] == "1")
            #expect(try await first.status == 200)
        }
    }

    /// A `401` that stands asks for one credential check, which decides (here: the key works, so nothing changes);
    /// more of them soon after that check put the next one off (15 minutes after a working check), never drop it.
    /// Once the tenant is revoked, calls are refused up front.
    @Test func standing401sAskForAtMostOneCheckAMinute() async throws {
        try await SandboxHarness.run { h in
            let id = try await h.activeWrapp("proxy-5")
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/invoices").status == 200)
            // A 401 of Wrapp's own for this one route: it stands after the fresh login and the retry.
            h.clock.advance(61)
            await h.wrapp.add(SimulatedFault(operation: "invoices", status: 401, style: .message, times: 2))
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/invoices").status == 401)
            #expect(await h.wrapp.pendingFaults == 0, "the call and its one retry")
            #expect(await h.step() == 1, "the credential check was made due")
            #expect(try await h.tenant(id).string("state") == "active", "the check found the key working")
            let checkedAt = h.clock.now()
            h.clock.advance(10)
            await h.wrapp.add(SimulatedFault(operation: "invoices", status: 401, style: .message, times: 1))
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/invoices").status == 401)
            #expect(await h.step() == 0, "checked seconds ago and found working: the next check is put off")
            let queued = try #require(try await h.store.queued(tenantID: id).first)
            #expect(abs(queued.runAt.timeIntervalSince(checkedAt.addingTimeInterval(900))) < 2, "put off to 15 minutes after the check, not a day")
            // A burst of 401s meanwhile asks for that check once, not once each.
            let asked = h.logs.text.components(separatedBy: "credential check asked for").count
            await h.wrapp.add(SimulatedFault(operation: "invoices", status: 401, style: .message, times: 3))
            for _ in 0..<3 { #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/invoices").status == 401) }
            #expect(h.logs.text.components(separatedBy: "credential check asked for").count == asked, "already asked for")
            for _ in 0..<5 { #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/invoices").status == 200) }

            // The customer revokes their key meanwhile: the check that was put off finds it.
            await h.wrapp.revokeKey("proxy-5")
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details").status == 401)
            #expect(await h.advance(900) == 1)
            #expect(try await h.tenant(id).string("state") == "suspended")
            let logins = await h.wrapp.loginCalls
            for _ in 0..<5 {
                #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details").status == 409, "refused up front once revoked")
            }
            #expect(await h.step() == 0, "no check is due again")
            #expect(await h.wrapp.loginCalls == logins, "a revoked tenant's calls cost Wrapp nothing")
        }
    }

    @Test func magniFinanceTokensAndProxyCarryTheCompanysToken() async throws {
        try await SandboxHarness.run { h in
            let created = try await h.createMagni("mf-1", taxID: "513495886")
            let id = try #require(created.string("id"))
            #expect(created.string("state") == "active")
            let company = try #require(await h.magni.partner("513495886")?.tokens.first)
            let token = try await h.call(.post, "/v1/tenants/\(id)/access-token")
            #expect(token.status == 200)
            #expect(token.string("token") == company)
            #expect(token.value("expires_at") is NSNull)
            #expect(token.value("use.headers.Token") as? String == "{token}")
            #expect(token.value("use.headers.Email") as? String == h.gateway.config.providers[.magnifinance]?.values["email"])
            let client = try await h.call(.get, "/v1/tenants/\(id)/provider/client?countryCode=PT&taxId=513495886")
            #expect(client.status == 200)
            #expect(client.value("Object.TaxId") as? String == "513495886")
        }
    }

    @Test func invoiceXpressHandsOutNoTokenButProxiesWithTheKey() async throws {
        try await SandboxHarness.run { h in
            let created = try await h.call(.post, "/v1/tenants", json: """
                {"provider":"invoicexpress","external_id":"ix-1","profile":{"email":"ana@example.pt","contact_name":"Ana Silva",
                 "company":{"legal_name":"Ana Lda","tax_id":"513495886","country":"PT"}}}
                """)
            let id = try #require(created.string("id"))
            #expect(created.string("state") == "active")
            let token = try await h.call(.post, "/v1/tenants/\(id)/access-token")
            #expect(token.status == 409)
            #expect(token["code"] as? String == "access_tokens_not_supported")
            let clients = try await h.call(.get, "/v1/tenants/\(id)/provider/clients.json?page=1&api_key=guess")
            #expect(clients.status == 200, "\(clients.text)")
        }
    }

    // MARK: - Credential health

    @Test(arguments: TestDatabase.all) func aRevokedKeySuspendsAndNewCredentialsRestore(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let id = try await h.activeWrapp("health-1")
            let key = try await h.partnerKey(["tenants:read", "tokens:issue", "provider:proxy"])
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details", key: key).status == 200)

            // The customer rotates their key at Wrapp: the proxied call's 401 stands (the re-login is refused too)...
            let rotated = try #require(await h.wrapp.revokeKey("health-1"))
            let refused = try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details", key: key)
            #expect(refused.status == 401)
            #expect(try await h.tenant(id).string("state") == "active", "a 401 alone decides nothing")
            // ...and asks for a credential check now, which sees the refusal.
            #expect(await h.step() == 1)
            let suspended = try await h.tenant(id)
            #expect(suspended.string("state") == "suspended")
            #expect(suspended.string("last_error.code") == "credentials_revoked")
            #expect(suspended.string("next_action.type") == "provide_credentials")
            let blocked = try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key)
            #expect(blocked.status == 409)
            #expect(blocked["code"] as? String == "credentials_revoked")
            // Checked again the next day, still refused: no second event. The console says what the check found.
            #expect(await h.advance(3600) == 0, "a key known dead is not tried hourly")
            #expect(await h.advance(86_400 * 1.25) == 1)
            let (cookie, _) = try await ConsoleTests.signIn(h)
            let page = try await h.call(.get, "/console/tenants/\(id)", key: nil, headers: [.cookie: cookie]).text
            #expect(page.contains("<strong>refused</strong>"))

            let supplied = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"wrapp_user_id":"\#(rotated.wrappUserID)","api_key":"\#(rotated.apiKey)"}"#)
            #expect(supplied.status == 200, "\(supplied.text)")
            #expect(supplied.string("state") == "active")
            #expect(supplied.value("last_error") is NSNull)
            #expect(try await h.store.accessToken(tenantID: id) == nil, "the old key's token went with it")
            let types = try await h.events(id).compactMap { $0["type"] as? String }
            #expect(types.filter { $0 == "tenant.credentials_invalid" }.count == 1)
            #expect(types.last == "tenant.credentials_restored")
            let invalid = try #require(try await h.events(id).first { $0["type"] as? String == "tenant.credentials_invalid" })
            #expect((invalid["data"] as? [String: Any]).flatMap { ($0["tenant"] as? [String: Any])?["state"] as? String } == "suspended")
            // The new key gets a token of its own (the old one went with the old key).
            #expect(try await h.call(.post, "/v1/tenants/\(id)/access-token", key: key).status == 200)
            #expect(try await h.call(.get, "/v1/tenants/\(id)/provider/tenant_details", key: key).status == 200)
        }
    }

    @Test func aDailyCheckReadsProviderDetailsAndAWithdrawnPartnershipSuspends() async throws {
        try await SandboxHarness.run { h in
            let wrapp = try await h.activeWrapp("health-2")
            #expect(await h.advance(86_400 * 1.25) >= 1)
            let checked = try await h.tenant(wrapp)
            #expect(checked.string("state") == "active")
            #expect(checked.value("provider_details.plan_name") as? String == "Sandbox Pro")
            #expect(checked.value("provider_details.issue_invoice_status") as? Bool == true)
            #expect(checked.string("provider_details.read_at") != nil)
            // The console shows the check's result and the details.
            let (cookie, _) = try await ConsoleTests.signIn(h)
            let page = try await h.call(.get, "/console/tenants/\(wrapp)", key: nil, headers: [.cookie: cookie]).text
            #expect(page.contains("Credential health") && page.contains("<strong>working</strong>"))
            #expect(page.contains("plan_name=Sandbox Pro"))

            let magni = try #require(try await h.createMagni("health-3", taxID: "503504564").string("id"))
            #expect(await h.magni.withdraw("503504564"))
            _ = await h.advance(86_400 * 1.25)
            let withdrawn = try await h.tenant(magni)
            #expect(withdrawn.string("state") == "suspended")
            #expect(withdrawn.string("last_error.code") == "credentials_revoked")
            #expect(withdrawn.string("next_action.type") == "await_approval")
            // A company that must approve again is asked after as approvals are (from 30 s, backing off), not daily.
            let next = try #require(try await h.store.queued(tenantID: magni).first)
            #expect(next.runAt.timeIntervalSince(h.clock.now()) < 3600)
            #expect(await h.magni.approve("503504564"))
            _ = await h.advance(3600)
            let restored = try await h.tenant(magni)
            #expect(restored.string("state") == "active")
            let types = try await h.events(magni).compactMap { $0["type"] as? String }
            #expect(types.suffix(3) == ["tenant.state_changed", "tenant.credentials_available", "tenant.credentials_restored"] || types.contains("tenant.credentials_restored"))
            let token = try await h.call(.post, "/v1/tenants/\(magni)/access-token")
            #expect(token.string("token") == (await h.magni.partner("503504564")?.tokens.first), "the company's new token")
        }
    }

    /// A customer who re-links at Wrapp after revoking their key: the webhook's key, verified and bound to them, may
    /// take the place of the refused one (never of a working one), and the tenant is restored.
    @Test func aRelinkWebhookRestoresARevokedTenant() async throws {
        try await SandboxHarness.run { h in
            let id = try await h.activeWrapp("relink-1")
            await h.wrapp.revokeKey("relink-1")
            _ = await h.advance(86_400 * 1.25)
            #expect(try await h.tenant(id).string("state") == "suspended")
            #expect(await h.wrapp.completeOnboarding("relink-1") == 200, "Wrapp posts the user's (new) key again")
            await h.step()
            let restored = try await h.tenant(id)
            #expect(restored.string("state") == "active")
            let types = try await h.events(id).compactMap { $0["type"] as? String }
            #expect(types.last == "tenant.credentials_restored")
            let credentials = try await h.call(.get, "/v1/tenants/\(id)/credentials")
            #expect(credentials.json["api_key"] as? String == (await h.wrapp.user("relink-1"))?.apiKey)
        }
    }

    /// Half the provider's answers fail (5xx, HTML, garbage, 429, resets, late): checks repeat for days, and no
    /// tenant is suspended, no event is emitted.
    @Test func transientFaultsDuringHealthChecksChangeNoState() async throws {
        try await SandboxHarness.run { h in
            var ids: [String] = []
            for index in 0..<4 { ids.append(try await h.activeWrapp("flaky-\(index)")) }
            ids.append(try #require(try await h.createMagni("flaky-mf", taxID: "502011475").string("id")))
            let eventsBefore = try await h.call(.get, "/v1/events?limit=100").json["data"] as? [[String: Any]] ?? []
            await h.wrapp.setChaos(rate: 0.5, seed: 7, lateDelayMilliseconds: 2500, callerTimeoutMilliseconds: 2000)
            await h.magni.setChaos(rate: 0.5, seed: 7, lateDelayMilliseconds: 2500, callerTimeoutMilliseconds: 2000)
            var ran = 0
            for _ in 0..<6 { ran += await h.advance(86_400 * 1.25) }
            #expect(ran >= 6 * ids.count, "the checks ran")
            #expect(await h.wrapp.faultsInjected + h.magni.faultsInjected > 5, "faults were served")
            for id in ids {
                let tenant = try await h.tenant(id)
                #expect(tenant.string("state") == "active", "\(id)")
                #expect(tenant.value("last_error") is NSNull)
            }
            let eventsAfter = try await h.call(.get, "/v1/events?limit=100").json["data"] as? [[String: Any]] ?? []
            #expect(eventsAfter.count == eventsBefore.count, "no event")
        }
    }
}

extension SandboxHarness {
    /// A Wrapp tenant taken to `active` the way a customer does it; its id.
    func activeWrapp(_ externalID: String) async throws -> String {
        let id = try #require(try await createWrapp(externalID).string("id"))
        #expect(await wrapp.completeOnboarding(externalID) == 200)
        await step()
        #expect(try await tenant(id).string("state") == "active")
        return id
    }

    /// A partner key with these scopes, made through the admin API.
    func partnerKey(_ scopes: [String]) async throws -> String {
        let list = scopes.map { "\"\($0)\"" }.joined(separator: ",")
        let made = try await call(.post, "/admin/api-keys", key: gateway.config.adminToken, json: #"{"name":"k-\#(UUID().uuidString.prefix(8))","scopes":[\#(list)]}"#)
        return try #require(made.string("key"))
    }
}
