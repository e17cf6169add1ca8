import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A CIDR block of `GATEWAY_TRUSTED_PROXIES`.
struct CIDR: Sendable, Equatable {
    let network: [UInt8]
    let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let address = CIDR.bytes(String(parts[0])) else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : address.count * 8
        guard let prefix, (0...(address.count * 8)).contains(prefix) else { return nil }
        self.network = address
        self.prefix = prefix
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var remaining = prefix
        for (a, b) in zip(address, network) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if a & mask != b & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// 4 bytes for IPv4, 16 for IPv6 (IPv4-mapped IPv6 addresses count as IPv4).
    static func bytes(_ text: String) -> [UInt8]? {
        // Trimmed by hand: Foundation's trimming is a measurable share of a request's cost, and most have no blanks.
        var text = Substring(text)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        if text.hasPrefix("["), let end = text.firstIndex(of: "]") { text = text[text.index(after: text.startIndex)..<end] }
        guard let address = try? SocketAddress(ipAddress: String(text), port: 0) else { return nil }
        return bytes(of: address)
    }

    static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            let raw = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            return raw.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] ? Array(raw.suffix(4)) : raw
        default:
            return nil
        }
    }
}

/// Works out who the client really is. `X-Forwarded-For` (and `-Proto`, `-Host`) are believed only from a peer in
/// `GATEWAY_TRUSTED_PROXIES`; the client is then the rightmost address that is not itself a trusted proxy, so a
/// client cannot smuggle a forged address through the proxy. From anyone else the headers are ignored.
/// (`RequestScopeMiddleware` applies it to every request.)
enum ClientAddress {
    /// Sets `clientIP` and `viaHTTPS` of the request's context.
    static func resolve(_ request: Request, context: inout GatewayRequestContext, trusted: [CIDR]) {
        let peer = context.remoteAddress?.ipAddress
        let peerIsProxy = context.remoteAddress.flatMap(CIDR.bytes(of:)).map { bytes in trusted.contains { $0.contains(bytes) } } ?? false
        if peerIsProxy {
            let forwardedFor = request.headers[values: .xForwardedFor]
            context.clientIP = forwardedFor.isEmpty ? peer : Self.clientIP(peer: peer, forwardedFor: forwardedFor, trusted: trusted)
            context.viaHTTPS = request.headers[.xForwardedProto]?.split(separator: ",").first?.trimmingCharacters(in: .whitespaces).lowercased() == "https"
        } else {
            context.clientIP = peer
        }
    }

    static func clientIP(peer: String?, forwardedFor: [String], trusted: [CIDR]) -> String? {
        guard let peer, let peerBytes = CIDR.bytes(peer), trusted.contains(where: { $0.contains(peerBytes) }) else { return peer }
        let chain = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for hop in chain.reversed() {
            guard let bytes = CIDR.bytes(hop) else { return peer }  // garbage in the chain: trust nothing past it
            if !trusted.contains(where: { $0.contains(bytes) }) { return hop }
        }
        return chain.first ?? peer
    }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
}

/// The proxy rules, for tests outside this module.
public enum CIDRForTests {
    public struct Block: Sendable, Equatable {
        fileprivate let cidr: CIDR
    }

    public static func parse(_ text: String) -> Block? { CIDR(text).map(Block.init) }

    public static func contains(_ block: String, _ address: String) -> Bool {
        guard let cidr = CIDR(block), let bytes = CIDR.bytes(address) else { return false }
        return cidr.contains(bytes)
    }

    public static func clientIP(peer: String?, forwardedFor: [String], trusted: [Block]) -> String? {
        ClientAddress.clientIP(peer: peer, forwardedFor: forwardedFor, trusted: trusted.map(\.cidr))
    }
}
