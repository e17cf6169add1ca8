import Foundation
import GatewayCore
import GatewayTesting
import Providers
import Testing

/// A build without Ledgerly opening a database that has a Ledgerly tenant: the row is named, never guessed.
@Suite("A stored row of an unregistered provider")
struct UnknownProviderTests {
    @Test("a row of an unregistered provider is named, not guessed; it can still be erased")
    func aRowOfAnUnregisteredProviderIsNamedNotGuessed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("unknown-provider-\(UUID().uuidString)")
        let id = try await SandboxHarness.run(directory: directory, modules: TestProviders.modules) { h in
            let created = try await h.call(.post, "/v1/tenants", json: #"{"provider":"ledgerly","external_id":"lg-gone","profile":{"email":"lg@example.com"}}"#)
            return try #require(created.string("id"))
        }
        try await SandboxHarness.run(directory: directory, modules: ProviderModules.shipped) { h in
            let read = try await h.call(.get, "/v1/tenants/\(id)")
            #expect(read.status == 200 && read.string("provider") == "ledgerly", "read as the id it is, not as another provider")
            let refresh = try await h.call(.post, "/v1/tenants/\(id)/refresh")
            #expect(refresh.status == 500 && refresh.string("code") == "internal_error")
            #expect(h.logs.entries.contains { $0.message == "stored tenant names an unknown provider" && $0.metadata["tenant.id"] == id && $0.metadata["provider"] == "ledgerly" })
            let typed = try await h.call(.put, "/v1/tenants/\(id)/credentials", json: #"{"account_id":"a","api_token":"b"}"#)
            #expect(typed.status == 500)
            await h.step()
            let erased = try await h.call(.delete, "/v1/tenants/\(id)")
            #expect(erased.status == 200 && erased.string("state") == "offboarded", "erasure needs nothing of the provider")
        }
    }
}
