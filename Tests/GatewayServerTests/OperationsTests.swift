import Foundation
import GatewayCore
import GatewayServer
import GatewayTesting
import HTTPTypes
import Providers
import Testing

/// The admin API, the circuit breaker seen from outside, metrics, and the trusted-proxy rules.
@Suite struct OperationsTests {
    @Test func anOperatorFindsAStuckTenantAndPushesItOn() async throws {
        try await SandboxHarness.run { h in
            let admin = h.gateway.config.adminToken
            await h.magni.markExistingClient("500000000")
            let id = try #require(try await h.createMagni("co-1", taxID: "500000000").string("id"))
            _ = try await h.createWrapp("c1", email: "Maria.P@Example.com")

            for q in ["co-1", "500000000", "maria.p@example.com"] {
                let found = try await h.call(.get, "/admin/tenants?q=\(q)", key: admin).json["data"] as? [[String: Any]] ?? []
                #expect(found.count == 1, "\(q)")
            }
            #expect((try await h.call(.get, "/admin/tenants?state=action_required&provider=magnifinance", key: admin).json["data"] as? [Any])?.count == 1)

            let detail = try await h.call(.get, "/admin/tenants/\(id)", key: admin)
            #expect(detail.string("tenant.state") == "action_required")
            #expect((detail["events"] as? [Any])?.count == 2)
            let work = try #require((detail["pending_work"] as? [[String: Any]])?.first)
            #expect(work["kind"] as? String == "check" && work["run_at"] is String)

            h.clock.advance(2 * 86_400)
            let stats = try await h.call(.get, "/admin/stats", key: admin)
            #expect((stats.value("tenants.magnifinance") as? [String: Int])?["action_required"] == 1)
            #expect(stats.value("stuck.count") as? Int == 2)
            #expect((stats.value("oldest_due_seconds") as? Double ?? 0) > 86_000)

            await h.magni.approve("500000000")
            let polled = try await h.call(.post, "/admin/tenants/\(id)/poll", key: admin)
            #expect(polled.string("state") == "active")
            #expect(try await h.call(.post, "/admin/tenants/\(id)/retry", key: admin).status == 409)
            let events = try await h.events(id)
            #expect(transitions(events).contains("tenant.state_changed:action_required>active@admin"))

            let audit = try await h.call(.get, "/admin/audit?tenant_id=\(id)", key: admin).json["data"] as? [[String: Any]] ?? []
            #expect(audit.first?["action"] as? String == "tenant.polled")
            #expect((audit.first?["details"] as? [String: String])?["ip"] != nil, "the client's address is audited")

            let offboarded = try await h.call(.delete, "/admin/tenants/\(id)", key: admin)
            #expect(offboarded.string("state") == "offboarded")
            #expect(transitions(try await h.events(id)).last == "tenant.offboarded:active>offboarded@admin")
        }
    }

    @Test(.enabled(if: TestDatabase.all.contains(.postgres), "needs GATEWAY_TEST_POSTGRES_URL (CI always sets it)"))
    func onPostgreSQLTheBackupRouteSaysToUsePgDump() async throws {
        try await SandboxHarness.run(database: .postgres) { h in
            let answer = try await h.call(.post, "/admin/backup", key: h.gateway.config.adminToken)
            #expect(answer.status == 501)
            #expect(answer["code"] as? String == "backup_not_supported")
            #expect((answer["detail"] as? String)?.contains("pg_dump") == true)
            #expect(answer.headers[.contentType] == "application/problem+json")
            #expect(try await h.store.auditEntries(tenantID: nil).isEmpty, "nothing was done, so nothing is audited")
            #expect(!FileManager.default.fileExists(atPath: h.directory.appendingPathComponent("backups").path))
        }
    }

    @Test func aBackupIsAConsistentCopy() async throws {
        try await SandboxHarness.run { h in
            _ = try await h.createMagni("co-1", taxID: "513495886")
            let made = try await h.call(.post, "/admin/backup", key: h.gateway.config.adminToken)
            #expect(made.status == 201)
            let path = try #require(made["path"] as? String)
            #expect(path.hasPrefix(h.gateway.config.dataDirectory) && path.contains("/backups/"))
            #expect((made["bytes"] as? Int ?? 0) > 0)
            let copy = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(copy.prefix(15) == Data("SQLite format 3".utf8))
            #expect(copy.range(of: Data("co-1".utf8)) != nil, "the tenant is in the copy")
        }
    }

