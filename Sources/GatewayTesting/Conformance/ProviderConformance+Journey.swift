import Foundation
import GatewayCore
import HTTPTypes
import Providers

extension ProviderConformance {
    /// One customer through the whole HTTP API: create, next action, the customer finishes at the provider (webhook or
    /// poll), `active`, typed credentials that match the module's schema, a webhook bound to its customer and harmless
    /// when replayed, credentials in no log line and no event, and offboarding.
    public static func journey(_ subject: ConformanceSubject, in harness: SandboxHarness) async throws -> [String] {
        let module = subject.module
        let externalID = fresh("journey")
        let profile = subject.profile(externalID)
        var failures: [String] = []
        let body = JSONValue.object([
            "provider": .string(module.kind.rawValue), "external_id": .string(externalID),
            "profile": try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(profile)),
        ])
        let created = try await harness.call(.post, "/v1/tenants", json: String(decoding: try JSONEncoder().encode(body), as: UTF8.self))
        guard [200, 201, 202].contains(created.status), let id = created.string("id") else {
            return ["journey: create answered \(created.status): \(created.text.prefix(300))"]
        }
        if let state = created.string("state"), !["pending", "action_required", "active"].contains(state) {
            failures.append("journey: a new tenant is \(state)")
        }
        try await subject.finishOnboarding(harness, externalID, profile)
        let active = await harness.eventually(20) {
            await harness.step()
            return (try? await harness.call(.get, "/v1/tenants/\(id)").string("state")) == "active"
        }
        let tenant = try await harness.call(.get, "/v1/tenants/\(id)")
        guard active else { return failures + ["journey: never active (\(tenant.string("state") ?? "?"), \(tenant.text.prefix(300)))"] }
        if tenant.value("credentials_available") as? Bool != true { failures.append("journey: active without credentials") }

        let read = try await harness.call(.get, "/v1/tenants/\(id)/credentials")
        guard read.status == 200, let credentials = try? JSONDecoder().decode(JSONValue.self, from: read.body) else {
            return failures + ["journey: credentials answered \(read.status)"]
        }
        let openAPI = module.openAPI
        if let schema = openAPI.schemas[openAPI.credentialsSchema] {
            failures += SchemaCheck(schemas: openAPI.schemas).problems(credentials, against: schema).map { "journey: served credentials: \($0)" }
        }

        if module.capabilities.receivesWebhooks, let webhookURL = subject.webhookURL, let webhookBody = subject.webhookBody {
            failures += try await webhooks(subject, tenantID: id, externalID: externalID, url: webhookURL, body: webhookBody, in: harness)
        }

        // Secrets are at least 8 characters: shorter strings (ids such as "1") say nothing about a leak.
        let secrets = credentials.strings.filter { $0.count >= 8 && $0 != module.kind.rawValue }
        let feed = try await harness.call(.get, "/v1/events?limit=100")
        for secret in secrets {
            if harness.logs.text.contains(secret) { failures.append("journey: a credential is in the log") }
            if feed.text.contains(secret) { failures.append("journey: a credential is in an event") }
        }

        let offboarded = try await harness.call(.delete, "/v1/tenants/\(id)")
        if offboarded.status != 200 || offboarded.string("state") != "offboarded" { failures.append("journey: offboarding answered \(offboarded.status)") }
        let gone = try await harness.call(.get, "/v1/tenants/\(id)/credentials")
        if gone.status != 404 { failures.append("journey: credentials after offboarding answered \(gone.status)") }
        return failures
    }

    /// A webhook about another customer posted to this tenant's URL is refused and changes nothing; a replay is a
    /// duplicate and changes nothing.
    static func webhooks(
        _ subject: ConformanceSubject, tenantID: String, externalID: String,
        url: @Sendable (any ProviderSimulator, String) async -> String?, body: @Sendable (String) -> Data, in harness: SandboxHarness
    ) async throws -> [String] {
        let simulator = harness.simulator(subject.module.kind)
        guard let given = await url(simulator, externalID), let path = URL(string: given)?.path,
            path.hasPrefix("/webhooks/\(subject.module.kind.rawValue)/")
        else { return ["webhooks: the provider was given no webhook URL under /webhooks/\(subject.module.kind.rawValue)/"] }
        var failures: [String] = []
        let credentialsBefore = try await harness.call(.get, "/v1/tenants/\(tenantID)/credentials").body
        let forged = try await harness.call(.post, path, key: nil, json: String(decoding: body("someone-else"), as: UTF8.self))
        if (200..<300).contains(forged.status) { failures.append("webhooks: a webhook about another customer was taken (\(forged.status))") }
        let own = String(decoding: body(externalID), as: UTF8.self)
        let first = try await harness.call(.post, path, key: nil, json: own)
        let replay = try await harness.call(.post, path, key: nil, json: own)
        if first.status != 200 || replay.status != 200 { failures.append("webhooks: the tenant's own webhook answered \(first.status), then \(replay.status)") }
        if replay.value("duplicate") as? Bool != true { failures.append("webhooks: a replay is not a duplicate") }
        await harness.step()
        let after = try await harness.call(.get, "/v1/tenants/\(tenantID)")
        if after.string("state") != "active" { failures.append("webhooks: the tenant moved to \(after.string("state") ?? "?")") }
        if try await harness.call(.get, "/v1/tenants/\(tenantID)/credentials").body != credentialsBefore {
            failures.append("webhooks: the credentials changed")
        }
        return failures
    }
}
