import Crypto
import Foundation
import GatewayCore

/// Signed-in console sessions, held in memory: a restart signs everyone out (they sign in again with the admin
/// token). The cookie carries a random id; only its SHA-256 is kept, so a memory dump does not yield live sessions.
actor ConsoleSessions {
    struct Session: Sendable {
        var csrfToken: String
        var clientIP: String?
        var createdAt: Date
        var lastSeen: Date
    }

    /// A session lasts at most `lifetime`, and ends sooner after `idleTimeout` without a request.
    let lifetime: TimeInterval
    let idleTimeout: TimeInterval
    private var sessions: [Data: Session] = [:]
    private let random: any Randomness

    init(lifetime: TimeInterval = 8 * 3600, idleTimeout: TimeInterval = 3600, random: any Randomness = SystemRandomness()) {
        self.lifetime = lifetime
        self.idleTimeout = idleTimeout
        self.random = random
    }

    /// A new session: the cookie value and the session (with its CSRF token).
    func start(clientIP: String?, now: Date) -> (cookie: String, session: Session) {
        purge(now: now)
        let cookie = Self.token(random.bytes(32))
        let session = Session(csrfToken: Self.token(random.bytes(32)), clientIP: clientIP, createdAt: now, lastSeen: now)
        sessions[Self.key(cookie)] = session
        return (cookie, session)
    }

    /// The live session for a cookie value, touched; nil when unknown or expired.
    func session(for cookie: String, now: Date) -> Session? {
        let key = Self.key(cookie)
        guard var session = sessions[key] else { return nil }
        guard now.timeIntervalSince(session.createdAt) < lifetime, now.timeIntervalSince(session.lastSeen) < idleTimeout else {
            sessions[key] = nil
            return nil
        }
        session.lastSeen = now
        sessions[key] = session
        return session
    }

    func end(_ cookie: String) {
        sessions[Self.key(cookie)] = nil
    }

    var count: Int { sessions.count }

    private func purge(now: Date) {
        sessions = sessions.filter { now.timeIntervalSince($0.value.createdAt) < lifetime && now.timeIntervalSince($0.value.lastSeen) < idleTimeout }
    }

    private static func key(_ cookie: String) -> Data { Data(SHA256.hash(data: Data(cookie.utf8))) }

    static func token(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Failed sign-ins per client address: after `limit` failures within `window`, that address waits until the oldest
/// one leaves the window. Success does not reset the count, so guessing between valid sign-ins gains nothing.
actor SignInLimiter {
    let limit: Int
    let window: TimeInterval
    private var failures: [String: [Date]] = [:]

    init(limit: Int = 5, window: TimeInterval = 300) {
        self.limit = limit
        self.window = window
    }

    /// What attempts are counted by: the IPv4 address, or an IPv6 address's /64 (one host holds a whole /64, so
    /// counting single IPv6 addresses would give it endless tries).
    nonisolated static func key(for address: String?) -> String {
        guard let address else { return "unknown" }
        guard address.contains(":") else { return address }
        // An IPv4 client seen through an IPv6 socket (::ffff:1.2.3.4) is that IPv4 address.
        if address.lowercased().hasPrefix("::ffff:"), address.dropFirst(7).contains(".") { return String(address.dropFirst(7)) }
        var groups = address.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if let gap = groups.firstIndex(of: ""), address.contains("::") {
            let present = groups.filter { !$0.isEmpty }.count
            groups.replaceSubrange(gap...gap, with: Array(repeating: "0", count: max(0, 8 - present)))
            groups.removeAll { $0.isEmpty }
        }
        return groups.prefix(4).map { String(Int($0, radix: 16) ?? 0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// Takes one attempt for `address`, counted as a failure until `succeeded` takes it back; or, when the address
    /// used up its attempts, the seconds to wait. Checking and counting are one step, so parallel guesses cannot all
    /// pass the check before any of them is counted.
    func attempt(_ address: String, now: Date) -> TimeInterval? {
        let recent = (failures[address] ?? []).filter { now.timeIntervalSince($0) < window }
        if recent.count >= limit, let oldest = recent.first {
            failures[address] = recent
            return max(1, window - now.timeIntervalSince(oldest))
        }
        failures[address] = recent + [now]
        if failures.count > 10_000 {
            failures = failures.filter { $0.value.contains { now.timeIntervalSince($0) < window } }
        }
        return nil
    }

    /// When the address has used up its attempts, the seconds to wait; nothing is counted.
    func wait(_ address: String, now: Date) -> TimeInterval? {
        let recent = (failures[address] ?? []).filter { now.timeIntervalSince($0) < window }
        guard recent.count >= limit, let oldest = recent.first else { return nil }
        return max(1, window - now.timeIntervalSince(oldest))
    }

    /// The attempt was right: it does not count against the address.
    func succeeded(_ address: String, at: Date) {
        guard var recent = failures[address], let index = recent.lastIndex(of: at) else { return }
        recent.remove(at: index)
        failures[address] = recent.isEmpty ? nil : recent
    }

    /// Whether the address has just used up its attempts (for auditing that once, not every refused try).
    func isAtLimit(_ address: String, now: Date) -> Bool {
        (failures[address] ?? []).filter { now.timeIntervalSince($0) < window }.count == limit
    }
}
