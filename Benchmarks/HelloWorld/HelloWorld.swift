import Hummingbird

/// The baseline of `scripts/bench.sh`: Hummingbird's hello world, built with the gateway's own flags and versions,
/// so every figure of the gateway is read as a ratio of what the framework itself does on the same machine, in
/// the same run.
///
///     bench-hello [port]
@main
struct HelloWorld {
    static func main() async throws {
        let port = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 8090
        let router = Router()
        router.get("/") { _, _ in "Hello, world!" }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil))
        try await app.runService()
    }
}
