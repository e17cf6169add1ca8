import Foundation
import GatewayCore
import Hummingbird
import Providers

/// `/sandbox/test-helpers/…` (sandbox mode only): what the customer and the provider would do, for the partner's own
/// integration tests. Each module brings its own helpers (`ProviderSimulator.sandboxHelpers`), mounted under
/// `/sandbox/test-helpers/<provider>/`; fault injection is shared by all. Each acts on the in-process simulators exactly
/// as the simulated provider pages and APIs do; nothing here touches the gateway's own records, which learn of every
/// change the way they would from the real provider.
struct SandboxHelpersController {
    let simulators: Gateway.Simulators
    let modules: [any ProviderModule]

    func add(to group: RouterGroup<GatewayRequestContext>) {
        for module in modules {
            guard let simulator = simulators[module.kind] else { continue }
            for helper in simulator.sandboxHelpers {
                let path = "\(module.kind.rawValue)/" + helper.path.split(separator: "/").map { part in
                    part.hasPrefix("{") && part.hasSuffix("}") ? ":" + part.dropFirst().dropLast() : String(part)
                }.joined(separator: "/")
                group.on(RouterPath(path), method: .init(helper.method.rawValue)!) { request, context in
                    try await Self.run(helper, request, context)
                }
            }
        }
        group.post(":provider/faults", use: injectFault)
        group.delete(":provider/faults", use: clearFaults)
    }

    static func run(_ helper: SandboxHelper, _ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        var parameters: [String: String] = [:]
        for name in helper.parameterNames { parameters[name] = try context.parameters.require(name) }
        var body: JSONValue?
        if helper.takesBody {
            body = .object(try JSONBody.values(try await JSONBody.read(request, limit: 4096)))
        }
        switch await helper.handle(SandboxHelperRequest(parameters: parameters, body: body)) {
        case .ok(let value):
            return try Response.json(value)
        case .refused(let status, let code, let detail, let errors):
            throw Problem(.init(code: status), code: code, detail: detail, errors: errors)
        }
    }

    // MARK: - Faults

    static let styles: [String: SimulatedFault.Style] = [
        "message": .message, "error": .error, "errors_message": .errorsMessage, "errors_string": .errorsString, "html": .html,
        "envelope_error": .envelopeError, "garbage": .garbage, "late_success": .lateSuccess, "reset": .reset,
    ]

    struct Faults: Encodable {
        var provider: String
        var pending: Int
    }

    @Sendable func injectFault(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let (module, simulator) = try provider(context)
        let reader = FieldReader(try await JSONBody.read(request, limit: 4096))
        reader.allowOnly(["operation", "status", "style", "times", "retry_after", "retry_after_header", "delay_ms"])
        for key in reader.object.keys.sorted() where reader.object[key] is NSNull {
            reader.fail(key, "invalid_type", "Leave the field out rather than send null.")
        }
        let known = module.faultOperations
        let operation = reader.string("operation", required: true)
        if let operation, !known.contains(operation) {
            reader.fail("operation", "invalid", "One of \(known.joined(separator: ", ")) for \(module.kind.rawValue).")
        }
        let status = reader.integer("status", in: 200...599, required: true)
        let styleName = reader.string("style") ?? "message"
        let style = Self.styles[styleName]
        if style == nil { reader.fail("style", "invalid", "One of \(Self.styles.keys.sorted().joined(separator: ", ")).") }
        let times = reader.integer("times", in: 1...1000) ?? 1
        let retryAfter = reader.integer("retry_after", in: 0...3600)
        let delay = reader.integer("delay_ms", in: 0...60_000)
        let retryAfterHeader = reader.string("retry_after_header")
        if let retryAfterHeader, retryAfterHeader.utf8.count > 64 || retryAfterHeader.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value > 0x7E }) {
            reader.fail("retry_after_header", "invalid", "Up to 64 printable ASCII characters, sent as Retry-After as written.")
        }
        if style == .lateSuccess, delay == nil, reader.object["delay_ms"] == nil {
            reader.fail("delay_ms", "required", "A late success needs delay_ms: how long the answer is held back.")
        }
        try reader.throwIfInvalid()
        guard let operation, let status, let style else { throw Problem.validation([]) }
        await simulator.add(SimulatedFault(
            operation: operation, status: status, style: style, times: times, retryAfter: retryAfter, retryAfterHeader: retryAfterHeader,
            delayMilliseconds: delay
        ))
        return try Response.json(Faults(provider: module.kind.rawValue, pending: await simulator.pendingFaults))
    }

    @Sendable func clearFaults(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let (module, simulator) = try provider(context)
        await simulator.clearFaults()
        return try Response.json(Faults(provider: module.kind.rawValue, pending: 0))
    }

    private func provider(_ context: GatewayRequestContext) throws -> (any ProviderModule, any ProviderSimulator) {
        let name = try context.parameters.require("provider")
        guard let module = modules.first(where: { $0.kind.rawValue == name }), let simulator = simulators[module.kind] else {
            let names = modules.filter { simulators[$0.kind] != nil }.map(\.kind.rawValue)
            throw Problem(.notFound, code: "not_found", detail: "No such provider: \(names.joined(separator: " or ")).")
        }
        return (module, simulator)
    }
}
