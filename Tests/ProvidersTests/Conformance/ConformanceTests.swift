import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// The conformance kit for every registered module, each against its own simulator through a sandbox gateway.
@Suite("Provider conformance")
struct ConformanceTests {
    @Test("every module passes the conformance kit", arguments: TestProviders.subjects)
    func conformance(_ subject: ConformanceSubject) async throws {
        try await SandboxHarness.run(modules: TestProviders.modules) { harness in
            let failures = try await ProviderConformance.failures(of: subject, in: harness)
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }
    }

    @Test("the kit's schema check refuses what breaks a schema")
    func schemaCheckCatches() {
        let openAPI = WrappModule().openAPI
        let check = SchemaCheck(schemas: openAPI.schemas)
        let schema = try! #require(openAPI.schemas[openAPI.credentialsSchema])
        #expect(check.problems(openAPI.credentialsExample, against: schema).isEmpty)
        #expect(!check.problems(.object(["provider": .string("wrapp")]), against: schema).isEmpty, "required fields")
        #expect(!check.problems(.object(["provider": .string("magnifinance"), "wrapp_user_id": .string("1"), "api_key": .string("k")]), against: schema).isEmpty, "const")
        #expect(!check.problems(.object(["type": .string("object"), "format": .string("x")]), against: .object(["nonsense": .bool(true)])).isEmpty, "unknown keywords")
    }
}
