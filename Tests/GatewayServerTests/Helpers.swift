import Foundation
import GatewayCore
import GatewayTesting
import HTTPTypes
import Testing

extension SandboxHarness {
    func createWrapp(_ externalID: String, email: String = "maria@example.com", phone: String = "+302101234567") async throws -> HTTPResult {
        try await call(.post, "/v1/tenants", json: """
            {"provider":"wrapp","external_id":"\(externalID)","profile":{"email":"\(email)","phone":"\(phone)"},"metadata":{"plan":"pro"}}
            """)
    }

    func createMagni(_ externalID: String, taxID: String) async throws -> HTTPResult {
        try await call(.post, "/v1/tenants", json: """
            {"provider":"magnifinance","external_id":"\(externalID)","profile":{"email":"ana@example.pt","contact_name":"Ana",
             "company":{"tax_id":"\(taxID)","legal_name":"Exemplo Lda","country":"PT","post_code":"1000-001"}}}
            """)
    }

    func tenant(_ id: String) async throws -> HTTPResult {
        try await call(.get, "/v1/tenants/\(id)")
    }

    /// The path of the webhook URL the gateway gave Wrapp for this customer.
    func webhookPath(_ externalID: String) async throws -> String {
        let endpoint = try #require(await wrapp.user(externalID)?.webhookEndpoint)
        return try #require(URL(string: endpoint)?.path)
    }

    func events(_ id: String) async throws -> [[String: Any]] {
        try await call(.get, "/v1/tenants/\(id)/events?limit=100").json["data"] as? [[String: Any]] ?? []
    }
}

func transitions(_ events: [[String: Any]]) -> [String] {
    events.map { event in
        let data = event["data"] as? [String: Any] ?? [:]
        let tenant = data["tenant"] as? [String: Any] ?? [:]
        return "\(event["type"] ?? "?"):\(data["previous_state"] as? String ?? "-")>\(tenant["state"] ?? "?")@\(data["source"] ?? "?")"
    }
}
