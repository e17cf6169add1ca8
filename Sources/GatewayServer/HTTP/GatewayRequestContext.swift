import GatewayCore
import Hummingbird
import Logging
import NIOCore

/// Who made a request, once authenticated.
public enum Principal: Sendable, Equatable {
    /// A partner API key, with its name (for the audit log) and scopes.
    case partner(name: String, scopes: Set<Scope>)
    /// The operator, with `GATEWAY_ADMIN_TOKEN`.
    case admin
    /// An operator signed in to the console (with the admin token, exchanged for a session).
    case console

    public var auditName: String {
        switch self {
        case .partner(let name, _): "api_key:\(name)"
        case .admin: "admin"
        case .console: "console"
        }
    }
}

extension GatewayRequestContext {
    /// Who to name in the audit log for this request.
    var actor: Actor {
        Actor(name: principal?.auditName ?? "anonymous", ip: clientIP)
    }
}

/// What a partner key may do.
public enum Scope: String, Sendable, CaseIterable {
    case tenantsRead = "tenants:read"
    case tenantsWrite = "tenants:write"
    case credentialsRead = "credentials:read"
    /// Short-lived access tokens (`POST …/access-token`), never the long-lived secret.
    case tokensIssue = "tokens:issue"
    /// Calls through the provider proxy (`…/provider/{path}`).
    case providerProxy = "provider:proxy"
}

/// The per-request context: Hummingbird's core storage plus the request id and the authenticated principal.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String = ""
    public var principal: Principal?
    public let remoteAddress: SocketAddress?
    /// The client's address: the peer's, or (through a trusted proxy) the forwarded one.
    public var clientIP: String?
    /// The request reached the proxy over HTTPS (`X-Forwarded-Proto: https` from a trusted proxy).
    public var viaHTTPS = false
    /// A signed-in console request: its session's CSRF token and the posted form.
    var console: ConsoleRequest?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Bodies are read by hand with explicit limits (`JSONBody`); this caps anything decoded the default way.
    public var maxUploadSize: Int { 1 << 20 }
}
