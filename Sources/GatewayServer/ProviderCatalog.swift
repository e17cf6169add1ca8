import Foundation
import GatewayCore
import Providers

/// `gateway providers`: what this build knows of each provider module, as JSON — its id, name, capabilities, the
/// fields of typed-in credentials, the simulated operations faults go on, its sandbox helpers and its OpenAPI
/// fragments. Operators read what a provider can do; `scripts/spec_examples_check.py` holds `docs/openapi.yaml` to the
/// modules' fragments.
public enum ProviderCatalog {
    struct Entry: Encodable {
        struct Helper: Encodable {
            var method: String
            var path: String
        }

        var id: String
        var name: String
        var capabilities: [String]
        var credential_input_fields: [String]
        var fault_operations: [String]
        var sandbox_helpers: [Helper]
        var credentials_schema: String
        var schemas: [String: JSONValue]
        var credentials_example: JSONValue
        var create_example: JSONValue
    }

    public static func json(modules: [any ProviderModule] = ProviderModules.shipped) throws -> Data {
        let entries = modules.map { module in
            // A simulator with throwaway secrets, only to list its helpers: it serves nothing.
            let simulator = module.makeSimulator(module.sandboxConfiguration { _, prefix in prefix + "catalog" }, publicBaseURL: { "" })
            let openAPI = module.openAPI
            return Entry(
                id: module.kind.rawValue, name: module.displayName, capabilities: module.capabilities.names,
                credential_input_fields: module.credentialInputFields.map(\.name), fault_operations: module.faultOperations,
                sandbox_helpers: simulator.sandboxHelpers.map { Entry.Helper(method: $0.method.rawValue, path: $0.path) },
                credentials_schema: openAPI.credentialsSchema, schemas: openAPI.schemas,
                credentials_example: openAPI.credentialsExample, create_example: openAPI.createExample
            )
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(["providers": entries])
    }
}
