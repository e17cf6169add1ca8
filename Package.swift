// swift-tools-version:6.2
import PackageDescription

/// Targets enforce the direction of dependencies: the domain imports no framework,
/// GRDB lives only in storage, AsyncHTTPClient only in providers, Hummingbird only in the server.
let package = Package(
    name: "onboarding-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gateway", targets: ["gateway"]),
        .executable(name: "bench-hello", targets: ["bench-hello"]),
        .executable(name: "bench-load", targets: ["bench-load"]),
    ],
    dependencies: [
        // Default traits make SwiftPM rebuild Hummingbird at random; we need none of them.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // PostgreSQL, for several replicas on one database (GATEWAY_DATABASE_URL).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Property-based tests: arbitrary provider answers must never crash an adapter.
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // Traces: the tracing API (already under Hummingbird) and its OTLP/HTTP exporter, only when
        // OTEL_EXPORTER_OTLP_ENDPOINT is set. OTLPHTTP alone: the default traits would build gRPC too.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        // Micro-benchmarks (Benchmarks/GatewayBenchmarks); the interposer counts allocations.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(
            name: "GatewayCore",
            dependencies: [
                // APIs only, like swift-log: spans are no-ops until a backend is bootstrapped.
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "GatewayStorage",
            dependencies: [
                "GatewayCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The same ports on PostgreSQL: claims with FOR UPDATE SKIP LOCKED, shared by several gateway replicas.
        .target(
            name: "GatewayStoragePostgres",
            dependencies: [
                "GatewayCore",
                "GatewayStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Providers",
            dependencies: [
                "GatewayCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // Outbound events: Standard Webhooks signing and delivery over HTTP.
        .target(
            name: "EventDelivery",
            dependencies: [
                "GatewayCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "GatewayServer",
            dependencies: [
                "GatewayCore",
                "GatewayStorage",
                "GatewayStoragePostgres",
                "Providers",
                "EventDelivery",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ]
        ),
        .executableTarget(
            name: "gateway",
            dependencies: [
                "GatewayCore",
                "GatewayServer",
                "GatewayStorage",
                "Providers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The same-run baseline of scripts/bench.sh: Hummingbird's hello world.
        .executableTarget(
            name: "bench-hello",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Benchmarks/HelloWorld"
        ),
        // scripts/bench.sh's large database: N tenants written through the gateway's own store.
        .executableTarget(
            name: "bench-load",
            dependencies: ["GatewayCore", "GatewayStorage", "GatewayServer", "Providers"],
            path: "Benchmarks/Load"
        ),
        // In-process micro-benchmarks: `swift package benchmark` (release) or the executable itself (smoke).
        .executableTarget(
            name: "GatewayBenchmarks",
            dependencies: [
                "GatewayCore", "GatewayStorage", "GatewayServer", "Providers",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/GatewayBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Test support shared by the test targets: a sandbox gateway on a live loopback port, a clock, log capture.
        .target(
            name: "GatewayTesting",
            dependencies: [
                "GatewayServer",
                "GatewayStoragePostgres",
                "Providers",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore", "Providers", "GatewayTesting"]),
        .testTarget(name: "GatewayStorageTests", dependencies: ["GatewayStorage", "GatewayStoragePostgres", "GatewayTesting"]),
        .testTarget(
            name: "ProvidersTests",
            dependencies: ["Providers", "GatewayTesting", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "EventDeliveryTests", dependencies: ["EventDelivery", "GatewayTesting"]),
        .testTarget(
            name: "GatewayServerTests",
            dependencies: [
                "GatewayServer",
                "GatewayStorage",
                "GatewayStoragePostgres",
                "GatewayTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ]
)
