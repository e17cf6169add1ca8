import Foundation
import GatewayTesting
import HTTPTypes
import Testing

/// What a newcomer meets first: `GET /` points somewhere useful instead of a bare 404.
@Suite struct FirstHourTests {
    @Test func theRootPagePointsToTheConsoleTheSpecAndTheDocs() async throws {
        try await SandboxHarness.run { h in
            let page = try await h.call(.get, "/", key: nil)
            #expect(page.status == 200)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("href=\"/console\"") && page.text.contains("href=\"/openapi.yaml\"") && page.text.contains("docs/integrate.md"))
            #expect(!page.text.contains(h.apiKey), "nothing secret on a public page")
        }
    }
}
