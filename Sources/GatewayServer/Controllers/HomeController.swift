import Foundation
import Hummingbird

/// `GET /`: a small page for whoever opens the gateway's address in a browser, pointing to the console, the API
/// description and the docs, instead of a bare 404. It shows nothing about tenants or configuration.
struct HomeController {
    func add(to router: Router<GatewayRequestContext>) {
        router.get("/") { _, _ in Self.page }
    }

    static var page: Response {
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>Onboarding gateway</title></head><body style="font-family:sans-serif;max-width:36em;margin:4em auto">
            <h1>Onboarding gateway</h1>
            <p>One API to sign customers up with invoicing providers.</p>
            <ul>
            <li><a href="/console">The operators' console</a> (sign in with the admin token)</li>
            <li><a href="/openapi.yaml">The API, described in OpenAPI</a> (the partner API is under <code>/v1</code>)</li>
            <li>The docs: <code>README.md</code> and <code>docs/</code> in the gateway's repository
            (<code>docs/integrate.md</code>: integrate a partner app in an afternoon)</li>
            </ul></body></html>
            """
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }
}
