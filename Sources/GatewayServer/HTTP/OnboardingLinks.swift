import Crypto
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Synchronization

/// The link a partner can email to its customer: `/onboard/{tenant id}.{made at}.{HMAC}`. The HMAC key is one random
/// secret kept sealed in the database, so links need no per-tenant storage and survive key rotation. A link works
/// for `ttl` after it was made (`GATEWAY_ONBOARDING_LINK_TTL_SECONDS`), until its tenant's links are revoked, and dies
/// with the tenant (an offboarded tenant's link answers 404).
package struct OnboardingLinks: OnboardingLinkMaker {
    let key: SymmetricKey
    let address: ServerAddress
    let clock: any GatewayClock
    let ttl: TimeInterval
    private let tokens = LinkTokens()

    package init(key: SymmetricKey, address: ServerAddress, clock: any GatewayClock = SystemClock(), ttl: TimeInterval = 7 * 86_400) {
        self.key = key
        self.address = address
        self.clock = clock
        self.ttl = ttl
    }

    /// The link shown in a tenant: made at the start of the current minute, so a tenant read again and again is
    /// signed once a minute. (After a revocation, such links work again from the next minute; `freshLink` at once.)
    package func onboardingLink(for tenantID: String) -> String {
        let minute = Int64(Bounds.wholeSeconds(clock.now().timeIntervalSince1970) / 60) * 60_000
        return "\(address.publicURL)/onboard/\(token(for: tenantID, madeAt: minute))"
    }

    /// A link made now (to the millisecond): one the partner asked for, which works even just after a revocation.
    func freshLink(for tenantID: String) -> String {
        let seconds = clock.now().timeIntervalSince1970
        let milliseconds = Int64(Bounds.wholeSeconds(seconds)) * 1000 + Int64(min(999, max(0, (seconds - seconds.rounded(.down)) * 1000)))
        return "\(address.publicURL)/onboard/\(token(for: tenantID, madeAt: milliseconds + 1))"
    }

    func token(for tenantID: String, madeAt: Int64) -> String {
        let cacheKey = "\(tenantID)@\(madeAt)"
        if let known = tokens.known(cacheKey) { return known }
        let stamp = String(madeAt, radix: 36)
        let token = "\(tenantID).\(stamp).\(Base64URL.encode(mac(tenantID, stamp)))"
        tokens.keep(token, for: cacheKey)
        return token
    }

    /// What a link says, when its signature is right: the tenant, when it was made, and whether it has expired.
    struct Verified {
        var tenantID: String
        var madeAt: Date
        var expired: Bool
    }

    func verify(_ token: String) -> Verified? {
        let parts = token.split(separator: ".")
        guard parts.count == 3, parts[0].hasPrefix("ten_"), parts[0].count <= 40, parts[1].count <= 12,
            let milliseconds = Int64(String(parts[1]), radix: 36), milliseconds >= 0,
            let presented = Base64URL.decode(String(parts[2]))
        else { return nil }
        let tenantID = String(parts[0])
        guard constantTimeEqual(presented, mac(tenantID, String(parts[1]))) else { return nil }
        let madeAt = Bounds.date(unix: Double(milliseconds) / 1000)
        return Verified(tenantID: tenantID, madeAt: madeAt, expired: clock.now().timeIntervalSince(madeAt) > ttl)
    }

    /// The tenant a link names, when its signature is right and it has not expired (revocations are the caller's).
    func tenantID(fromToken token: String) -> String? {
        verify(token).flatMap { $0.expired ? nil : $0.tenantID }
    }

    private func mac(_ tenantID: String, _ stamp: String) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data("onboard:\(tenantID):\(stamp)".utf8), using: key).prefix(16))
    }
}

/// Recently made link tokens: a tenant read again and again (a partner polling it) is signed once a minute.
/// Bounded; emptied when full.
final class LinkTokens: Sendable {
    private let tokens = Mutex<[String: String]>([:])
    static let capacity = 10_000

    func known(_ key: String) -> String? { tokens.withLock { $0[key] } }

    func keep(_ token: String, for key: String) {
        tokens.withLock { tokens in
            if tokens.count >= Self.capacity { tokens.removeAll(keepingCapacity: true) }
            tokens[key] = token
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

    /// A tenant from the rendering the store keeps, with its onboarding link: the same bytes as `json(tenant)`.
    func stored(_ tenant: StoredTenant) -> Response {
        var out: [UInt8] = []
        out.reserveCapacity(tenant.bytes.count + 160)
        TenantJSON.appendWithOnboardingLink(tenant.bytes, link: links.onboardingLink(for:), id: tenant.id, into: &out)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: out)))
    }

    /// A page of tenants from their kept renderings: their concatenation, the same bytes as `json(ListResource)`.
    func stored(_ tenants: [StoredTenant], nextCursor: String?) -> Response {
        var out: [UInt8] = Array(#"{"data":["#.utf8)
        out.reserveCapacity(tenants.reduce(64) { $0 + $1.bytes.count + 160 })
        for (index, tenant) in tenants.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            TenantJSON.appendWithOnboardingLink(tenant.bytes, link: links.onboardingLink(for:), id: tenant.id, into: &out)
        }
        out.append(contentsOf: #"],"next_cursor":"#.utf8)
        if let nextCursor { TenantJSON.string(nextCursor, &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(UInt8(ascii: "}"))
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: out)))
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
