import Foundation
import GatewayCore

/// The secrets `serve --sandbox` makes for itself when none are configured, kept in the data directory
/// (`sandbox-secrets.json`, mode 0600) so the same key works after a restart. Sandbox only.
struct SandboxSecrets: Codable {
    var apiKey: String
    var adminToken: String
    var encryptionKey: String
    var wrappPartnerKey: String
    var magniFinanceToken: String
    var magniFinancePassword: String

    enum CodingKeys: String, CodingKey {
        case apiKey = "api_key"
        case adminToken = "admin_token"
        case encryptionKey = "encryption_key"
        case wrappPartnerKey = "wrapp_partner_key"
        case magniFinanceToken = "magnifinance_token"
        case magniFinancePassword = "magnifinance_password"
    }

    static func loadOrCreate(in directory: String, random: any Randomness) throws -> SandboxSecrets {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("sandbox-secrets.json").path
        if let data = FileManager.default.contents(atPath: path), let secrets = try? JSONDecoder().decode(SandboxSecrets.self, from: data) {
            return secrets
        }
        let secrets = SandboxSecrets(
            apiKey: "gw_sandbox_" + random.token(bits: 192), adminToken: "gwadmin_sandbox_" + random.token(bits: 192),
            encryptionKey: Data(random.bytes(32)).base64EncodedString(), wrappPartnerKey: "sandbox-partner-" + random.token(bits: 128),
            magniFinanceToken: "sandbox-ippn-" + random.token(bits: 128), magniFinancePassword: "sandbox-pw-" + random.token(bits: 128)
        )
        let data = try JSONEncoder.gateway.encode(secrets)
        guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        return secrets
    }

    /// Fills in what the environment left unset, and configures both providers for the in-process simulators
    /// (their base URL is the gateway's own loopback address, resolved once the port is bound).
    func apply(to config: inout GatewayConfig) {
        if config.apiKey == nil { config.apiKey = apiKey }
        if config.adminToken == nil { config.adminToken = adminToken }
        if config.encryptionKeys.isEmpty, let key = Data(base64Encoded: encryptionKey) { config.encryptionKeys = [key] }
        config.wrapp = GatewayConfig.Wrapp(baseURL: "/sandbox/wrapp", partnerAPIKey: wrappPartnerKey)
        config.magniFinance = GatewayConfig.MagniFinance(
            baseURL: "/sandbox/magnifinance", email: "ippn-owner@sandbox.invalid",
            token: magniFinanceToken, password: magniFinancePassword
        )
    }
}
