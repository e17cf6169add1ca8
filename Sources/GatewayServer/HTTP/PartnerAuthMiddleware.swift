import Crypto
import Foundation
import Hummingbird

/// Authenticates `/v1` with `Authorization: Bearer <key>`. The key is compared in constant time (as SHA-256
/// digests, so length differences leak nothing) and never logged.
struct PartnerAuthMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let configuredKeyDigest: SHA256.Digest?

    init(apiKey: String?) {
        configuredKeyDigest = apiKey.map { SHA256.hash(data: Data($0.utf8)) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let presented = Self.bearerToken(request), let expected = configuredKeyDigest,
            Self.constantTimeEqual(SHA256.hash(data: Data(presented.utf8)), expected)
        else { throw Problem.unauthorized }
        var context = context
        context.principal = .partner(name: "GATEWAY_API_KEY", scopes: Set(Scope.allCases))
        return try await next(request, context)
    }

    static func bearerToken(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    static func constantTimeEqual(_ a: SHA256.Digest, _ b: SHA256.Digest) -> Bool {
        zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
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
