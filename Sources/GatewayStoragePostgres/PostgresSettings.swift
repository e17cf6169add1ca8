import Foundation

/// Where the PostgreSQL database is, read from `GATEWAY_DATABASE_URL`:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require&search_path=SCHEMA&pool_size=N]`.
/// Problems never repeat the URL, which may hold the password.
public struct PostgresSettings: Sendable, Equatable {
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// The schema the gateway's tables live in (`search_path`); nil is the database's default (`public`).
    public var schema: String?
    /// Connections this process keeps to the database at most.
    public var poolSize: Int

    public init(
        host: String, port: Int = 5432, username: String, password: String?, database: String, tls: TLSMode = .prefer, schema: String? = nil,
        poolSize: Int = 20
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.schema = schema
        self.poolSize = poolSize
    }

    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public init(url text: String) throws(Invalid) {
        func invalid(_ why: String) -> Invalid {
            Invalid(description: "GATEWAY_DATABASE_URL \(why) (expected postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require)")
        }
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased() else { throw invalid("is not a URL") }
        guard scheme == "postgres" || scheme == "postgresql" else { throw invalid("must start with postgres://") }
        guard let host = url.host, !host.isEmpty else { throw invalid("names no host") }
        guard let user = url.user, !user.isEmpty else { throw invalid("names no user") }
        let database = String(url.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw invalid("names no database (the path after the host)") }
        self.init(host: host, port: url.port ?? 5432, username: user, password: url.password, database: database)
        for item in url.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                switch value {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require", "verify-ca", "verify-full": tls = .require
                default: throw invalid("has sslmode=\(value); use disable, prefer or require")
                }
            case "search_path", "schema":
                guard value.wholeMatch(of: /[a-z_][a-z0-9_]{0,62}/) != nil else {
                    throw invalid("has a search_path that is not a plain lower-case schema name")
                }
                schema = value
            case "pool_size":
                guard let size = Int(value), (1...500).contains(size) else { throw invalid("has pool_size=\(value); use 1 to 500") }
                poolSize = size
            default:
                throw invalid("has the unknown parameter \(item.name); known: sslmode, search_path, pool_size")
            }
        }
    }

    /// The URL without its password, for logs.
    public var redacted: String {
        "postgres://\(username)@\(host):\(port)/\(database)" + (schema.map { "?search_path=\($0)" } ?? "")
    }
}
