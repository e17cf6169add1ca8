import Foundation

/// A response kept for an Idempotency-Key, replayed byte for byte.
public struct StoredResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// What the first sight of an Idempotency-Key decides.
public enum IdempotencyClaim: Sendable, Equatable {
    /// New (or expired) key: this request runs and its response is kept.
    case started
    /// The first request with this key still runs.
    case inProgress
    /// The key was used with a different request.
    case mismatch
    /// The first request finished: replay its response.
    case completed(StoredResponse)
}

/// Idempotency-Key records, scoped to the API key that sent them.
public protocol IdempotencyStore: Sendable {
    /// Atomically claims `key` for a request whose method, path and body hash to `requestHash`. Records created
    /// before `expiredBefore` are forgotten; a claim still running since before `abandonedBefore` is taken over.
    func claimIdempotencyKey(scope: String, key: String, requestHash: Data, now: Date, expiredBefore: Date, abandonedBefore: Date) async throws -> IdempotencyClaim
    /// Keeps a running claim from looking abandoned: moves its claim time from `claimedAt` (what this request last
    /// wrote) to `now`. False when the claim is no longer this request's (finished, released or taken over).
    func renewIdempotencyKey(scope: String, key: String, claimedAt: Date, now: Date) async throws -> Bool
    /// Keeps the response of the claim made (or last renewed) at `claimedAt`. False when the claim is no longer
    /// that request's: it was taken over, and the answer of the request that took it is the one kept.
    @discardableResult
    func completeIdempotencyKey(scope: String, key: String, claimedAt: Date, response: StoredResponse, tenantID: String?, at: Date) async throws -> Bool
    /// Forgets the claim made (or last renewed) at `claimedAt`, whose request produced nothing worth replaying (a
    /// server error), so a retry may run. A claim taken over since is left to the request that took it.
    func releaseIdempotencyKey(scope: String, key: String, claimedAt: Date) async throws
    func purgeIdempotencyKeys(createdBefore: Date) async throws -> Int
}

/// What an Idempotency-Key's kept answer becomes when its tenant is offboarded: the status stays, and the body says
/// only which tenant it was and that it is gone.
public enum IdempotencyErasure {
    public static func body(tenantID: String) -> Data {
        Data("{\"id\":\"\(tenantID)\",\"state\":\"offboarded\"}".utf8)
    }

    public static let headers = "{\"Content-Type\":\"application/json\"}"
}
