import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Providers

/// Serves each provider's simulator under `/sandbox/<provider>/…` (sandbox mode and tests), so the real adapters
/// reach them over real HTTP.
struct SandboxController {
    let simulators: Gateway.Simulators

    func add(to router: Router<GatewayRequestContext>) {
        for (kind, simulator) in simulators.byProvider.sorted(by: { $0.key < $1.key }) {
            for method in [HTTPRequest.Method.get, .post, .put, .delete] {
                router.on("sandbox/\(kind.rawValue)/**", method: method) { request, context in
                    try await forward(request, context) { await simulator.handle($0) }
                }
            }
        }
    }

    private func forward(
        _ request: Request, _ context: GatewayRequestContext, to handler: (SimulatedRequest) async -> SimulatedResponse
    ) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        let path = "/" + context.parameters.getCatchAll().joined(separator: "/")
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let simulated = await handler(SimulatedRequest(
            method: request.method.rawValue, path: path, query: query, headers: headers, body: Data(body.readableBytesView)
        ))
        var fields = HTTPFields()
        for (name, value) in simulated.headers {
            if let fieldName = HTTPField.Name(name) { fields[fieldName] = value }
        }
        if simulated.resetsConnection { return Self.reset(simulated, headers: fields) }
        return Response(status: .init(code: simulated.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: simulated.body)))
    }

    /// A dropped connection: the head promises more bytes (`Content-Length`) than are ever sent; the body writer sends
    /// a few and throws, and Hummingbird closes the connection on a body that fails. The caller sees the connection
    /// closed in the middle of the answer.
    private static func reset(_ simulated: SimulatedResponse, headers: HTTPFields) -> Response {
        let partial = ByteBuffer(bytes: simulated.body.prefix(16))
        let promised = max(simulated.body.count, partial.readableBytes) + 512
        let body = ResponseBody(contentLength: promised) { writer in
            if partial.readableBytes > 0 { try await writer.write(partial) }
            throw SimulatedConnectionReset()
        }
        return Response(status: .init(code: simulated.status), headers: headers, body: body)
    }
}

/// Thrown by the body of a simulated connection reset, so the server drops the connection mid-answer.
private struct SimulatedConnectionReset: Error {}
