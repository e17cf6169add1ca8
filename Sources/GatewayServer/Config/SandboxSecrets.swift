import Foundation
import GatewayCore
import Providers

/// The secrets `serve --sandbox` makes for itself when none are configured, kept in the data directory
/// (`sandbox-secrets.json`, mode 0600) so the same key works after a restart. Sandbox only. Each provider module
/// names its own (`wrapp_partner_key`); one added later gets its secrets made on the next start.
struct SandboxSecrets {
    var apiKey: String
    var adminToken: String
    var encryptionKey: String
    /// The modules' secrets, by name.
    var providerSecrets: [String: String]

    static let coreKeys = ["api_key", "admin_token", "encryption_key"]

    struct Unreadable: Error, CustomStringConvertible {
        var path: String
        /// The keys missing or not text, when the file was a JSON object.
        var missing: [String] = []
        var description: String {
            (missing.isEmpty ? "" : "\(path) lacks \(missing.joined(separator: ", ")). ") + "\(path) cannot be read as the sandbox's secrets (a JSON object with api_key, admin_token and encryption_key). It holds the key to the sandbox's stored "
                + "credentials: fix or restore it, or move it away to start a new sandbox (its stored credentials will not open)."
        }
    }

    static func loadOrCreate(in directory: String, modules: [any ProviderModule], random: any Randomness) throws -> SandboxSecrets {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("sandbox-secrets.json").path
        var stored: [String: String] = [:]
        // Everything the file holds, written back as it was beside what is added (a later version's values too).
        var file: [String: JSONValue] = [:]
        if FileManager.default.fileExists(atPath: path) {
            // The file holds the key that opens every stored secret: one that cannot be read, or that lacks one of the
            // gateway's own three, stops the start, never gets replaced by new keys. A provider's secret it lacks (a
            // provider added since) is made.
            guard let data = FileManager.default.contents(atPath: path),
                case .object(let values)? = try? JSONDecoder().decode(JSONValue.self, from: data)
            else { throw Unreadable(path: path) }
            let missing = coreKeys.filter { values[$0]?.stringValue?.isEmpty != false }
            guard missing.isEmpty else { throw Unreadable(path: path, missing: missing) }
            file = values
            stored = values.compactMapValues(\.stringValue)
        }
        var changed = false
        func value(_ name: String, _ make: () -> String) -> String {
            if let existing = stored[name], !existing.isEmpty { return existing }
            let made = make()
            stored[name] = made
            changed = true
            return made
        }
        let apiKey = value("api_key") { "gw_sandbox_" + random.token(bits: 192) }
        let adminToken = value("admin_token") { "gwadmin_sandbox_" + random.token(bits: 192) }
        let encryptionKey = value("encryption_key") { Data(random.bytes(32)).base64EncodedString() }
        for module in modules {
            _ = module.sandboxConfiguration { name, prefix in value(name) { prefix + random.token(bits: 128) } }
        }
        if changed {
            for (name, value) in stored { file[name] = .string(value) }
            let data = try JSONEncoder.gateway.encode(file)
            // Written whole, then renamed: a start that dies half way never leaves a file that loses the keys.
            let temporary = path + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown)
            }
            guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        }
        return SandboxSecrets(
            apiKey: apiKey, adminToken: adminToken, encryptionKey: encryptionKey,
            providerSecrets: stored.filter { !coreKeys.contains($0.key) }
        )
    }

    /// Fills in what the environment left unset, and configures every module for its in-process simulator (its base
    /// URL is the gateway's own loopback address, resolved once the port is bound).
    func apply(to config: inout GatewayConfig) {
        if config.apiKey == nil { config.apiKey = apiKey }
        if config.adminToken == nil { config.adminToken = adminToken }
        if config.encryptionKeys.isEmpty, let key = Data(base64Encoded: encryptionKey) { config.encryptionKeys = [key] }
        for module in config.modules {
            config.providers[module.kind] = module.sandboxConfiguration { name, _ in providerSecrets[name] ?? "" }
        }
    }
}
