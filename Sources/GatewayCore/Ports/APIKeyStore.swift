import Foundation

/// A partner API key as listed to operators; the secret itself is shown once at creation and kept only hashed.
public struct APIKeyRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The visible start of the key (`gwk_xxxxxxxx`), enough to recognise it, useless to authenticate.
    public var prefix: String
    public var scopes: [String]
    public var createdAt: Date
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(id: String, name: String, prefix: String, scopes: [String], createdAt: Date, lastUsedAt: Date? = nil, revokedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.prefix = prefix
        self.scopes = scopes
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// Partner API keys made through the admin API.
public protocol APIKeyStore: Sendable {
    func createAPIKey(_ record: APIKeyRecord, secretHash: Data) async throws
    /// The key with this prefix and the hash of its secret, revoked or not.
    func apiKey(prefix: String) async throws -> (record: APIKeyRecord, secretHash: Data)?
    func apiKeys() async throws -> [APIKeyRecord]
    /// False when no such key exists or it was revoked already.
    func revokeAPIKey(id: String, at: Date) async throws -> Bool
}