    @Test func aFailingProviderOpensItsCircuitAndTenantsWait() async throws {
        try await SandboxHarness.run(environment: ["GATEWAY_CIRCUIT_FAILURES": "5"]) { h in
            await h.wrapp.add(SimulatedFault(operation: "external_login", status: 502, style: .html, times: 5))
            var ids: [String] = []
            for index in 0..<6 {
                let created = try await h.createWrapp("c\(index)")
                #expect(created.status == 202, "pending, never failed")
                ids.append(try #require(created.string("id")))
            }
            let providers = try await h.call(.get, "/admin/providers", key: h.gateway.config.adminToken).json["data"] as? [[String: Any]] ?? []
            let wrapp = try #require(providers.first { $0["provider"] as? String == "wrapp" })
            #expect(wrapp["circuit"] as? String == "open")
            #expect((wrapp["recent_errors"] as? [Any])?.count == 5)
            // Each error once: the request in `operation`, what went wrong in `reason` (not "op: reason: op: reason").
            let latest = try #require((wrapp["recent_errors"] as? [[String: Any]])?.first)
            #expect(latest["operation"] as? String == "wrapp/external_login")
            #expect(latest["reason"] as? String == "502 with an HTML page")
            #expect(await h.wrapp.calls["/external_login"] == 5, "the sixth call was not made")
            let sixth = try await h.tenant(ids[5])
            #expect((sixth.string("last_error.message") ?? "").contains("circuit open"))

            let metrics = try await h.call(.get, "/metrics", key: nil).text
            #expect(metrics.contains(#"provider_circuit_state{provider="wrapp"} 2"#))
            #expect(metrics.contains(#"provider_calls_total{provider="wrapp",operation="submit",outcome="short_circuited"} 1"#))

            // After the cool-down one probe goes through (the others wait for it), succeeds and closes the circuit;
            // the waiting tenants move on at their next retry.
            await h.advance(60)
            let afterProbe = try await h.call(.get, "/admin/providers", key: h.gateway.config.adminToken).json["data"] as? [[String: Any]] ?? []
            #expect(afterProbe.first { $0["provider"] as? String == "wrapp" }?["circuit"] as? String == "closed")
            await h.advance(60)
            for id in ids {
                #expect(try await h.tenant(id).string("state") == "action_required")
            }
        }
    }

    @Test func metricsNameRoutesNotPaths() async throws {
        try await SandboxHarness.run { h in
            let id = try #require(try await h.createWrapp("c1").string("id"))
            _ = try await h.tenant(id)
            _ = try await h.call(.get, "/v1/tenants/ten_missing")
            let text = try await h.call(.get, "/metrics", key: nil)
            #expect(text.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(text.text.contains(#"http_requests_total{method="GET",route="/v1/tenants/{id}",status="200"} 1"#))
            #expect(text.text.contains(#"http_requests_total{method="GET",route="/v1/tenants/{id}",status="404"} 1"#))
            #expect(!text.text.contains(id), "no tenant id becomes a label")
            #expect(text.text.contains(#"tenants{provider="wrapp",state="action_required"} 1"#))
            #expect(text.text.contains("http_request_duration_seconds_bucket"))
            #expect(text.text.contains(#"work_queued{kind="check"} 1"#))
        }
    }
}

/// Which client address is believed.
@Suite struct TrustedProxyTests {
    let trusted = ["127.0.0.1/32", "10.0.0.0/8", "::1/128"].compactMap(CIDRForTests.parse)

    @Test func forwardedForIsBelievedOnlyFromATrustedPeer() {
        #expect(clientIP(peer: "127.0.0.1", ["203.0.113.7"]) == "203.0.113.7")
        #expect(clientIP(peer: "198.51.100.2", ["203.0.113.7"]) == "198.51.100.2", "an untrusted peer's header is ignored")
        #expect(clientIP(peer: "127.0.0.1", ["6.6.6.6, 203.0.113.7"]) == "203.0.113.7", "a forged first hop does not win")
        #expect(clientIP(peer: "127.0.0.1", ["203.0.113.7, 10.1.2.3"]) == "203.0.113.7", "trusted hops are skipped")
        #expect(clientIP(peer: "::1", ["2001:db8::5"]) == "2001:db8::5")
        #expect(clientIP(peer: "127.0.0.1", ["not-an-ip"]) == "127.0.0.1", "garbage is not believed")
        #expect(clientIP(peer: "127.0.0.1", []) == "127.0.0.1")
        #expect(clientIP(peer: "::ffff:127.0.0.1", ["203.0.113.7"]) == "203.0.113.7", "IPv4-mapped peers match IPv4 blocks")
    }

    @Test func blocksMatchByPrefix() {
        #expect(CIDRForTests.contains("10.0.0.0/8", "10.255.1.1"))
        #expect(!CIDRForTests.contains("10.0.0.0/8", "11.0.0.1"))
        #expect(CIDRForTests.contains("192.168.1.128/25", "192.168.1.200"))
        #expect(!CIDRForTests.contains("192.168.1.128/25", "192.168.1.100"))
        #expect(CIDRForTests.parse("300.1.1.1/8") == nil && CIDRForTests.parse("10.0.0.0/33") == nil)
    }

    func clientIP(peer: String, _ forwarded: [String]) -> String? {
        CIDRForTests.clientIP(peer: peer, forwardedFor: forwarded, trusted: trusted)
    }

    @Test func aForgedHeaderFromTheClientItselfIsIgnored() async throws {
        try await SandboxHarness.run(environment: ["GATEWAY_TRUSTED_PROXIES": "10.9.9.9/32"]) { h in
            let id = try #require(try await h.createWrapp("c1").string("id"))
            await h.wrapp.completeOnboarding("c1")
            await h.step()
            _ = try await h.call(.get, "/v1/tenants/\(id)/credentials", headers: [.init("X-Forwarded-For")!: "203.0.113.66"])
            let audit = try await h.store.auditEntries(tenantID: id)
            let ip = try #require(audit.last?.details["ip"])
            #expect(ip != "203.0.113.66" && (ip.hasPrefix("127.") || ip == "::1"))
        }
    }
}
