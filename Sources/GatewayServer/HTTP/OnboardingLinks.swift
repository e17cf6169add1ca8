import Crypto
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Synchronization

/// The stable link a partner can email to its customer: `/onboard/{tenant id}.{HMAC}`. The HMAC key is one
/// random secret kept sealed in the database, so links need no per-tenant storage, survive key rotation, and
/// die with the tenant (an offboarded tenant's link answers 404).
package struct OnboardingLinks: OnboardingLinkMaker {
    let key: SymmetricKey
    let address: ServerAddress
    private let tokens = LinkTokens()

    package init(key: SymmetricKey, address: ServerAddress) {
        self.key = key
        self.address = address
    }

    package func onboardingLink(for tenantID: String) -> String {
        "\(address.publicURL)/onboard/\(token(for: tenantID))"
    }

    func token(for tenantID: String) -> String {
        if let known = tokens.known(tenantID) { return known }
        let token = "\(tenantID).\(Base64URL.encode(mac(tenantID)))"
        tokens.keep(token, for: tenantID)
        return token
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

/// Recently made link tokens: a tenant read again and again (a partner polling it) is signed once. Bounded;
/// emptied when full. A token only depends on the tenant id and the key, so a kept one never goes stale.
final class LinkTokens: Sendable {
    private let tokens = Mutex<[String: String]>([:])
    static let capacity = 10_000

    func known(_ tenantID: String) -> String? { tokens.withLock { $0[tenantID] } }

    func keep(_ token: String, for tenantID: String) {
        tokens.withLock { tokens in
            if tokens.count >= Self.capacity { tokens.removeAll(keepingCapacity: true) }
            tokens[tenantID] = token
        }
    }
}

/// Encodes API responses: the gateway's JSON settings plus onboarding links in every tenant.
package struct Renderer: Sendable {
    let links: OnboardingLinks

    package init(links: OnboardingLinks) {
        self.links = links
    }

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
    package func body(_ value: some Encodable) throws -> Data {
        // Tenants and pages of them, the hot answers, are written by hand (the same bytes, a fraction of the cost).
        if let tenant = value as? Tenant {
            var out: [UInt8] = []
            out.reserveCapacity(640)
            write(tenant, into: &out)
            return Data(out)
        }
        if let page = value as? ListResource<Tenant> {
            var out: [UInt8] = Array(#"{"data":["#.utf8)
            out.reserveCapacity(640 * (page.data.count + 1))
            for (index, tenant) in page.data.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(tenant, into: &out)
            }
            out.append(contentsOf: #"],"next_cursor":"#.utf8)
            if let cursor = page.next_cursor.value { TenantJSON.string(cursor, &out) } else { out.append(contentsOf: "null".utf8) }
            out.append(UInt8(ascii: "}"))
            return Data(out)
        }
        let encoder = JSONEncoder.gateway
        encoder.userInfo[.onboardingLinks] = links
        return try encoder.encode(value)
    }

    /// A tenant as the API shows it, with its onboarding link when its next action is a redirect.
    private func write(_ tenant: Tenant, into out: inout [UInt8]) {
        TenantJSON.write(tenant, link: tenant.nextAction?.type == .redirectToURL ? links.onboardingLink(for: tenant.id) : nil, into: &out)
    }
}
