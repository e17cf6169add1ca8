import CoreMetrics
import EventDelivery
import Foundation
import GatewayCore
import Prometheus
import Synchronization

/// The gateway's metrics, on a registry of its own (no process-wide bootstrap, so tests can build many gateways).
/// Counters and histograms are recorded as things happen; gauges are read from the database at each scrape.
final class GatewayMetrics: ProviderCallObserver, Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    /// Where log lines go, and how many of its drops the counter already holds.
    let logQueue: LogQueue?
    private let droppedReported = Mutex(0)

    init(logQueue: LogQueue? = nil) {
        self.logQueue = logQueue
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
        ]
        self.factory = factory
        // Every delivery outcome exists from the start, at 0: a counter born at 1 hides its first increase from
        // Prometheus's increase() and rate(), and a given-up event is rare enough to be the first.
        for outcome in ["delivered", "retry", "failed", "endpoint_gone"] {
            _ = Counter(label: "event_deliveries_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        _ = Counter(label: "log_lines_dropped_total", factory: factory)
    }

    /// A metric's name as swift-prometheus's descriptor takes it (no unit suffix, no help line: the names stay as the
    /// dashboard and alerts read them).
    static func named(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: "")
    }

    func httpRequest(method: String, route: String, status: Int, duration: Duration) {
        let key = HTTPSeries(method: method, route: route, status: status)
        let (counter, timer) = httpSeries.withLock { $0[key] } ?? {
            let made = (
                Counter(label: "http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))], factory: factory),
                Timer(label: "http_request_duration_seconds", dimensions: [("method", method), ("route", route)], factory: factory)
            )
            httpSeries.withLock { series in
                if series.count < Self.httpSeriesKept { series[key] = made }
            }
            return made
        }()
        counter.increment()
        timer.recordNanoseconds(duration.nanoseconds)
    }

    /// The label values of one request's series.
    struct HTTPSeries: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    /// Each request's counter and timer, found once in the registry and kept: the registry's lookup (its lock, the
    /// labels checked and hashed) for two metrics was a tenth of a `/healthz` answer's own work. Methods (the
    /// parser's fixed set), route templates and statuses are all bounded; the bound here holds whatever happens.
    private let httpSeries = Mutex<[HTTPSeries: (CoreMetrics.Counter, CoreMetrics.Timer)]>([:])
    static let httpSeriesKept = 4_096

    func providerCall(provider: ProviderKind, operation: String, outcome: String, duration: TimeInterval) {
        let labels = [("provider", provider.rawValue), ("operation", operation)]
        Counter(label: "provider_calls_total", dimensions: labels + [("outcome", outcome)], factory: factory).increment()
        if outcome != "short_circuited" {
            Timer(label: "provider_call_duration_seconds", dimensions: labels, factory: factory).recordNanoseconds(Int64(duration * 1e9))
        }
    }

    /// One call through the provider proxy: the provider, the route template (never the provider path, which is the
    /// caller's and unbounded), and the status answered (the provider's, or the gateway's own refusal).
    func proxyCall(provider: ProviderKind, status: Int, duration: Duration) {
        let labels = [("provider", provider.rawValue), ("route", ProxyController.routeTemplate), ("status", String(status))]
        Counter(label: "provider_proxy_requests_total", dimensions: labels, factory: factory).increment()
        Timer(label: "provider_proxy_duration_seconds", dimensions: [("provider", provider.rawValue)], factory: factory).recordNanoseconds(duration.nanoseconds)
    }

    func webhookReceived(provider: String, outcome: String) {
        Counter(label: "webhooks_received_total", dimensions: [("provider", provider), ("outcome", outcome)], factory: factory).increment()
    }

    func delivery(_ result: DeliveryResult) {
        let outcome = switch result {
        case .delivered: "delivered"
        case .retry: "retry"
        case .failed: "failed"
        case .endpointGone: "endpoint_gone"
        }
        Counter(label: "event_deliveries_total", dimensions: [("outcome", outcome)], factory: factory).increment()
    }

    /// Reads the gauges from the database and renders everything in the Prometheus text format. The readings are
    /// counters the database keeps up to date and two index lookups, so a scrape stays cheap however big the tables grow.
    func scrape(from store: any MetricsStore, service: OnboardingService, now: Date, stuckAfter: TimeInterval) async throws -> [UInt8] {
        let readings = try await store.metricsReadings(stuckBefore: now.addingTimeInterval(-stuckAfter))
        for provider in service.registry.kinds {
            for state in TenantState.allCases {
                registry.makeGauge(descriptor: Self.named("tenants"), labels: [("provider", provider.rawValue), ("state", state.rawValue)])
                    .set(Double(readings.tenants[provider.rawValue]?[state.rawValue] ?? 0))
            }
            let circuit: Double = switch await service.health[provider]?.snapshot(now: now).state {
            case .open: 2
            case .halfOpen: 1
            default: 0
            }
            registry.makeGauge(descriptor: Self.named("provider_circuit_state"), labels: [("provider", provider.rawValue)]).set(circuit)
        }
        for kind in [WorkKind.submit, .check, .webhook] {
            registry.makeGauge(descriptor: Self.named("work_queued"), labels: [("kind", kind.rawValue)]).set(Double(readings.queuedWork[kind.rawValue] ?? 0))
        }
        // How long the most overdue work has been due; 0 when nothing is due yet.
        let overdue = readings.earliestWorkAt.map { now.timeIntervalSince($0) } ?? 0
        registry.makeGauge(descriptor: Self.named("work_oldest_due_seconds")).set(max(0, overdue))
        // Waiting (pending or action_required) longer than GATEWAY_STUCK_AFTER_SECONDS, as /admin/stats counts them.
        registry.makeGauge(descriptor: Self.named("tenants_stuck")).set(Double(readings.stuckTenants))
        registry.makeGauge(descriptor: Self.named("event_deliveries_pending")).set(Double(readings.deliveries[DeliveryRecord.Status.pending.rawValue] ?? 0))
        let pendingAge = readings.oldestPendingDeliveryAt.map { now.timeIntervalSince($0) } ?? 0
        registry.makeGauge(descriptor: Self.named("event_deliveries_oldest_pending_seconds")).set(max(0, pendingAge))
        // Log lines the queue dropped because its output could not keep up (a blocked stdout).
        if let logQueue {
            let dropped = logQueue.dropped
            let delta = droppedReported.withLock { reported in
                defer { reported = max(reported, dropped) }
                return max(0, dropped - reported)
            }
            if delta > 0 { Counter(label: "log_lines_dropped_total", factory: factory).increment(by: delta) }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
