import Crypto
import Foundation

/// Seals secrets at rest with AES-256-GCM under a key ring (newest key first), and hashes lookup tokens.
///
/// A sealed value names the key that sealed it, so old values stay readable while keys rotate. The additional
/// authenticated data binds each value to its row and purpose: a sealed value copied elsewhere does not open.
public struct SecretBox: Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case malformed
        case unknownKey(String)
        case cannotOpen

        public var description: String {
            switch self {
            case .malformed: "sealed value is malformed"
            case .unknownKey(let id): "sealed with key \(id), which is not among the configured keys"
            case .cannotOpen: "sealed value fails authentication"
            }
        }
    }

    private let keys: [(id: String, key: SymmetricKey)]

    /// `keys` are 32-byte keys, newest first; the first one seals.
    public init(keys: [Data]) {
        precondition(!keys.isEmpty && keys.allSatisfy { $0.count == 32 }, "SecretBox needs 32-byte keys")
        self.keys = keys.map { (Self.keyID($0), SymmetricKey(data: $0)) }
    }

    public var currentKeyID: String { keys[0].id }
    /// The ids of every key this box opens with, newest first.
    public var keyIDs: [String] { keys.map(\.id) }

    /// A short public name for a key: the first 8 hex digits of its SHA-256.
    public static func keyID(_ key: Data) -> String {
        SHA256.hash(data: key).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    public func seal(_ plaintext: Data, context: String) throws -> String {
        let box = try AES.GCM.seal(plaintext, using: keys[0].key, authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw Failure.malformed }
        return "v1.\(keys[0].id).\(combined.base64EncodedString())"
    }

    public func open(_ sealed: String, context: String) throws -> Data {
        let parts = sealed.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "v1", let combined = Data(base64Encoded: String(parts[2])) else { throw Failure.malformed }
        guard let key = keys.first(where: { $0.id == parts[1] })?.key else { throw Failure.unknownKey(String(parts[1])) }
        do {
            return try AES.GCM.open(try AES.GCM.SealedBox(combined: combined), using: key, authenticating: Data(context.utf8))
        } catch {
            throw Failure.cannotOpen
        }
    }

    /// The key id a sealed value names, without opening it.
    public static func keyID(ofSealed sealed: String) -> String? {
        let parts = sealed.split(separator: ".", maxSplits: 2)
        return parts.count == 3 ? String(parts[1]) : nil
    }

    /// SHA-256, for tokens that are looked up but never shown again. Tokens carry ≥128 random bits, so no salt is needed.
    public static func hash(_ value: String) -> Data {
        Data(SHA256.hash(data: Data(value.utf8)))
    }

    public static func hash(_ value: Data) -> Data {
        Data(SHA256.hash(data: value))
    }
}
