import Foundation
import GatewayServer
import Providers
import Logging
import Testing
import GatewayTesting

@Suite struct ConfigurationTests {
    @Test func everyProblemIsListedAtOnce() throws {
        let env = [
            "GATEWAY_PORT": "99999", "GATEWAY_ENCRYPTION_KEY": "not-base64!", "GATEWAY_PUBLIC_URL": "ftp://x",
            "LOG_FORMAT": "xml", "MAGNIFINANCE_EMAIL": "owner@example.pt", "GATEWAY_API_KEY": "short",
            "GATEWAY_POLL_FIRST_SECONDS": "soon",
        ]
        do {
            _ = try GatewayConfig.load(environment: env, sandbox: false)
            Issue.record("a bad configuration must not load")
        } catch {
            let text = error.description
            for variable in ["GATEWAY_PORT", "GATEWAY_ENCRYPTION_KEY", "GATEWAY_PUBLIC_URL", "LOG_FORMAT", "MAGNIFINANCE_EMAIL",
                             "GATEWAY_API_KEY", "GATEWAY_POLL_FIRST_SECONDS"] {
                #expect(text.contains(variable), "\(variable) missing from: \(text)")
            }
            #expect(error.problems.count == 7)
            #expect(!text.contains("not-base64!"), "values of secrets are not repeated")
        }
    }

    @Test func aPostgreSQLURLSelectsPostgreSQL() throws {
        let config = try GatewayConfig.load(
            environment: ["GATEWAY_DATABASE_URL": "postgres://gw:s3cr%40t@db.internal:6543/gateway?sslmode=require&search_path=gw_one&pool_size=8"],
            sandbox: true
        )
        let settings = try #require(config.postgres)
        #expect(settings.host == "db.internal" && settings.port == 6543 && settings.username == "gw" && settings.password == "s3cr@t")
        #expect(settings.database == "gateway" && settings.tls == .require && settings.schema == "gw_one" && settings.poolSize == 8)
        #expect(!settings.redacted.contains("s3cr"))
        #expect(try GatewayConfig.load(environment: [:], sandbox: true).postgres == nil, "without it, SQLite")
    }

