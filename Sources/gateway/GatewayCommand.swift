// First, before anything imports the C library without it: Swift 6 refuses plain references to C's `stdout`
// (a mutable global in glibc's headers); @preconcurrency lets `writeThroughStandardOutput` name it.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif
import ArgumentParser
import Foundation
import GatewayCore
import GatewayServer
import GatewayStorage
import Logging
import Providers
import ServiceLifecycle

/// The command line: `gateway serve [--sandbox]` and `gateway migrate`. Everything else lives in GatewayServer.
@main
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Onboarding gateway for invoicing providers (\(ProviderModules.shipped.map(\.displayName).joined(separator: ", "))).",
        subcommands: [Serve.self, Migrate.self, RotateKey.self, ImportSQLite.self, Simulate.self, ListProviders.self]
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")

    @Flag(help: "Simulate every provider in-process and generate missing secrets (kept in the data directory).")
    var sandbox = false

    func run() async throws {
        writeThroughStandardOutput()
        var config = try loadConfig(sandbox: sandbox)
        let logger = bootstrapLogging(config)
        if config.logFormat == .json { config.logQueue = .standardOutput }
        let tracing = try bootstrapTracing(logger)
        let gateway: Gateway
        do {
            gateway = try await Gateway.build(config: config, logger: logger)
        } catch let locked as SQLiteServingLocked {
            FileHandle.standardError.write(Data(("The gateway cannot start: \(locked.description)\n").utf8))
            throw ExitCode(75)  // EX_TEMPFAIL: it may start once the other process is gone
        }
        if sandbox { printSandboxBanner(gateway) }
        var application = gateway.application
        // First in the group, so it stops last: spans of the gateway's last work are flushed before exit.
        if let tracing { application.services.insert(tracing, at: 0) }
        // A gateway told to stop must stop, whatever it waits on (docker stop sends SIGKILL after 10 s): 8 s to finish
        // in-flight requests and work, then their tasks are cancelled, and after 4 s more the process ends anyway.
        var group = ServiceGroupConfiguration(services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(8)
        group.maximumCancellationDuration = .seconds(4)
        try await ServiceGroup(configuration: group).run()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply migrations/*.sql to the database and exit.")

    func run() async throws {
        writeThroughStandardOutput()
        let config = try loadConfig(sandbox: true)
        let applied = try await Gateway.migrate(config)
        print(applied.isEmpty ? "The database is up to date." : "Applied migrations: \(applied.map(String.init).joined(separator: ", ")).")
    }
}

struct RotateKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Re-encrypt every stored secret under the newest key of GATEWAY_ENCRYPTION_KEY.",
        discussion: """
            Put the new key first in GATEWAY_ENCRYPTION_KEY (new,old), restart the gateway with it, then run this \
            (safe while the gateway serves). When it reports done, the old key can be removed.
            """
    )

    func run() async throws {
        writeThroughStandardOutput()
        let config = try loadConfig(sandbox: false)
        let moved = try await Gateway.rotateKey(config)
        let total = moved.values.reduce(0, +)
        print("Re-encrypted \(total) value(s) under the newest key: " + moved.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        print("Every stored secret now uses the first key of GATEWAY_ENCRYPTION_KEY; older keys can be removed.")
    }
}

struct ImportSQLite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-sqlite",
        abstract: "Copy a SQLite gateway's data into the empty PostgreSQL database of GATEWAY_DATABASE_URL.",
        discussion: """
            For moving a single gateway to several replicas with its tenants, credentials, history, keys and pending \
            work. Stop the SQLite gateway first (or import a copy made by POST /admin/backup), and give this command \
            the GATEWAY_ENCRYPTION_KEY the SQLite gateway had: sealed values are copied as they are. One transaction: \
            a failed import leaves PostgreSQL as it was. A database that already holds tenants is refused.
            """
    )

    @Argument(help: "The SQLite file (the data directory's gateway.sqlite, or a backup).")
    var path: String

    func run() async throws {
        writeThroughStandardOutput()
        let config = try loadConfig(sandbox: false)
        do {
            let copied = try await Gateway.importSQLite(config, from: path) { table, rows in
                if rows % 10_000 == 0 { print("  \(table): \(rows) rows so far") }
            }
            print("Imported: " + copied.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            print("Start the replicas with the same GATEWAY_ENCRYPTION_KEY and GATEWAY_DATABASE_URL.")
        } catch let refusal as CustomStringConvertible {
            FileHandle.standardError.write(Data(("import-sqlite: " + refusal.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}

struct ListProviders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "providers",
        abstract: "Print the provider modules this build registers, as JSON: capabilities, typed-credential fields, sandbox helpers, OpenAPI fragments."
    )

    func run() async throws {
        LineWriter.standardOutput.write(line: String(decoding: try ProviderCatalog.json(), as: UTF8.self))
    }
}

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve only the provider simulators, for several gateway replicas to share (tests, load runs).",
        discussion: """
            Each provider's simulator answers under /sandbox/<provider> (\(ProviderModules.shipped.map(\.kind.rawValue).joined(separator: ", "))), \
            its test helpers under /sandbox/test-helpers/<provider>, exactly as `serve --sandbox` serves them. They accept \
            the credentials of the environment the gateways read (each provider's own variables, listed in \
            docs/configuration.md); point each provider's <PROVIDER>_BASE_URL at http://HOST:PORT/sandbox/<provider>. Never for production: there is no authentication on the helpers.
            """
    )

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0: any free port, printed at start).")
    var port = 8090

    @Option(name: .customLong("answer-delay-ms"), help: "Answer every partner-API call this many milliseconds late (a slow provider).")
    var answerDelayMilliseconds = 0

    func run() async throws {
        writeThroughStandardOutput()
        var settings: SimulatorServer.Settings
        do {
            settings = try SimulatorServer.settings(environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(78)
        }
        settings.host = host
        settings.port = port
        settings.answerDelayMilliseconds = max(0, answerDelayMilliseconds)
        let logger = bootstrapLogging(try loadConfig(sandbox: true))
        let application = await SimulatorServer.build(settings, logger: logger)
        try await application.runService()
    }
}

/// Makes stdout line-buffered before anything is written to it. By default stdio buffers whole blocks when stdout
/// is a pipe or a file (Docker, systemd): output showed up late and a kill -9 lost the last lines, cut mid-line.
/// Logs and the banner go through `LineWriter` (write(2), no buffer) anyway; this covers every other `print`.
func writeThroughStandardOutput() {
    setvbuf(stdout, nil, _IOLBF, 0)
}

func loadConfig(sandbox: Bool) throws -> GatewayConfig {
    do {
        return try GatewayConfig.load(environment: ProcessInfo.processInfo.environment, sandbox: sandbox)
    } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode(78)  // EX_CONFIG
    }
}

func bootstrapLogging(_ config: GatewayConfig) -> Logger {
    let level = config.logLevel
    switch config.logFormat {
    case .json:
        // Formatted and written by the log queue's thread; what is queued at exit is written before the process ends.
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level, queue: .standardOutput) }
        atexit { LogQueue.standardOutput.flush() }
    case .text:
        // The request (and span) a line was written for, from the task that writes it (JSONLogHandler does the same).
        let requestScope = Logger.MetadataProvider { RequestScope.logMetadata }
        LoggingSystem.bootstrap({ label, provider in
            var handler = StreamLogHandler.standardOutput(label: label, metadataProvider: provider)
            handler.logLevel = level
            return handler
        }, metadataProvider: requestScope)
    }
    return Logger(label: "gateway")
}

/// The OTLP exporter when OTEL_EXPORTER_OTLP_ENDPOINT asks for one; a configuration it refuses stops the start.
func bootstrapTracing(_ logger: Logger) throws -> (any Service)? {
    do {
        return try TracingSetup.bootstrap(environment: ProcessInfo.processInfo.environment, logger: logger)
    } catch {
        FileHandle.standardError.write(Data(("OTEL_* configuration: \(error)\n").utf8))
        throw ExitCode(78)
    }
}

/// The first module's create example, as the banner's curl sends it.
func tryExample(_ gateway: Gateway) -> String {
    guard let module = gateway.config.modules.first,
        let data = try? { () throws -> Data in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return try encoder.encode(module.openAPI.createExample)
        }()
    else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

func printSandboxBanner(_ gateway: Gateway) {
    let key = gateway.config.apiKey ?? "(GATEWAY_API_KEY)"
    let url = gateway.address.publicURL
    // One write, at once: the key is what the reader needs next, and it must not wait in a buffer.
    LineWriter.standardOutput.write(line: """

        Onboarding gateway — SANDBOX. Every provider is simulated in-process; nothing leaves this machine.
          API:          \(url)/v1/tenants   (described in \(url)/openapi.yaml)
          Console:      \(url)/console   (sign in with the admin token)
          Partner key:  \(key)
          Admin token:  \(gateway.config.adminToken ?? "(none)")
          Secrets file: \(URL(fileURLWithPath: gateway.config.dataDirectory).appendingPathComponent("sandbox-secrets.json").path)   (the key and token above)
          Data:         \(gateway.config.databasePath)
          Docs:         README.md ("Five minutes in the sandbox"), docs/integrate.md, docs/operations.md

        Try it:
          curl -s -X POST \(url)/v1/tenants -H 'Authorization: Bearer \(key)' -H 'Content-Type: application/json' \\
            -d '\(tryExample(gateway))'

        """)
}
