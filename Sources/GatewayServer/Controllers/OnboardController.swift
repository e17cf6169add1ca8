import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird

/// `GET /onboard/{link}`: the stable link a partner emails to its customer. Each visit asks the provider for a
/// fresh URL and redirects there. Pages show nothing about the tenant, so the link is safe behind the proxy.
struct OnboardController {
    let service: OnboardingService
    let links: OnboardingLinks
    let revocations: any OnboardingLinkStore

    func add(to router: Router<GatewayRequestContext>) {
        router.get("onboard/:link") { request, context in try await visit(request, context) }
    }

    func visit(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        guard let link = links.verify(try context.parameters.require("link")),
            let tenant = try? await service.tenant(id: link.tenantID), tenant.state != .offboarded
        else { return Self.page(.notFound, "Link not found", "This onboarding link is not valid. Ask for a new one.") }
        let tenantID = link.tenantID
        if link.expired {
            return Self.page(.gone, "Link expired", "This onboarding link has expired. Ask for a new one.")
        }
        if let revoked = try await revocations.onboardingLinksRevokedAt(tenantID: tenantID), link.madeAt <= revoked {
            return Self.page(.gone, "Link withdrawn", "This onboarding link was withdrawn. Ask for a new one.")
        }

        switch (tenant.state, tenant.nextAction?.type) {
        case (.active, _):
            return Self.page(.ok, "All set", "Onboarding is complete. You can close this page.")
        case (_, .awaitApproval):
            return Self.page(.ok, "Approval needed", "Approve the partnership request that was sent to your email, then you are done.")
        case (.failed, _):
            return Self.page(.ok, "We need to check your details", "Your provider could not accept the details we sent. We will be in touch.")
        default:
            do {
                let url = try await service.freshOnboardingURL(tenantID: tenantID)
                return Response(status: .found, headers: [.location: url, .cacheControl: "no-store", .referrerPolicy: "no-referrer"])
            } catch .onboardingLinkNotSupported {
                return Self.page(.ok, "Nothing to do here", "Your provider will contact you by email.")
            } catch .tenantBusy where tenant.nextAction?.type == .redirectToURL && tenant.nextAction?.url != nil {
                // Someone is asking the provider right now; the URL the customer was last given still serves.
                return Response(status: .found, headers: [.location: tenant.nextAction?.url ?? "", .cacheControl: "no-store", .referrerPolicy: "no-referrer"])
            } catch {
                return Self.page(.serviceUnavailable, "Please try again", "We could not reach your provider just now. Try again in a minute.")
            }
        }
    }

    static func page(_ status: HTTPResponse.Status, _ title: String, _ text: String) -> Response {
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>\(title)</title></head><body style="font-family:sans-serif;max-width:32em;margin:4em auto">
            <h1>\(title)</h1><p>\(text)</p></body></html>
            """
        return Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .referrerPolicy: "no-referrer"],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }
}

extension HTTPField.Name {
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
