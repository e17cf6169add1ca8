import Foundation
import GatewayCore
import GatewayTesting
import HTTPTypes
import Providers
import Testing

/// The trust boundaries of `docs/security.md`, through HTTP: one customer cannot reach another company's tokens,
/// a huge bad request makes a bounded answer, and a provider's numbers cannot park work for good or trap.
@Suite struct TrustBoundaryTests {
    /// A second live tenant for a company another holds is refused (`409`, naming nobody). Once the first is
    /// offboarded, a new tenant naming the tax id still gets no tokens: the partnership is not its own. Only an
    /// operator's audited resubmission (the transfer) takes it over.
    @Test(arguments: TestDatabase.all) func aCustomerCannotObtainAnotherCompanysTokens(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let a = try await h.createMagni("co-a", taxID: "513495886")
            #expect(a.string("state") == "active")
            let aID = try #require(a.string("id"))

            let b = try await h.call(.post, "/v1/tenants", json: """
                {"provider":"magnifinance","external_id":"co-b","profile":{"email":"mallory@example.pt","company":{"tax_id":"513495886","country":"PT"}}}
                """)
            #expect(b.status == 409)
            #expect(b["code"] as? String == "company_already_onboarded")
            #expect(b.headers[.contentType] == "application/problem+json")
            #expect(!b.text.contains(aID) && !b.text.contains("co-a") && !b.text.contains("ana@example.pt"), "the answer names no other customer")
            #expect(await h.magni.addPartnerCalls["513495886"] == 1, "the refused create never reached MagniFinance")

            #expect(try await h.call(.delete, "/v1/tenants/\(aID)").status == 200)
            let again = try await h.call(.post, "/v1/tenants", json: """
                {"provider":"magnifinance","external_id":"co-b","profile":{"email":"mallory@example.pt","company":{"tax_id":"513495886","country":"PT"}}}
                """)
            #expect(again.string("state") == "failed")
            #expect(again.string("last_error.code") == "company_already_onboarded")
            let bID = try #require(again.string("id"))
            #expect(try await h.call(.get, "/v1/tenants/\(bID)/credentials").status == 404)
            let refreshed = try await h.call(.post, "/v1/tenants/\(bID)/refresh")
            #expect(refreshed.string("state") == "failed", "a refresh does not fetch the company's tokens for it")
            #expect(try await h.call(.get, "/v1/tenants/\(bID)/credentials").status == 404)
            #expect(await h.magni.addPartnerCalls["513495886"] == 1, "nothing was registered for the second customer")

            // The transfer: an operator who checked the customer owns the company resubmits it.
            let admin = try #require(h.gateway.config.adminToken)
            let transferred = try await h.call(.post, "/admin/tenants/\(bID)/resubmit", key: admin)
            #expect(transferred.status == 200)
            #expect(try await h.tenant(bID).string("state") == "active")
            let audit = try await h.call(.get, "/admin/audit?tenant_id=\(bID)", key: admin)
            #expect(audit.text.contains("tenant.resubmitted"))
        }
    }

    /// A correction may not move a tenant onto a company another live tenant holds, even one whose own AddPartner is
    /// still in flight (found by an attack: a failed tenant PATCHed onto such a company and retried got its tokens).
    @Test(arguments: TestDatabase.all) func aCorrectionCannotMoveATenantOntoAnotherTenantsCompany(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            await h.magni.add(SimulatedFault(operation: "partner", status: 200, style: .lateSuccess, delayMilliseconds: 2600))
            let a = try await h.createMagni("co-a", taxID: "513495886")
            #expect(a.string("state") == "pending", "A's AddPartner answer is lost: its outcome is unknown")
            let b = try await h.createMagni("co-b", taxID: "500000000")
            let bID = try #require(b.string("id"))
            let moved = try await h.call(.patch, "/v1/tenants/\(bID)", json: #"{"profile":{"company":{"tax_id":"513495886"}}}"#)
            #expect(moved.status == 409)
            #expect(moved["code"] as? String == "company_already_onboarded")
            #expect(try await h.tenant(bID).string("profile.company.tax_id") == "500000000", "nothing changed")
        }
    }

    /// A first attempt whose look before AddPartner fails (or is never made: circuit open, rate limit, a crash)
    /// records nothing, so the next attempt is a first one again and finds the partnership someone else's — never a
    /// "reconcile" that takes the tokens as this tenant's own.
    @Test func aFailedLookBeforeTheFirstSubmissionLeavesNothingToReconcile() async throws {
        try await SandboxHarness.run { h in
            let a = try await h.createMagni("co-a", taxID: "513495886")
            #expect(try await h.call(.delete, "/v1/tenants/\(try #require(a.string("id")))").status == 200)
            await h.magni.add(SimulatedFault(operation: "partner/accessTokens", status: 503, times: 1))
            let b = try await h.createMagni("co-b", taxID: "513495886")
            #expect(b.status == 202)
            let id = try #require(b.string("id"))
            _ = await h.advance(120)
            let tenant = try await h.tenant(id)
            #expect(tenant.string("state") == "failed")
            #expect(tenant.string("last_error.code") == "company_already_onboarded")
            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials").status == 404)
            #expect(await h.magni.addPartnerCalls["513495886"] == 1)
        }
    }

    /// Someone else's partnership request, still waiting for the company's approval, is not this tenant's: when the
    /// company approves it, this tenant gets nothing.
    @Test func anApprovalRequestedBySomeoneElseIsNotThisTenants() async throws {
        try await SandboxHarness.run { h in
            await h.magni.markExistingClient("500000000")
            let first = try await h.createMagni("co-1", taxID: "500000000")
            #expect(first.string("next_action.type") == "await_approval")
            #expect(try await h.call(.delete, "/v1/tenants/\(try #require(first.string("id")))").status == 200)

            let second = try await h.createMagni("co-2", taxID: "500000000")
            #expect(second.string("state") == "failed")
            #expect(second.string("last_error.code") == "company_already_onboarded")
            #expect(await h.magni.approve("500000000"))
            let id = try #require(second.string("id"))
            #expect(try await h.call(.post, "/v1/tenants/\(id)/refresh").string("state") == "failed")
            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials").status == 404)
        }
    }

    /// 90,000 unknown keys: a 422 that lists 50 and says how many more, kept (under its size cap) for a replay.
    @Test func aHugeBadRequestGetsABoundedAnswer() async throws {
        try await SandboxHarness.run { h in
            var body = #"{"provider":"wrapp","external_id":"x","profile":{"email":"a@b.gr","phone":"+302101234567"}"#
            for index in 0..<90_000 { body += #","k\#(index)":1"# }
            body += "}"
            let headers: HTTPFields = [.init("Idempotency-Key")!: "huge-1"]
            let answer = try await h.call(.post, "/v1/tenants", json: body, headers: headers)
            #expect(answer.status == 422)
            #expect((answer["errors"] as? [Any])?.count == 50)
            #expect((answer["detail"] as? String)?.contains("89950 more") == true)
            #expect(answer.body.count < 16 * 1024)
            let replay = try await h.call(.post, "/v1/tenants", json: body, headers: headers)
            #expect(replay.status == 422)
            #expect(replay.headers[.init("Idempotent-Replayed")!] == "true")
        }
    }

    /// An Idempotency-Key outlives offboarding: the retry is answered (the tenant's id, its state, nothing personal)
    /// instead of creating a second tenant.
    @Test(arguments: TestDatabase.all) func anIdempotencyKeyOutlivesOffboarding(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database) { h in
            let json = #"{"provider":"magnifinance","external_id":"co-k","profile":{"email":"ana@example.pt","company":{"tax_id":"513495886","country":"PT"}}}"#
            let headers: HTTPFields = [.init("Idempotency-Key")!: "create-co-k"]
            let created = try await h.call(.post, "/v1/tenants", json: json, headers: headers)
            #expect(created.status == 201)
            let id = try #require(created.string("id"))
            #expect(try await h.call(.delete, "/v1/tenants/\(id)").status == 200)
            let retry = try await h.call(.post, "/v1/tenants", json: json, headers: headers)
            #expect(retry.status == 201)
            #expect(retry.headers[.init("Idempotent-Replayed")!] == "true")
            #expect(retry.string("id") == id && retry.string("state") == "offboarded")
            #expect(!retry.text.contains("ana@example.pt"))
            let page = try await h.call(.get, "/v1/tenants?external_id=co-k")
            #expect((page["data"] as? [[String: Any]])?.filter { $0["state"] as? String != "offboarded" }.isEmpty == true, "no second tenant")
        }
    }

    /// AddPartner's answer is lost to a timeout while MagniFinance goes on and registers the company. Nothing is asked
    /// of the provider, and nothing concluded, until the settle period has passed; then the reconcile finds the
    /// company registered and no second AddPartner is made.
    @Test func anUnknownOutcomeSettlesBeforeTheProviderIsAskedAgain() async throws {
        try await SandboxHarness.run(environment: ["GATEWAY_SETTLE_SECONDS": "30"]) { h in
            await h.magni.add(SimulatedFault(operation: "partner", status: 200, style: .lateSuccess, delayMilliseconds: 2600))
            let created = try await h.createMagni("co-s", taxID: "513495886")
            #expect(created.status == 202)
            let id = try #require(created.string("id"))
            #expect(await h.eventually { await h.magni.addPartnerCalls["513495886"] == 1 }, "the late AddPartner went through at MagniFinance")
            let asked = await h.magni.calls["partner/accessTokens"] ?? 0
            _ = await h.advance(20)
            #expect(await h.magni.calls["partner/accessTokens"] ?? 0 == asked, "nothing is read while the lost call may still be running")
            #expect(try await h.tenant(id).string("state") == "pending")
            _ = await h.advance(30)
            #expect(try await h.tenant(id).string("state") == "active")
            #expect(await h.magni.addPartnerCalls["513495886"] == 1, "never registered twice")
        }
    }

    /// `Retry-After: inf` from MagniFinance used to park the work forever and trap the process when the console
    /// showed when it was due. Now the wait is capped, and the console shows the tenant.
    @Test func aProvidersRetryAfterOfInfinityParksNothingAndCrashesNothing() async throws {
        try await SandboxHarness.run { h in
            let fault = try await h.call(.post, "/sandbox/test-helpers/magnifinance/faults", key: nil,
                json: #"{"operation":"partner/accessTokens","status":429,"retry_after_header":"inf"}"#)
            #expect(fault.status == 200, "the documented helper field is taken: \(fault.text)")
            let created = try await h.createMagni("co-inf", taxID: "513495886")
            #expect(created.status == 202)
            let id = try #require(created.string("id"))
            let next = try #require(try await h.store.queued(tenantID: id).first)
            #expect(next.runAt.timeIntervalSince(h.clock.now()) <= 3600, "capped at GATEWAY_RETRY_AFTER_CAP_SECONDS")
            let admin = try #require(h.gateway.config.adminToken)
            let signIn = try await h.call(.post, "/console/sign-in", key: nil, json: "token=\(admin)", headers: [.contentType: "application/x-www-form-urlencoded"])
            let cookie = try #require(signIn.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            let page = try await h.call(.get, "/console/tenants/\(id)", key: nil, headers: [.cookie: cookie])
            #expect(page.status == 200)
            #expect(try await h.call(.get, "/admin/tenants/\(id)", key: admin).status == 200)
            _ = await h.advance(3601)
            #expect(try await h.tenant(id).string("state") == "active", "the work ran once the capped wait was over")
        }
    }

    /// A redirect from a provider is a failure the logs can read, never followed: the partner key stays home.
    @Test func providerRedirectsAreNotFollowed() async throws {
        try await SandboxHarness.run { h in
            let client = ProviderHTTPClient.live(timeout: 2)
            // The console's sign-in redirect (303) stands in for a provider answering 3xx.
            let result = await client.send(.GET, h.gateway.address.publicURL + "/console", headers: [("X-PARTNER-API-KEY", "secret-not-to-leak")])
            guard case .failure(.unreachable(let reason)) = result else {
                Issue.record("a 3xx must be a failure, got \(result)")
                return
            }
            #expect(reason.contains("redirect refused: 303"))
        }
    }
}

