import Crypto
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird

/// The stable link a partner can email to its customer: `/onboard/{tenant id}.{HMAC}`. The HMAC key is one
/// random secret kept sealed in the database, so links need no per-tenant storage, survive key rotation, and
/// die with the tenant (an offboarded tenant's link answers 404).
struct OnboardingLinks: OnboardingLinkMaker {
    let key: SymmetricKey
    let address: ServerAddress

    func onboardingLink(for tenantID: String) -> String {
        "\(address.publicURL)/onboard/\(token(for: tenantID))"
    }

    func token(for tenantID: String) -> String {
        "\(tenantID).\(Base64URL.encode(mac(tenantID)))"
    }

    /// The tenant a link names, when its signature is right.
    func tenantID(fromToken token: String) -> String? {
        let parts = token.split(separator: ".")
        guard parts.count == 2, parts[0].hasPrefix("ten_"), parts[0].count <= 40,
            let presented = Base64URL.decode(String(parts[1]))
        else { return nil }
        let tenantID = String(parts[0])
        return constantTimeEqual(presented, mac(tenantID)) ? tenantID : nil
    }

    private func mac(_ tenantID: String) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data("onboard:\(tenantID)".utf8), using: key).prefix(16))
    }
}

/// Encodes API responses: the gateway's JSON settings plus onboarding links in every tenant.
struct Renderer: Sendable {
    let links: OnboardingLinks

    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try body(value))))
    }

    /// A request that needed the provider: `200` with the tenant as the answer left it, or `202` when another actor
    /// held the tenant and the work was queued to run next.
    func outcome(_ outcome: ProviderRequestOutcome) throws -> Response {
        switch outcome {
        case .done(let tenant): try json(tenant)
        case .queued(let tenant): try json(tenant, status: .accepted, headers: [.retryAfter: "1"])
        }
    }

    /// The JSON bytes, as responses and outbound events carry them.
    func body(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder.gateway
        encoder.userInfo[.onboardingLinks] = links
        return try encoder.encode(value)
    }
}
