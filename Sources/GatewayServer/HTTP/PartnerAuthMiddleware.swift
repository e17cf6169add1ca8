import Crypto
import Foundation
import GatewayCore
import Hummingbird

/// Authenticates `/v1` with `Authorization: Bearer <key>`: `GATEWAY_API_KEY` (every scope) or a key made through
/// the admin API (its scopes). Keys are compared in constant time as SHA-256 digests and never logged.
struct PartnerAuthMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let keys: PartnerKeys

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let presented = request.bearerToken, let principal = try await keys.principal(for: presented) else {
            throw Problem.unauthorized
        }
        var context = context
        context.principal = principal
        return try await next(request, context)
    }
}

/// Recognises partner keys. Keys made by the admin API look like `gwk_<8 characters>_<secret>`; the part before
/// the second underscore is the visible prefix they are looked up by.
struct PartnerKeys: Sendable {
    let environmentKeyDigest: SHA256.Digest?
    let store: any APIKeyStore

    init(environmentKey: String?, store: any APIKeyStore) {
        environmentKeyDigest = environmentKey.map { SHA256.hash(data: Data($0.utf8)) }
        self.store = store
    }

    func principal(for presented: String) async throws -> Principal? {
        let digest = SHA256.hash(data: Data(presented.utf8))
        if let expected = environmentKeyDigest, constantTimeEqual(Data(digest), Data(expected)) {
            return .partner(name: "GATEWAY_API_KEY", scopes: Set(Scope.allCases))
        }
        guard let prefix = Self.prefix(of: presented), let (record, hash) = try await store.apiKey(prefix: prefix),
            record.revokedAt == nil, constantTimeEqual(Data(digest), hash)
        else { return nil }
        return .partner(name: record.prefix, scopes: Set(record.scopes.compactMap(Scope.init(rawValue:))))
    }

    static func prefix(of key: String) -> String? {
        guard key.hasPrefix("gwk_"), key.count > 13 else { return nil }
        let prefix = String(key.prefix(12))
        return key.dropFirst(12).first == "_" ? prefix : nil
    }

    /// A new key: the full secret (shown once), its visible prefix and the hash that is stored.
    static func make(random: any Randomness) -> (key: String, prefix: String, hash: Data) {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyz23456789")
        let prefix = "gwk_" + String(random.bytes(8).map { alphabet[Int($0) % alphabet.count] })
        let key = prefix + "_" + random.token(bits: 192)
        return (key, prefix, Data(SHA256.hash(data: Data(key.utf8))))
    }
}

/// Authenticates `/admin` with `GATEWAY_ADMIN_TOKEN`. Without a token configured the admin API does not exist
/// (404); a partner key is recognised and refused (403); anything else is 401.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let tokenDigest: SHA256.Digest?
    let partnerKeys: PartnerKeys
    /// Shared with the console's sign-in: wrong admin tokens from one address (an IPv6 /64) count together, wherever
    /// they are tried.
    let limiter: SignInLimiter
    let audit: any TenantStore
    let clock: any GatewayClock

    init(adminToken: String?, partnerKeys: PartnerKeys, limiter: SignInLimiter, audit: any TenantStore, clock: any GatewayClock) {
        tokenDigest = adminToken.map { SHA256.hash(data: Data($0.utf8)) }
        self.partnerKeys = partnerKeys
        self.limiter = limiter
        self.audit = audit
        self.clock = clock
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let expected = tokenDigest else { throw HTTPError(.notFound) }
        guard let presented = request.bearerToken else { throw Problem.unauthorized }
        let now = clock.now()
        let address = SignInLimiter.key(for: context.clientIP)
        let matches = constantTimeEqual(Data(SHA256.hash(data: Data(presented.utf8))), Data(expected))
        // The right token is never counted (parallel requests of an operator cannot throttle each other), but an
        // address that used up its attempts is refused even with it, so guessing gains nothing from the limit.
        let wait = matches ? await limiter.wait(address, now: now) : await limiter.attempt(address, now: now)
        if let wait {
            context.logger.warning("admin API refused: too many wrong admin tokens from this address")
            let seconds = Bounds.wholeSeconds(wait.rounded(.up))
            throw Problem(
                .tooManyRequests, code: "rate_limited", detail: "Too many wrong admin tokens from your address. Try again in \(seconds) seconds.",
                headers: [.retryAfter: "\(seconds)"]
            )
        }
        guard matches else {
            if try await partnerKeys.principal(for: presented) != nil {
                // A partner key in the wrong place is a mistake, not a guess: it does not count against the address.
                await limiter.succeeded(address, at: now)
                throw Problem(.forbidden, code: "forbidden", detail: "Partner keys cannot use the admin API.")
            }
            let actor = Actor(name: "admin-api", ip: context.clientIP)
            try await audit.audit(AuditEntry(at: now, actor: actor, action: "admin.auth_failed", tenantID: nil))
            if await limiter.isAtLimit(address, now: now) {
                try await audit.audit(AuditEntry(at: now, actor: actor, action: "admin.auth_throttled", tenantID: nil))
            }
            throw Problem.unauthorized
        }
        var context = context
        context.principal = .admin
        return try await next(request, context)
    }
}

extension Request {
    var bearerToken: String? {
        guard let header = headers[.authorization] else { return nil }
        let parts = header.utf8.split(separator: UInt8(ascii: " "), maxSplits: 1)
        // "Bearer", in any case, compared byte by byte (Foundation's lowercasing and trimming were a visible cost).
        guard parts.count == 2, parts[0].count == 6, zip(parts[0], "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        var token = parts[1][...]
        while token.first == UInt8(ascii: " ") || token.first == UInt8(ascii: "\t") { token = token.dropFirst() }
        while token.last == UInt8(ascii: " ") || token.last == UInt8(ascii: "\t") { token = token.dropLast() }
        return token.isEmpty ? nil : String(decoding: token, as: UTF8.self)
    }
}

/// Equal-length digests compared without an early exit.
func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
    guard a.count == b.count else { return false }
    return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
}

extension GatewayRequestContext {
    /// Refuses the request unless the principal holds `scope`.
    func require(_ scope: Scope) throws {
        guard case .partner(_, let scopes) = principal else { throw Problem.unauthorized }
        guard scopes.contains(scope) else {
            throw Problem(.forbidden, code: "forbidden", detail: "This key lacks the scope \(scope.rawValue).")
        }
    }
}