/// Numbers from providers and stored rows are bounded before use; none traps.
@Suite struct BoundsTests {
    @Test func retryAfterIsReadOnlyAsRFC9110SaysAndCapped() {
        func retryAfter(_ value: String, cap: TimeInterval = 3600) -> TimeInterval? {
            ProviderResponse(status: 429, headers: [("Retry-After", value)], body: Data(), retryAfterCap: cap).retryAfter()
        }
        #expect(retryAfter("inf") == nil)
        #expect(retryAfter("nan") == nil)
        #expect(retryAfter("-5") == nil)
        #expect(retryAfter("1e308") == nil)
        #expect(retryAfter(String(repeating: "9", count: 64)) == 3600)
        #expect(retryAfter(String(repeating: "9", count: 65)) == nil)
        #expect(retryAfter("120") == 120)
        #expect(retryAfter("999999999", cap: 60) == 60)
        #expect(retryAfter("Fri, 31 Dec 9999 23:59:59 GMT")! <= 3600)
        #expect(retryAfter("garbage") == nil)
    }

    @Test func outsideNumbersNeverTrap() {
        #expect(Bounds.wholeSeconds(.infinity) == Int(Bounds.latestUnixTime))
        #expect(Bounds.wholeSeconds(-.infinity) == Int(Bounds.earliestUnixTime))
        #expect(Bounds.wholeSeconds(.nan) == 0)
        #expect(Bounds.interval(.infinity, cap: 3600) == 3600)
        #expect(Bounds.interval(.nan, cap: 3600) == 0)
        #expect(Bounds.date(unix: .infinity).timeIntervalSince1970 == Bounds.latestUnixTime)
        var schedule = WorkSchedule()
        schedule.maxRetryAfter = 3600
        #expect(schedule.delay(for: .submit(retryAfter: .infinity), attempts: 1, unit: 0.5)! <= 3600)
        #expect(schedule.delay(for: .check(.awaiting, retryAfter: 1e300), attempts: 0, unit: 0.5)! <= 3600)
    }
}

