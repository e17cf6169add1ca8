import Foundation

/// The gateway's own addresses, complete only once its port is bound (port 0 picks one at start, as tests do).
/// Read by whatever builds URLs to the gateway: webhook endpoints, sandbox login pages, sandbox adapters.
public final class ServerAddress: @unchecked Sendable {
    private let lock = NSLock()
    private var port: Int
    private var host: String
    private let configuredPublicURL: String?

    public init(host: String, port: Int, publicURL: String?) {
        self.host = host
        self.port = port
        self.configuredPublicURL = publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// Called once the server listens, with the address it actually bound ("localhost" may have become ::1).
    public func bound(ip: String?, port: Int) {
        lock.withLock {
            self.port = port
            if let ip, !["0.0.0.0", "::"].contains(ip) { self.host = ip }
        }
    }

    /// How the outside world reaches the gateway (`GATEWAY_PUBLIC_URL`, or `http://HOST:PORT`).
    public var publicURL: String {
        configuredPublicURL ?? lock.withLock { "http://\(hostForURL):\(port)" }
    }

    /// How the gateway reaches itself over loopback (sandbox adapters calling the simulators).
    public var loopbackURL: String {
        lock.withLock {
            let loopback = ["0.0.0.0", "::", ""].contains(host) ? "127.0.0.1" : host
            return "http://\(loopback.contains(":") ? "[\(loopback)]" : loopback):\(port)"
        }
    }

    private var hostForURL: String {
        host.contains(":") ? "[\(host)]" : host
    }
}