    @Test(arguments: [
        "mysql://gw:pw@db/gateway", "postgres://gw:pw@db", "postgres://:pw@db/gateway", "postgres://gw:pw@db/gateway?sslmode=maybe",
        "postgres://gw:pw@db/gateway?search_path=Robert'); DROP", "postgres://gw:pw@db/gateway?pool_size=0", "postgres://gw:pw@db/gateway?colour=red",
    ])
    func aBadPostgreSQLURLStopsTheStartWithoutRepeatingThePassword(url: String) throws {
        do {
            _ = try GatewayConfig.load(environment: ["GATEWAY_DATABASE_URL": url], sandbox: true)
            Issue.record("\(url) must stop the start")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems.allSatisfy { $0.hasPrefix("GATEWAY_DATABASE_URL ") && !$0.contains("pw") }, "\(error.problems)")
        }
    }

    @Test func theEncryptionKeyIsRequiredOutsideTheSandbox() throws {
        #expect(throws: GatewayConfig.Invalid.self) { try GatewayConfig.load(environment: [:], sandbox: false) }
        let sandbox = try GatewayConfig.load(environment: [:], sandbox: true)
        #expect(sandbox.port == 8080 && sandbox.host == "127.0.0.1" && sandbox.dataDirectory == "./data")
        #expect(sandbox.logFormat == .json && sandbox.logLevel == .info)
        #expect(sandbox.providers[.wrapp] == nil, "production providers need their keys")
    }

    @Test func valuesCanComeFromFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let keyFile = directory.appendingPathComponent("key")
        let keys = [Data(repeating: 1, count: 32).base64EncodedString(), Data(repeating: 2, count: 32).base64EncodedString()]
        try (keys.joined(separator: ",") + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
        let partnerFile = directory.appendingPathComponent("partner")
        try "partner-key-from-a-file".write(to: partnerFile, atomically: true, encoding: .utf8)
        let config = try GatewayConfig.load(environment: [
            "GATEWAY_ENCRYPTION_KEY_FILE": keyFile.path, "WRAPP_PARTNER_API_KEY_FILE": partnerFile.path,
            "GATEWAY_PUBLIC_URL": "https://onboarding.example.com",
        ], sandbox: false)
        #expect(config.encryptionKeys == [Data(repeating: 1, count: 32), Data(repeating: 2, count: 32)])
        #expect(config.providers[.wrapp]?["partner_api_key"] == "partner-key-from-a-file")
        #expect(config.providers[.magnifinance] == nil)

        #expect(throws: GatewayConfig.Invalid.self) {
            try GatewayConfig.load(environment: ["GATEWAY_ENCRYPTION_KEY_FILE": directory.appendingPathComponent("missing").path], sandbox: false)
        }
    }

    /// Wrapp posts customers' keys to the public URL, and provider calls carry the partner's secrets: outside the
    /// sandbox plain http is refused for them, except to a loopback host (a proxy or simulator on the same machine).
    @Test func secretsNeverTravelOverPlainHTTPOffTheMachine() throws {
        let base = ["GATEWAY_ENCRYPTION_KEY": Data(repeating: 1, count: 32).base64EncodedString(), "WRAPP_PARTNER_API_KEY": "partner-key"]
        for (name, value) in [("GATEWAY_PUBLIC_URL", "http://onboarding.example.com"), ("WRAPP_BASE_URL", "http://wrapp.example.com/api/v1")] {
            var env = base.merging(["GATEWAY_PUBLIC_URL": "https://onboarding.example.com"]) { $1 }
            env[name] = value
            do {
                _ = try GatewayConfig.load(environment: env, sandbox: false)
                Issue.record("\(name)=\(value) must not load outside the sandbox")
            } catch {
                #expect(error.problems.contains { $0.hasPrefix("\(name) must be https") }, "\(error.problems)")
            }
        }
        for loopback in ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"] {
            let env = base.merging(["GATEWAY_PUBLIC_URL": loopback, "WRAPP_BASE_URL": loopback]) { $1 }
            #expect(try GatewayConfig.load(environment: env, sandbox: false).publicURL == loopback)
        }
        #expect(try GatewayConfig.load(environment: base.merging(["GATEWAY_PUBLIC_URL": "http://onboarding.example.com"]) { $1 }, sandbox: true).providers[.wrapp] != nil)
    }

    @Test func wrappNeedsAPublicURLOutsideTheSandbox() throws {
        let key = Data(repeating: 1, count: 32).base64EncodedString()
        let wrapp = ["GATEWAY_ENCRYPTION_KEY": key, "WRAPP_PARTNER_API_KEY": "partner-key"]
        do {
            _ = try GatewayConfig.load(environment: wrapp, sandbox: false)
            Issue.record("Wrapp without a public URL must not load: Wrapp would be given a loopback webhook URL")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.description.contains("GATEWAY_PUBLIC_URL is required when Wrapp is configured"))
        }
        var withURL = wrapp
        withURL["GATEWAY_PUBLIC_URL"] = "https://onboarding.example.com/"
        #expect(try GatewayConfig.load(environment: withURL, sandbox: false).publicURL == "https://onboarding.example.com")
        #expect(try GatewayConfig.load(environment: wrapp, sandbox: true).providers[.wrapp] != nil, "the sandbox falls back to its own address")
        let magniOnly = [
            "GATEWAY_ENCRYPTION_KEY": key, "MAGNIFINANCE_EMAIL": "owner@example.pt", "MAGNIFINANCE_TOKEN": "t", "MAGNIFINANCE_PASSWORD": "p",
        ]
        #expect(try GatewayConfig.load(environment: magniOnly, sandbox: false).providers[.magnifinance] != nil, "MagniFinance sends no webhooks")

        var badURL = wrapp
        badURL["GATEWAY_PUBLIC_URL"] = "onboarding.example.com"
        do {
            _ = try GatewayConfig.load(environment: badURL, sandbox: false)
            Issue.record("a malformed public URL must not load")
        } catch {
            #expect(error.problems.count == 1, "one problem with GATEWAY_PUBLIC_URL, said once: \(error.problems)")
        }
    }

    @Test func retentionIsAWholeNumberOfDays() throws {
        #expect(try GatewayConfig.load(environment: [:], sandbox: true).retention.days == 90)
        #expect(try GatewayConfig.load(environment: ["GATEWAY_RETENTION_DAYS": "30"], sandbox: true).retention.age == 30 * 86_400)
        for bad in ["0", "3651", "1.5", "forever"] {
            #expect(throws: GatewayConfig.Invalid.self, "\(bad)") {
                try GatewayConfig.load(environment: ["GATEWAY_RETENTION_DAYS": bad], sandbox: true)
            }
        }
    }

    @Test func jsonLogsAreOneObjectPerLine() throws {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let lines = Lines()
        var logger = Logger(label: "t") { JSONLogHandler(label: $0, level: .info) { lines.all.append($0) } }
        logger[metadataKey: "request.id"] = "r-1"
        logger.info("tenant created", metadata: ["tenant.id": "ten_1"])
        logger.debug("not shown")
        #expect(lines.all.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        #expect(object["message"] as? String == "tenant created")
        #expect(object["level"] as? String == "info")
        #expect(object["tenant.id"] as? String == "ten_1" && object["request.id"] as? String == "r-1")
    }
}

