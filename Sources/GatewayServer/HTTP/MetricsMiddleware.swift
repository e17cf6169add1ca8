import Foundation
import Hummingbird

/// Counts every request by method, route template and status, with its latency. Outermost, so it sees the
/// status that was really sent (errors already turned into problem responses).
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        // The template, never the path: ids and tokens would make a metric per tenant.
        metrics.httpRequest(
            method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: Int(response.status.code),
            duration: ContinuousClock.now - started
        )
        return response
    }
}
