import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// PATCH corrections, retry with the corrected data, and onboarding links.
@Suite struct CorrectionsAndLinksTests {
    @Test func aProfileIsCorrectedUntilTheProviderHoldsIt() async throws {
        try await SandboxHarness.run { h in
            // Wrapp is down: the tenant is pending, and external_login is safe to repeat, so its data may still change.
            await h.wrapp.add(SimulatedFault(operation: "external_login", status: 502, style: .html))
            let id = try #require(try await h.createWrapp("c1").string("id"))
            #expect(try await h.tenant(id).string("state") == "pending")
            let fixed = try await h.call(.patch, "/v1/tenants/\(id)", json: #"{"profile":{"email":"maria.p@example.com"},"metadata":{"plan":null,"seats":"3"}}"#)
            #expect(fixed.status == 200)
            #expect(fixed.string("profile.email") == "maria.p@example.com")
            #expect(fixed.string("profile.phone") == "+302101234567", "fields not given stay")
            #expect(fixed.value("metadata") as? [String: String] == ["seats": "3"])

            let invalid = try await h.call(.patch, "/v1/tenants/\(id)", json: #"{"profile":{"phone":"call me"}}"#)
            #expect(invalid.status == 422)
            #expect(try await h.tenant(id).string("profile.phone") == "+302101234567", "a refused correction changes nothing")
            #expect(try await h.call(.patch, "/v1/tenants/\(id)", json: #"{"external_id":"other"}"#).status == 422)
            #expect(try await h.call(.patch, "/v1/tenants/\(id)", json: #"{}"#).status == 422)

            // The correction made the submission due at once: Wrapp is given the corrected email.
            #expect(await h.step() == 1)
            #expect(try await h.tenant(id).string("state") == "action_required")
            #expect(await h.wrapp.user("c1")?.email == "maria.p@example.com")

            // Now Wrapp holds the email and phone: they are frozen, with the fields named.
            let frozen = try await h.call(.patch, "/v1/tenants/\(id)", json: #"{"profile":{"email":"late@example.com"}}"#)
            #expect(frozen.status == 409 && frozen["code"] as? String == "profile_frozen")
            #expect((frozen["errors"] as? [[String: Any]])?.map { $0["field"] as? String } == ["profile.email"])
            #expect(try await h.tenant(id).string("profile.email") == "maria.p@example.com")
            #expect(try await h.call(.patch, "/v1/tenants/\(id)", json: #"{"metadata":{"plan":"enterprise"}}"#).status == 200, "metadata stays the partner's to change")
            #expect(try await h.store.auditEntries(tenantID: id).map(\.action).filter { $0 == "tenant.corrected" }.count == 2)
        }
    }

    @Test func aFailedTenantIsRetriedWithTheCorrectedData() async throws {
        try await SandboxHarness.run { h in
            await h.magni.add(SimulatedFault(operation: "partner", status: 400, style: .envelopeError))
            let id = try #require(try await h.createMagni("co-1", taxID: "513495886").string("id"))
            #expect(try await h.tenant(id).string("state") == "failed")
            let corrected = try await h.call(.patch, "/v1/tenants/\(id)", json: #"{"profile":{"company":{"legal_name":"Exemplo Unipessoal Lda"}}}"#)
            #expect(corrected.string("profile.company.legal_name") == "Exemplo Unipessoal Lda")
            #expect(corrected.string("profile.company.tax_id") == "513495886")
            let retried = try await h.call(.post, "/v1/tenants/\(id)/retry")
            #expect(retried.string("state") == "active")
        }
    }

    @Test func theOnboardingLinkRedirectsToAFreshProviderURL() async throws {
        try await SandboxHarness.run { h in
            let created = try await h.createWrapp("c2")
            let id = try #require(created.string("id"))
            let link = try #require(created.string("next_action.onboarding_link"))
            #expect(link.hasPrefix(h.gateway.address.publicURL + "/onboard/\(id)."))
            let path = try #require(URL(string: link)?.path)

            let first = try await h.call(.get, path, key: nil)
            #expect(first.status == 302)
            let second = try await h.call(.get, path, key: nil)
            let target = try #require(first.headers[.location])
            #expect(target.contains("/sandbox/wrapp/login/"))
            #expect(second.headers[.location] != target, "a fresh provider URL on each visit")
            #expect(try await h.tenant(id).string("next_action.url") == second.headers[.location])

            // A forged link: one character of the signature changed, well inside it (the last base64 character carries
            // unused bits, so changing only the end could leave the signature the same).
            var forged = Array(path)
            let index = forged.count - 5
            forged[index] = forged[index] == "A" ? "B" : "A"
            let refused = try await h.call(.get, String(forged), key: nil)
            #expect(refused.status == 404, "\(refused.status) \(refused.text)")
            #expect(try await h.call(.get, "/onboard/ten_nope.abc", key: nil).status == 404)

            let fresh = try await h.call(.post, "/v1/tenants/\(id)/onboarding-link")
            #expect(fresh.status == 200)
            #expect((fresh["url"] as? String)?.contains("/sandbox/wrapp/login/") == true)
            let freshLink = try #require(fresh["onboarding_link"] as? String)
            #expect(freshLink.hasPrefix(h.gateway.address.publicURL + "/onboard/\(id)."), "a link made now, for the same tenant")
            let freshPath = try #require(URL(string: freshLink)?.path)
            #expect(try await h.call(.get, freshPath, key: nil).status == 302)

            await h.wrapp.completeOnboarding("c2")
            await h.step()
            let done = try await h.call(.get, path, key: nil)
            #expect(done.status == 200 && done.text.contains("complete"))
            #expect(!done.text.contains("maria"), "the page shows nothing about the customer")

            let bytes = try await h.databaseBytes()
            #expect(bytes.range(of: Data(path.split(separator: ".").last!.utf8)) == nil, "links are not stored")
        }
    }

    /// A link works for GATEWAY_ONBOARDING_LINK_TTL_SECONDS after it was made, and a partner whose link leaked
    /// withdraws every link made so far; a fresh one works at once. Both refusals are 410 pages that name nobody.
    @Test(arguments: TestDatabase.all) func linksExpireAndCanBeRevoked(_ database: TestDatabase) async throws {
        try await SandboxHarness.run(database: database, environment: ["GATEWAY_ONBOARDING_LINK_TTL_SECONDS": "3600"]) { h in
            let created = try await h.createWrapp("c3")
            let id = try #require(created.string("id"))
            let shown = try #require(created.string("next_action.onboarding_link"))
            let leaked = try #require(URL(string: shown)?.path)
            #expect(try await h.call(.get, leaked, key: nil).status == 302)

            #expect(try await h.call(.delete, "/v1/tenants/\(id)/onboarding-link").status == 204)
            let withdrawn = try await h.call(.get, leaked, key: nil)
            #expect(withdrawn.status == 410 && withdrawn.text.contains("withdrawn") && !withdrawn.text.contains("maria"))
            #expect(try await h.store.auditEntries(tenantID: id).contains { $0.action == "tenant.onboarding_links_revoked" })

            let made = try #require(try await h.call(.post, "/v1/tenants/\(id)/onboarding-link")["onboarding_link"] as? String)
            let fresh = try #require(URL(string: made)?.path)
            #expect(try await h.call(.get, fresh, key: nil).status == 302, "a link made after the revocation works at once")

            h.clock.advance(3601)
            let expired = try await h.call(.get, fresh, key: nil)
            #expect(expired.status == 410 && expired.text.contains("expired"))
            #expect(try await h.call(.get, "/onboard/\(id).zzzzzzzzzzzzzzzz.AAAA", key: nil).status == 404, "an unreadable time is no link")
        }
    }

    @Test func magniFinanceHasNoOnboardingURL() async throws {
        try await SandboxHarness.run { h in
            await h.magni.markExistingClient("500000000")
            let created = try await h.createMagni("co-2", taxID: "500000000")
            #expect(created.value("next_action.onboarding_link") == nil)
            let id = try #require(created.string("id"))
            let refused = try await h.call(.post, "/v1/tenants/\(id)/onboarding-link")
            #expect(refused.status == 409 && refused["code"] as? String == "onboarding_link_not_supported")
        }
    }
}

/// Offboarding erases the customer everywhere and leaves a tombstone.
@Suite struct OffboardingTests {
    @Test func everyTraceIsErasedFromTheFiles() async throws {
        try await SandboxHarness.run { h in
            let email = "eleni.unique-9f3a@example.com"
            let phone = "+302109876543"
            let created = try await h.call(.post, "/v1/tenants", json: """
                {"provider":"wrapp","external_id":"c-erase","profile":{"email":"\(email)","phone":"\(phone)","contact_name":"Eleni Unique"},"metadata":{"crm":"secret-crm-ref"}}
                """, headers: [.init("Idempotency-Key")!: "erase-1"])
            let id = try #require(created.string("id"))
            let loginToken = try #require(created.string("next_action.url")?.split(separator: "/").last.map(String.init))
            await h.wrapp.completeOnboarding("c-erase")
            await h.step()
            let apiKey = try #require(await h.wrapp.user("c-erase")?.apiKey)
            let webhookPath = try await h.webhookPath("c-erase")
            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials").status == 200)

            let tombstone = try await h.call(.delete, "/v1/tenants/\(id)")
            #expect(tombstone.status == 200)
            #expect(tombstone.string("state") == "offboarded")
            #expect(tombstone.value("profile") as? [String: String] == [:])
            #expect(tombstone.string("external_id") == "c-erase" && tombstone.string("id") == id)

            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials").status == 404)
            #expect(try await h.call(.delete, "/v1/tenants/\(id)").status == 409)
            #expect(try await h.call(.post, webhookPath, key: nil, json: #"{"partner_user_id":"c-erase"}"#).status == 404)
            let history = try await h.call(.get, "/v1/tenants/\(id)/events?limit=100")
            #expect(!history.text.contains(email) && history.text.contains("tenant.offboarded"))

            let bytes = try await h.databaseBytes()
            for erased in [email, phone, "Eleni Unique", "secret-crm-ref", apiKey, loginToken] {
                #expect(bytes.range(of: Data(erased.utf8)) == nil, "\(erased) is still in the database files")
            }
            #expect(try await h.createWrapp("c-erase").status == 201, "the same customer may come back")
        }
    }
}
