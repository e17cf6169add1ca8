import Foundation
import GatewayCore
import Hummingbird
import Tracing

/// The gateway's four outer middlewares as one: the request's scope and access line (`RequestScopeMiddleware`), its
/// metrics (once a `MetricsMiddleware` of its own), the console's frame (`ConsoleFrame`) and problem
/// answers (`ProblemMiddleware`), in that order from the outside in, exactly as they ran as four. One level instead
/// of four: each level of Hummingbird's chain costs every request a few async frames, kept as its connection's slabs
/// for the connection's life (`docs/performance.md`, memory).
struct EdgeMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let scopes: RequestScopeMiddleware
    let metrics: GatewayMetrics
    let consoleEnabled: Bool
    let problems: ProblemMiddleware

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let scope = scopes.begin(request, context: context)
        // The access line too is written inside the span, so it carries the trace id.
        return try await InstrumentationContext.$current.withValue(scope.span?.context ?? InstrumentationContext.current) {
            let response = try await RequestScope.$requestID.withValue(scope.context.requestID) {
                try await RequestScope.$traceParent.withValue(RequestScope.currentTraceParent) { try await respond(request, scope, next) }
            }
            scopes.finish(scope, request, status: Int(response.status.code))
            return response
        }
    }

    /// Metrics, the console's frame and problem answers: every error is answered.
    private func respond(
        _ request: Request, _ scope: RequestScopeMiddleware.Scope, _ next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        if !consoleEnabled, ConsoleFrame.isConsole(request) {
            return finished(Response(status: .notFound), request, scope, since: started, framed: false)
        }
        let response: Response
        do {
            response = try await next(request, scope.context)
        } catch {
            response = problems.answer(error, request: request, context: scope.context)
        }
        return finished(response, request, scope, since: started, framed: true)
    }

    /// The answer's request id and, on the console's pages, its frame; then the metrics. Out of line, like `begin`
    /// and `finish`: the frame `respond` keeps through the request stays small.
    @inline(never)
    private func finished(
        _ response: Response, _ request: Request, _ scope: RequestScopeMiddleware.Scope, since started: ContinuousClock.Instant, framed: Bool
    ) -> Response {
        var response = response
        if framed {
            response.headers[.requestID] = scope.context.requestID
            if ConsoleFrame.isConsole(request) { ConsoleFrame.frame(&response) }
        }
        // The template, never the path: ids and tokens would make a metric per tenant.
        metrics.httpRequest(
            method: request.method.rawValue, route: scope.context.endpointPath ?? "unmatched", status: Int(response.status.code),
            duration: ContinuousClock.now - started
        )
        return response
    }
}