/// `/admin` is throttled and audited per address like the console's sign-in: five wrong admin tokens, then 429
/// (even for the right one) until the window passes. A partner key in the wrong place is refused but not counted.
@Suite struct AdminThrottleTests {
    @Test func wrongAdminTokensAreThrottledAndAudited() async throws {
        try await SandboxHarness.run { h in
            let admin = try #require(h.gateway.config.adminToken)
            for _ in 0..<3 { #expect(try await h.call(.get, "/admin/stats", key: h.apiKey).status == 403) }
            for attempt in 1...5 {
                #expect(try await h.call(.get, "/admin/stats", key: "wrong-admin-token-\(attempt)-xxxxxxxxxxxx").status == 401)
            }
            let held = try await h.call(.get, "/admin/stats", key: admin)
            #expect(held.status == 429)
            #expect(held["code"] as? String == "rate_limited")
            #expect(held.headers[.retryAfter] != nil)
            let actions = try await h.store.auditEntries(tenantID: nil).map(\.action)
            #expect(actions.filter { $0 == "admin.auth_failed" }.count == 5)
            #expect(actions.contains("admin.auth_throttled"))
            h.clock.advance(301)
            #expect(try await h.call(.get, "/admin/stats", key: admin).status == 200)
        }
    }
}

/// A connection that sends nothing is closed after GATEWAY_IDLE_TIMEOUT_SECONDS: idle keep-alives and clients that
/// open connections and wait never pile up.
@Suite struct IdleTimeoutTests {
    @Test func anIdleConnectionIsClosed() async throws {
        try await SandboxHarness.run(environment: ["GATEWAY_IDLE_TIMEOUT_SECONDS": "1"]) { h in
            let url = try #require(URLComponents(string: h.gateway.address.loopbackURL))
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(fd >= 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(try #require(url.port)).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            // Nothing is sent. The gateway closes its end after 1 s: recv answers 0 (end of stream), not a timeout.
            var timeout = timeval(tv_sec: 6, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var byte: UInt8 = 0
            let read = recv(fd, &byte, 1, 0)
            #expect(read == 0, "the gateway closed the idle connection (-1 is recv giving up after 6 s)")
        }
    }
}