/// Key rotation end to end: data sealed under an old key is re-sealed and readable with the new key alone.
@Suite struct KeyRotationTests {
    @Test func afterRotationTheOldKeyCanBeRemoved() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-rotate-\(UUID().uuidString)")
        let old = Data(repeating: 1, count: 32).base64EncodedString()
        let new = Data(repeating: 2, count: 32).base64EncodedString()
        let clock = TestClock()
        struct Seen: Sendable { var id: String; var apiKey: String; var simulators: Gateway.Simulators }
        let seen = try await SandboxHarness.run(directory: directory, clock: clock, environment: ["GATEWAY_ENCRYPTION_KEY": old]) { h in
            let id = try #require(try await h.createWrapp("c1").string("id"))
            await h.wrapp.completeOnboarding("c1")
            await h.step()
            let apiKey = try #require(await h.wrapp.user("c1")?.apiKey)
            return Seen(id: id, apiKey: apiKey, simulators: try #require(h.gateway.simulators))
        }
        var config = try GatewayConfig.load(environment: ["GATEWAY_DATA_DIR": directory.path, "GATEWAY_ENCRYPTION_KEY": "\(new),\(old)"], sandbox: true)
        config.runsWorker = false
        let moved = try await Gateway.rotateKey(config)
        // The processed webhook's payload was deleted, so only its hash is left and nothing of it needs re-sealing.
        #expect(moved["tenant_credentials"] == 1 && moved["tenants"] == 1 && moved["webhook_inbox"] == 0 && moved["gateway_secrets"] == 1)
        #expect(try await Gateway.rotateKey(config).values.reduce(0, +) == 0, "nothing left under the old key")

        try await SandboxHarness.run(directory: directory, clock: clock, environment: ["GATEWAY_ENCRYPTION_KEY": new], simulators: seen.simulators) { h in
            let credentials = try await h.call(.get, "/v1/tenants/\(seen.id)/credentials")
            #expect(credentials.status == 200 && credentials["api_key"] as? String == seen.apiKey)
            let created = try await h.createWrapp("c2")
            #expect(created.string("next_action.onboarding_link") != nil, "the link key survived too")
        }
    }
}

@Suite("Sandbox secrets file")
struct SandboxSecretsFileTests {
    static func directory(_ contents: String?) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if let contents { try contents.write(to: directory.appendingPathComponent("sandbox-secrets.json"), atomically: true, encoding: .utf8) }
        return directory
    }

    @Test("a file written before provider modules keeps every key, each module's among them")
    func earlierFileStillOpens() throws {
        let key = Data(repeating: 7, count: 32).base64EncodedString()
        let directory = try Self.directory("""
            {"api_key":"gw_sandbox_old-key-0123456789abcdef","admin_token":"gwadmin_sandbox_old-0123456789abcdef","encryption_key":"\(key)",
             "wrapp_partner_key":"sandbox-partner-old","magnifinance_token":"sandbox-ippn-old","magnifinance_password":"sandbox-pw-old",
             "later_version":{"kept":true}}
            """)
        let config = try Gateway.prepare(try GatewayConfig.load(environment: ["GATEWAY_DATA_DIR": directory.path], sandbox: true))
        #expect(config.apiKey == "gw_sandbox_old-key-0123456789abcdef" && config.encryptionKeys == [Data(repeating: 7, count: 32)])
        #expect(config.providers[.wrapp]?["partner_api_key"] == "sandbox-partner-old")
        #expect(config.providers[.magnifinance]?["token"] == "sandbox-ippn-old" && config.providers[.magnifinance]?["password"] == "sandbox-pw-old")
        let again = try Gateway.prepare(try GatewayConfig.load(environment: ["GATEWAY_DATA_DIR": directory.path], sandbox: true))
        #expect(again.providers[.wrapp]?["partner_api_key"] == "sandbox-partner-old", "nothing is remade")
        // The provider added since got its secret; a value a later version wrote is still there.
        let file = try String(contentsOf: directory.appendingPathComponent("sandbox-secrets.json"), encoding: .utf8)
        #expect(file.contains("invoicexpress_api_key") && file.contains("later_version"))
    }

    @Test("a file that cannot be read stops the start instead of being replaced by new keys", arguments: [
        "{not json", #"{"api_key": 5, "admin_token": "t", "encryption_key": "k"}"#, "[]", #"{"api_key": "a", "admin_token": "t"}"#,
    ])
    func unreadableFileStops(_ contents: String) throws {
        let directory = try Self.directory(contents)
        #expect(throws: (any Error).self) { try Gateway.prepare(try GatewayConfig.load(environment: ["GATEWAY_DATA_DIR": directory.path], sandbox: true)) }
        #expect(try String(contentsOf: directory.appendingPathComponent("sandbox-secrets.json"), encoding: .utf8) == contents, "left as it was")
    }
}
