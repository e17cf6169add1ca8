import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// The partner API's rules: authentication, validation, natural key, 201/202/200/409, lists, limits.
@Suite struct TenantsAPITests {
    @Test func keysAreRequiredAndCheckedAndRequestIDsTravel() async throws {
        try await SandboxHarness.run { h in
            let none = try await h.call(.get, "/v1/tenants", key: nil)
            #expect(none.status == 401)
            #expect(none.headers[.contentType] == "application/problem+json")
            #expect(none.headers[.wwwAuthenticate] == "Bearer")
            #expect(none["code"] as? String == "unauthorized")
            #expect((none["request_id"] as? String) == none.headers[.init("X-Request-ID")!])
            #expect(try await h.call(.get, "/v1/tenants", key: h.apiKey + "x").status == 401)
            #expect(try await h.call(.get, "/v1/tenants", key: "Basic \(h.apiKey)").status == 401)
            let traced = try await h.call(.get, "/v1/tenants", headers: [.init("X-Request-ID")!: "req-abc-123"])
            #expect(traced.status == 200)
            #expect(traced.headers[.init("X-Request-ID")!] == "req-abc-123")
            #expect(try await h.call(.get, "/v1/nothing-here").status == 404)
        }
    }

    @Test func badInputIsRefusedPreciselyAndStoresNothing() async throws {
        try await SandboxHarness.run { h in
            let bad = try await h.call(.post, "/v1/tenants", json: """
                {"provider":"magnifinance","external_id":"co-x","color":"red","metadata":{"n":1},
                 "profile":{"email":"nope","company":{"tax_id":"513495887","country":"Portugal","legal_name":"\(String(repeating: "L", count: 51))"}}}
                """)
            #expect(bad.status == 422)
            #expect(bad["code"] as? String == "validation_failed")
            let fields = Set((bad["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
            #expect(fields == ["color", "metadata.n", "profile.email", "profile.company.country", "profile.company.legal_name"])

            let badNIF = try await h.createMagni("co-y", taxID: "513495887")
            #expect(badNIF.status == 422)
            #expect((badNIF["errors"] as? [[String: Any]])?.first?["code"] as? String == "invalid_tax_id")
            let wrappWithoutPhone = try await h.call(.post, "/v1/tenants", json: #"{"provider":"wrapp","external_id":"c","profile":{"email":"a@b.gr"}}"#)
            #expect((wrappWithoutPhone["errors"] as? [[String: Any]])?.map { $0["field"] as? String } == ["profile.phone"])
            let unknownProvider = try await h.call(.post, "/v1/tenants", json: #"{"provider":"acme","external_id":"c","profile":{}}"#)
            #expect((unknownProvider["errors"] as? [[String: Any]])?.first?["field"] as? String == "provider")

            #expect(try await h.call(.post, "/v1/tenants", json: "{oops").status == 400)
            #expect(try await h.call(.post, "/v1/tenants", json: "[]").status == 400)
            #expect(try await h.call(.post, "/v1/tenants", json: "{}", headers: [.contentType: "text/plain"]).status == 415)
            let huge = #"{"provider":"wrapp","external_id":"\#(String(repeating: "x", count: 1_100_000))"}"#
            let tooLarge = try await h.call(.post, "/v1/tenants", json: huge)
            #expect(tooLarge.status == 413)
            #expect(tooLarge["code"] as? String == "payload_too_large")

            #expect((try await h.call(.get, "/v1/tenants").json["data"] as? [Any])?.isEmpty == true)
            let wrappCalls = await h.wrapp.calls
            let magniCalls = await h.magni.addPartnerCalls
            #expect(wrappCalls.isEmpty && magniCalls.isEmpty, "no provider was called")
        }
    }

    @Test func theSameCustomerAgainIsTheSameTenant() async throws {
        try await SandboxHarness.run { h in
            let first = try await h.createWrapp("cust-1")
            #expect(first.status == 201)
            let again = try await h.createWrapp("cust-1")
            #expect(again.status == 200)
            #expect(again.string("id") == first.string("id"))
            let different = try await h.createWrapp("cust-1", email: "other@example.com")
            #expect(different.status == 409)
            #expect(different["code"] as? String == "tenant_exists")
            #expect((different["detail"] as? String)?.contains("PATCH /v1/tenants/\(first.string("id") ?? "")") == true)
            #expect(try await h.createMagni("cust-1", taxID: "513495886").status == 201, "the key is (provider, external_id)")
        }
    }

    @Test func anUnreachableProviderAnswers202AndTheGatewayKeepsTrying() async throws {
        try await SandboxHarness.run { h in
            await h.wrapp.add(SimulatedFault(operation: "external_login", status: 503, style: .html, times: 2))
            let accepted = try await h.createWrapp("cust-2")
            #expect(accepted.status == 202)
            #expect(accepted.string("state") == "pending")
            #expect(accepted.string("last_error.code") == "provider_unavailable")
            #expect((accepted.string("last_error.message") ?? "").contains("503"))
            let id = try #require(accepted.string("id"))
            #expect(await h.advance(2) == 0, "retries back off")
            #expect(await h.advance(5) == 1)
            #expect(try await h.tenant(id).string("state") == "pending", "still failing")
            #expect(await h.advance(12) == 1)
            let recovered = try await h.tenant(id)
            #expect(recovered.string("state") == "action_required")
            #expect(recovered.value("last_error") is NSNull)
        }
    }

    @Test func providerErrorTextIsLoggedButNeverShownToThePartner() async throws {
        try await SandboxHarness.run { h in
            await h.wrapp.add(SimulatedFault(operation: "external_login", status: 500, style: .errorsMessage))
            let accepted = try await h.createWrapp("cust-5")
            #expect(accepted.status == 202)
            #expect(accepted.string("last_error.message") == "Wrapp answered 500 with an error body")
            #expect(!accepted.text.contains("simulated failure"))
            #expect(h.logs.text.contains("simulated failure"), "operators still see what Wrapp said")
        }
    }

    @Test func listsFilterAndPage() async throws {
        try await SandboxHarness.run { h in
            for index in 0..<5 { _ = try await h.createWrapp("cust-\(index)") }
            _ = try await h.createMagni("co-1", taxID: "513495886")
            let page1 = try await h.call(.get, "/v1/tenants?provider=wrapp&limit=2")
            let ids1 = (page1["data"] as? [[String: Any]] ?? []).compactMap { $0["external_id"] as? String }
            #expect(ids1 == ["cust-4", "cust-3"])
            let cursor = try #require(page1["next_cursor"] as? String)
            let page2 = try await h.call(.get, "/v1/tenants?provider=wrapp&limit=2&cursor=\(cursor)")
            #expect((page2["data"] as? [[String: Any]] ?? []).compactMap { $0["external_id"] as? String } == ["cust-2", "cust-1"])
            let active = try await h.call(.get, "/v1/tenants?state=active")
            #expect((active["data"] as? [[String: Any]] ?? []).compactMap { $0["external_id"] as? String } == ["co-1"])
            #expect(active.value("next_cursor") is NSNull)
            let byExternal = try await h.call(.get, "/v1/tenants?external_id=cust-3")
            #expect((byExternal["data"] as? [Any])?.count == 1)
            for query in ["limit=0", "limit=101", "limit=x", "state=done", "provider=acme", "cursor=garbage"] {
                #expect(try await h.call(.get, "/v1/tenants?\(query)").status == 422, "\(query)")
            }
            let feed = try await h.call(.get, "/v1/events?limit=3")
            #expect((feed["data"] as? [[String: Any]])?.first?["type"] as? String == "tenant.created")
            let after = try #require(feed["next_cursor"] as? String)
            #expect(try await h.call(.get, "/v1/events?after=\(after)").status == 200)
        }
    }

    @Test func missingThingsAre404() async throws {
        try await SandboxHarness.run { h in
            let missing = try await h.call(.get, "/v1/tenants/ten_nope")
            #expect(missing.status == 404 && missing["code"] as? String == "tenant_not_found")
            let id = try #require(try await h.createWrapp("cust-1").string("id"))
            let noCredentials = try await h.call(.get, "/v1/tenants/\(id)/credentials")
            #expect(noCredentials.status == 404 && noCredentials["code"] as? String == "credentials_not_available")
            #expect(try await h.call(.post, "/v1/tenants/ten_nope/refresh").status == 404)
        }
    }

    @Test func knownPathsAnswer405WithTheMethodsTheyAccept() async throws {
        try await SandboxHarness.run { h in
            let trace = try await h.call(.init("TRACE")!, "/v1/tenants")
            #expect(trace.status == 405 && trace["code"] as? String == "method_not_allowed")
            #expect(trace.headers[.allow] == "GET, HEAD, POST")
            #expect(try await h.call(.put, "/v1/tenants/ten_x").headers[.allow] == "DELETE, GET, HEAD, PATCH")
            #expect(try await h.call(.delete, "/healthz", key: nil).status == 405)
            #expect(try await h.call(.get, "/v1/unknown").status == 404, "unknown paths stay 404")
        }
    }

    @Test func queryParametersAreTakenOnceAndEmptyCursorsStartAtTheTop() async throws {
        try await SandboxHarness.run { h in
            _ = try await h.createWrapp("cust-1")
            #expect(try await h.call(.get, "/v1/tenants?cursor=").status == 200)
            #expect(try await h.call(.get, "/v1/events?after=").status == 200)
            let repeated = try await h.call(.get, "/v1/tenants?limit=5&limit=500")
            #expect(repeated.status == 422 && (repeated["errors"] as? [[String: Any]])?.first?["code"] as? String == "repeated")
            #expect(try await h.call(.get, "/v1/tenants?limit=").status == 422)
        }
    }

    @Test func theSpecIsServed() async throws {
        try await SandboxHarness.run { h in
            let spec = try await h.call(.get, "/openapi.yaml", key: nil)
            #expect(spec.status == 200 && spec.headers[.contentType] == "application/yaml")
            #expect(spec.text.hasPrefix("openapi: 3.1"))
        }
    }

    @Test func healthAndReadiness() async throws {
        try await SandboxHarness.run { h in
            #expect(try await h.call(.get, "/healthz", key: nil).status == 200)
            let ready = try await h.call(.get, "/readyz", key: nil)
            #expect(ready.status == 200 && ready["status"] as? String == "ready")
        }
    }
}
