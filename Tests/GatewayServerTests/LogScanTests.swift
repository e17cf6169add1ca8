import Foundation
import GatewayCore
import GatewayServer
import GatewayTesting
import Providers
import Testing

/// Nothing secret and no personal data beyond ids ever reaches the logs: a full sandbox run of both providers,
/// with events, admin calls, a forged webhook and a flaky provider, scanned for every secret and personal value used.
@Suite struct LogScanTests {
    @Test func aFullSandboxRunLogsNoSecretsAndNoPersonalData() async throws {
        let eventsSecret = "whsec_" + Data(repeating: 9, count: 32).base64EncodedString()
        try await EventReceiver.run { receiver, url in
            try await SandboxHarness.run(environment: ["GATEWAY_EVENTS_URL": url, "GATEWAY_EVENTS_SECRET": eventsSecret, "LOG_LEVEL": "trace"]) { h in
                let email = "eleni.logscan@example.com", phone = "+302105550123", name = "Eleni Logscan", taxID = "513495886"
                let admin = try #require(h.gateway.config.adminToken)
                await h.wrapp.add(SimulatedFault(operation: "external_login", status: 500, style: .errorsMessage))
                let wrapp = try await h.call(.post, "/v1/tenants", json: """
                    {"provider":"wrapp","external_id":"log-1","profile":{"email":"\(email)","phone":"\(phone)","contact_name":"\(name)"}}
                    """)
                #expect(wrapp.status == 202)
                await h.advance(10)
                await h.wrapp.completeOnboarding("log-1")
                await h.step()
                let wrappID = try #require(wrapp.string("id"))
                let webhookPath = try await h.webhookPath("log-1")
                _ = try await h.call(.post, webhookPath, key: nil, json: #"{"partner_user_id":"log-1","wrapp_user_id":"x","api_key":"forged-key-logscan"}"#)
                await h.step()
                let magni = try await h.call(.post, "/v1/tenants", json: """
                    {"provider":"magnifinance","external_id":"log-2","profile":{"email":"\(email)","contact_name":"\(name)","company":{"tax_id":"\(taxID)","country":"PT"}}}
                    """)
                let magniID = try #require(magni.string("id"))
                _ = try await h.call(.get, "/v1/tenants/\(wrappID)/credentials")
                let tokens = try await h.call(.get, "/v1/tenants/\(magniID)/credentials").json["access_tokens"] as? [[String: Any]] ?? []
                _ = try await h.call(.get, "/admin/tenants/\(wrappID)", key: admin)
                _ = try await h.call(.get, "/admin/api-keys", key: "wrong-admin-token-logscan")
                await h.gateway.deliveries?.runOnce()
                #expect(await receiver.received.count >= 7)

                let user = try #require(await h.wrapp.user("log-1"))
                let magniConfig = try #require(h.gateway.config.providers[.magnifinance])
                var secrets = [
                    h.apiKey, admin, user.apiKey, "forged-key-logscan", "wrong-admin-token-logscan", eventsSecret,
                    try #require(h.gateway.config.providers[.wrapp]?.values["partner_api_key"]), magniConfig["token"], magniConfig["password"],
                    String(webhookPath.split(separator: "/").last ?? ""), email, phone, name, taxID,
                ]
                secrets += tokens.compactMap { $0["token"] as? String }
                let logs = h.logs.text
                #expect(logs.contains("tenant created") && logs.contains("tenant.id"), "the run did log")
                for secret in secrets where !secret.isEmpty {
                    #expect(!logs.contains(secret), "logged: \(secret.prefix(12))…")
                }
            }
        }
    }
}
