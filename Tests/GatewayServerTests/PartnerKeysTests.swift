import Foundation
import GatewayCore
import GatewayTesting
import Testing

/// Scoped partner keys through the admin API, and who may use `/admin`.
@Suite struct PartnerKeysTests {
    @Test func theAdminAPIKnowsItsToken() async throws {
        try await SandboxHarness.run { h in
            #expect(try await h.call(.get, "/admin/api-keys", key: nil).status == 401)
            #expect(try await h.call(.get, "/admin/api-keys", key: "nonsense").status == 401)
            let partner = try await h.call(.get, "/admin/api-keys")
            #expect(partner.status == 403 && partner["code"] as? String == "forbidden")
            #expect(try await h.call(.get, "/admin/api-keys", key: h.gateway.config.adminToken).status == 200)
            #expect(try await h.call(.get, "/v1/tenants", key: h.gateway.config.adminToken).status == 401, "the admin token is not a partner key")
        }
    }

    @Test func scopesAreEnforcedOnEveryRoute() async throws {
        try await SandboxHarness.run { h in
            let admin = h.gateway.config.adminToken
            let made = try await h.call(.post, "/admin/api-keys", key: admin, json: #"{"name":"dashboard","scopes":["tenants:read"]}"#)
            #expect(made.status == 201)
            let key = try #require(made["key"] as? String)
            let prefix = try #require(made["prefix"] as? String)
            #expect(key.hasPrefix(prefix + "_") && prefix.hasPrefix("gwk_"))
            let listed = try await h.call(.get, "/admin/api-keys", key: admin)
            #expect(!listed.text.contains(key), "the key is shown once")
            #expect(listed.text.contains(prefix))
            let bytes = try await h.databaseBytes()
            #expect(bytes.range(of: Data(key.utf8)) == nil, "stored hashed")

            let id = try #require(try await h.createWrapp("c1").string("id"))
            #expect(try await h.call(.get, "/v1/tenants", key: key).status == 200)
            #expect(try await h.call(.get, "/v1/tenants/\(id)/events", key: key).status == 200)
            let write = try await h.call(.post, "/v1/tenants", key: key, json: #"{"provider":"wrapp","external_id":"c2","profile":{}}"#)
            #expect(write.status == 403 && write["code"] as? String == "forbidden")
            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials", key: key).status == 403)
            #expect(try await h.call(.delete, "/v1/tenants/\(id)", key: key).status == 403)

            let reader = try await h.makeKey(scopes: ["credentials:read"], name: "billing")
            await h.wrapp.completeOnboarding("c1")
            await h.step()
            #expect(try await h.call(.get, "/v1/tenants/\(id)/credentials", key: reader).status == 200)
            let audit = try await h.store.auditEntries(tenantID: id)
            #expect(audit.last?.action == "credentials.read" && audit.last?.actor.hasPrefix("api_key:gwk_") == true)

            let keyID = try #require(made["id"] as? String)
            #expect(try await h.call(.delete, "/admin/api-keys/\(keyID)", key: admin).status == 204)
            #expect(try await h.call(.get, "/v1/tenants", key: key).status == 401, "a revoked key is dead")
            #expect(try await h.call(.delete, "/admin/api-keys/\(keyID)", key: admin).status == 404)
        }
    }

    @Test func badKeyRequestsAreRefused() async throws {
        try await SandboxHarness.run { h in
            let admin = h.gateway.config.adminToken
            let none = try await h.call(.post, "/admin/api-keys", key: admin, json: #"{"name":"x","scopes":[]}"#)
            #expect(none.status == 422)
            let unknown = try await h.call(.post, "/admin/api-keys", key: admin, json: #"{"name":"x","scopes":["tenants:delete"]}"#)
            #expect((unknown["errors"] as? [[String: Any]])?.first?["field"] as? String == "scopes")
        }
    }
}
