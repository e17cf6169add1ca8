import Foundation
import GatewayCore
import Hummingbird
import NIOCore

/// `/webhooks/{provider}/{token}`: where providers post. The token in the path identifies the tenant; the payload is
/// stored durably before `200` and processed from the inbox by the worker.
struct WebhooksController {
    static let maxBody = 64 * 1024
    /// The two answers, made once (intake's hot path; a JSON encoder per webhook cost more than the answer).
    static let storedAnswer = ByteBuffer(string: #"{"duplicate":false,"received":true}"#)
    static let duplicateAnswer = ByteBuffer(string: #"{"duplicate":true,"received":true}"#)
    let service: OnboardingService
    let metrics: GatewayMetrics

    var endpoints: RouteCollection<GatewayRequestContext> {
        // One route shape, `/webhooks/{provider}/{token}`, registered per provider whose module receives webhooks: the
        // route template in logs, spans and metrics names the provider (`/webhooks/wrapp/{token}`), and a path for
        // any other provider is the router's 404.
        var routes = RouteCollection(context: GatewayRequestContext.self)
        for kind in service.registry.kinds where service.registry.definition(kind)?.capabilities.receivesWebhooks == true {
            routes = routes.post("\(kind.rawValue)/:token") { request, context in try await receive(kind, request, context) }
        }
        return routes
    }

    @Sendable func receive(_ kind: ProviderKind, _ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let provider = kind.rawValue
        do {
            let token = try context.parameters.require("token")
            var request = request
            let body = try await request.collectBody(upTo: Self.maxBody)
            let receipt = try await service.receiveWebhook(provider: kind, token: token, body: Data(body.readableBytesView), from: context.clientIP)
            metrics.webhookReceived(provider: provider, outcome: receipt == .duplicate ? "duplicate" : "stored")
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: receipt == .duplicate ? Self.duplicateAnswer : Self.storedAnswer)
            )
        } catch {
            let outcome = switch error {
            case OnboardingError.webhookTokenUnknown: "unknown_token"
            case OnboardingError.webhookMalformed: "malformed"
            case OnboardingError.webhookRejected: "rejected"
            case is NIOTooManyBytesError: "too_large"
            default: "error"
            }
            metrics.webhookReceived(provider: provider, outcome: outcome)
            throw error
        }
    }
}

/// `/healthz`, `/readyz` and `/openapi.yaml`.
struct HealthController {
    /// `application/yaml` (RFC 9512), or `text/yaml` for a client that asks for it and not for `application/yaml`
    /// (generated clients read `text/*` as a string).
    static func specMediaType(accept: String?) -> String {
        let ranges = (accept ?? "").lowercased().split(separator: ",").map { ($0.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces) }
        return ranges.contains("text/yaml") && !ranges.contains("application/yaml") ? "text/yaml" : "application/yaml"
    }

    let isReady: @Sendable () async -> Bool
    /// The spec, read once at start (`docs/openapi.yaml`).
    let openAPI: Data

    func add(to router: Router<GatewayRequestContext>) {
        router.get("openapi.yaml") { request, _ in
            Response(
                status: .ok, headers: [.contentType: Self.specMediaType(accept: request.headers[.accept])],
                body: .init(byteBuffer: ByteBuffer(bytes: openAPI))
            )
        }
        // Probes come often: the answer is made once.
        let healthy = ByteBuffer(string: #"{"status":"ok"}"#)
        router.get("healthz") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: healthy)) }
        router.get("readyz") { _, _ in
            guard await isReady() else {
                throw Problem(.serviceUnavailable, code: "not_ready", detail: "The database does not answer or migrations are not applied.")
            }
            return try Response.json(["status": "ready"])
        }
    }
}
