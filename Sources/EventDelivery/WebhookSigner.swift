import Crypto
import Foundation

/// Signs outbound events by the Standard Webhooks spec: `webhook-id`, `webhook-timestamp` and
/// `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one signature per secret (space
/// separated) so a receiver can rotate its secret without missing events.
public struct WebhookSigner: Sendable {
    public struct InvalidSecret: Error, CustomStringConvertible {
        public var position: Int
        public var description: String { "events secret \(position) is not whsec_ followed by base64" }
    }

    private let keys: [SymmetricKey]

    /// `secrets` are `whsec_<base64>` strings, the current one first.
    public init(secrets: [String]) throws {
        keys = try secrets.enumerated().map { index, secret in
            guard secret.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(secret.dropFirst(6))), !bytes.isEmpty else {
                throw InvalidSecret(position: index + 1)
            }
            return SymmetricKey(data: bytes)
        }
    }

    public func signature(id: String, timestamp: Int, body: Data) -> String {
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(body)
        return keys.map { key in
            "v1," + Data(HMAC<SHA256>.authenticationCode(for: content, using: key)).base64EncodedString()
        }.joined(separator: " ")
    }

    public func headers(id: String, timestamp: Int, body: Data) -> [(String, String)] {
        [("webhook-id", id), ("webhook-timestamp", String(timestamp)), ("webhook-signature", signature(id: id, timestamp: timestamp, body: body))]
    }
}
