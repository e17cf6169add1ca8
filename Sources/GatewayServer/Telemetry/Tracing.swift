import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Traces, exported over OTLP/HTTP when the standard OpenTelemetry variables ask for it: `OTEL_EXPORTER_OTLP_ENDPOINT`
/// (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set and `OTEL_SDK_DISABLED` not true. Otherwise spans stay no-ops and
/// nothing is sent anywhere. The rest of the OTEL_* variables (service name, headers, sampler, batch delay) apply as
/// the specification gives them; logs and metrics keep their own outputs (stdout, `/metrics`).
public enum TracingSetup {
    /// Bootstraps the process's tracer (once per process) and returns the service that batches and exports spans,
    /// to run beside the gateway and stop after it (so the last spans are flushed); nil when tracing is off.
    public static func bootstrap(environment: [String: String], logger: Logger) throws -> (any Service)? {
        guard enabled(environment) else { return nil }
        // swift-otel traps (rather than throws) on gRPC when built without it: refuse it here, with a reason.
        let proto = environment["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] ?? environment["OTEL_EXPORTER_OTLP_PROTOCOL"]
        if proto?.trimmingCharacters(in: .whitespaces).lowercased() == "grpc" {
            throw UnsupportedProtocol()
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "onboarding-gateway"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        // swift-otel logs every OTEL_* variable it reads with its value, at info whatever LOG_LEVEL says: the
        // values (a collector's token in OTEL_EXPORTER_OTLP_HEADERS, credentials in an endpoint URL) are masked
        // and the gateway's level kept.
        let base = logger.handler
        configuration.diagnosticLogger = .custom(Logger(label: "otel") { _ in MaskedDiagnostics(base: base) })
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        logger.info("tracing on: spans are exported over OTLP/HTTP")
        return backend.service
    }

    static func enabled(_ environment: [String: String]) -> Bool {
        let endpoint = [environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], environment["OTEL_EXPORTER_OTLP_ENDPOINT"]]
            .contains { !($0 ?? "").trimmingCharacters(in: .whitespaces).isEmpty }
        let disabled = environment["OTEL_SDK_DISABLED"]?.lowercased() == "true"
            || environment["OTEL_TRACES_EXPORTER"]?.trimmingCharacters(in: .whitespaces).lowercased() == "none"
        return endpoint && !disabled
    }

    struct UnsupportedProtocol: Error, CustomStringConvertible {
        var description: String {
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: the gateway exports over OTLP/HTTP (http/protobuf, the default, or http/json); point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318)"
        }
    }
}

/// swift-otel's diagnostics through the gateway's handler, with the values of the variables it read masked and the
/// gateway's level kept (swift-otel sets its own).
struct MaskedDiagnostics: LogHandler {
    static let masked: Set<String> = ["environment_value", "previous_value", "new_value"]
    var base: any LogHandler

    var logLevel: Logger.Level {
        get { base.logLevel }
        set {}  // LOG_LEVEL decides.
    }

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = Self.masking(newValue) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = Self.masked.contains(key) && newValue != nil ? "***" : newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.metadata = event.metadata.map(Self.masking)
        base.log(event: event)
    }

    static func masking(_ metadata: Logger.Metadata) -> Logger.Metadata {
        metadata.reduce(into: [:]) { $0[$1.key] = masked.contains($1.key) ? "***" : $1.value }
    }
}
