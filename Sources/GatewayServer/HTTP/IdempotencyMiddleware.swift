import Crypto
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Synchronization

/// `Idempotency-Key` on POST, PUT, PATCH and DELETE: the first response (status, body, the headers that matter)
/// is kept for 24 h and replayed for the same key and request with `Idempotent-Replayed: true`. The same key with
/// another request is `422 idempotency_key_reused`; while the first still runs, `409 idempotency_key_in_use`.
/// Keys belong to the API key that sent them. Server errors are not kept, so a retry runs again.
struct IdempotencyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    static let lifetime: TimeInterval = 24 * 3600
    /// A running request renews its claim this often; a claim not renewed for `abandonedAfter` is taken to have
    /// died with its process (a replica killed mid-request), and the client's retry takes the key over. A restarted
    /// SQLite gateway lets go of its own claims at once; replicas cannot tell a dead peer's claim from a live one but
    /// by its age.
    static let renewEvery: Duration = .seconds(5)
    static let abandonedAfter: TimeInterval = 30
    static let transientCodes: Set<String> = ["tenant_busy", "tenant_changed"]
    static let keptHeaders: [HTTPField.Name] = [.contentType, .location, .cacheControl]
    /// The largest answer kept for a day. The API's own answers are at most a few tens of KiB (a problem lists at most
    /// 50 field errors; a tenant's fields and 50 metadata values are bounded); a larger one is answered but not
    /// kept, and the key let go, so a retry runs again.
    static let maxKeptBytes = 256 * 1024

    let store: any IdempotencyStore
    let clock: any GatewayClock
    var renewEvery: Duration = Self.renewEvery

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard [.post, .put, .patch, .delete].contains(request.method), let key = request.headers[.idempotencyKey] else {
            return try await next(request, context)
        }
        return try await keyed(request, key: key, context: context, next: next)
    }

    /// A request with a key. Its own function: an async function's frame lives as long as the request, so what only
    /// keyed requests need is not carried by every other one (see `docs/performance.md`, memory).
    @inline(never)
    private func keyed(_ request: Request, key: String, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard (1...255).contains(key.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value <= 0x7E }) else {
            throw Problem.validation(field: "Idempotency-Key", code: "invalid", message: "Use 1 to 255 visible ASCII characters, such as a UUID.")
        }
        var request = request
        let body = try await request.collectBody(upTo: JSONBody.defaultLimit)
        var hasher = SHA256()
        hasher.update(data: Data("\(request.method.rawValue) \(request.uri.path)?\(request.uri.query ?? "")\n".utf8))
        hasher.update(data: Data(body.readableBytesView))
        let scope = context.principal?.auditName ?? "anonymous"
        let now = clock.now()

        switch try await store.claimIdempotencyKey(
            scope: scope, key: key, requestHash: Data(hasher.finalize()), now: now,
            expiredBefore: now.addingTimeInterval(-Self.lifetime), abandonedBefore: now.addingTimeInterval(-Self.abandonedAfter)
        ) {
        case .mismatch:
            throw Problem(.unprocessableContent, code: "idempotency_key_reused", detail: "This Idempotency-Key was used with a different request.")
        case .inProgress:
            throw Problem(.conflict, code: "idempotency_key_in_use", detail: "A request with this Idempotency-Key is still running; retry shortly.")
        case .completed(let stored):
            var headers = HTTPFields()
            for (name, value) in stored.headers { if let field = HTTPField.Name(name) { headers[field] = value } }
            headers[.idempotentReplayed] = "true"
            return Response(status: .init(code: stored.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: stored.body)))
        case .started:
            break
        }

        // The claim's time is its fencing token: renewed while the request runs, and named when it completes or lets
        // go, so a request whose claim was taken over (its replica stalled past `abandonedAfter`) changes nothing.
        let claim = Claim(at: now)
        let renewal = Task { [store, clock, renewEvery] in
            while !Task.isCancelled {
                try? await Task.sleep(for: renewEvery)
                guard !Task.isCancelled else { return }
                guard await Self.renew(claim, store: store, scope: scope, key: key, now: clock.now()) else { return }
            }
        }
        /// Stops the renewals and waits for one under way, so the claim time read next is the one stored. A renewal
        /// whose outcome is unknown (the database failed to answer; it may have written) is settled first.
        func settledClaim() async -> Date {
            renewal.cancel()
            await renewal.value
            if claim.uncertain != nil { _ = await Self.renew(claim, store: store, scope: scope, key: key, now: clock.now()) }
            return claim.at
        }
        defer { renewal.cancel() }
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            let problem = ProblemMiddleware.problem(for: error, context: context)
            // A server failure, or a tenant that was busy or changed underneath, is not this request's answer: the
            // client's retry with the same key must run again, not be told the same thing for a day.
            guard problem.status.code < 500, !Self.transientCodes.contains(problem.code) else {
                try? await store.releaseIdempotencyKey(scope: scope, key: key, claimedAt: await settledClaim())
                throw error
            }
            return try await keep(
                problem.response(requestID: context.requestID), scope: scope, key: key, claimedAt: await settledClaim(), request: request, context: context
            )
        }
        guard response.status.code < 500 else {
            try? await store.releaseIdempotencyKey(scope: scope, key: key, claimedAt: await settledClaim())
            return response
        }
        return try await keep(response, scope: scope, key: key, claimedAt: await settledClaim(), request: request, context: context)
    }

    /// Moves the claim's time to `now`; false once the claim is no longer this request's. The store call runs in a
    /// task of its own, so stopping the renewals never cuts off a write the database may already have made. When an
    /// earlier renewal failed without an answer, the claim holds one of two times: both are tried.
    private static func renew(_ claim: Claim, store: any IdempotencyStore, scope: String, key: String, now: Date) async -> Bool {
        for held in [claim.at] + (claim.uncertain.map { [$0] } ?? []) {
            let outcome = await Task { try await store.renewIdempotencyKey(scope: scope, key: key, claimedAt: held, now: now) }.result
            switch outcome {
            case .success(true):
                claim.at = now
                claim.uncertain = nil
                return true
            case .success(false):
                continue
            case .failure:
                // The database may or may not have written `now`: keep both times until a later renewal tells. (Two
                // failures in a row that both wrote would lose the claim; its request then keeps no answer.)
                if claim.uncertain == nil { claim.uncertain = now }
                return true
            }
        }
        return false
    }

    /// Stores the response (its body read whole) and answers a copy of it.
    private func keep(
        _ response: Response, scope: String, key: String, claimedAt: Date, request: Request, context: Context
    ) async throws -> Response {
        let collector = BodyCollector()
        try await response.body.write(collector)
        let bytes = collector.bytes
        guard bytes.count <= Self.maxKeptBytes else {
            context.logger.warning("answer too large to keep for its Idempotency-Key; the key is let go", metadata: ["bytes": "\(bytes.count)"])
            try? await store.releaseIdempotencyKey(scope: scope, key: key, claimedAt: claimedAt)
            return Response(status: response.status, headers: response.headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        var headers: [String: String] = [:]
        for name in Self.keptHeaders { headers[name.canonicalName] = response.headers[name] }
        let tenantID = Self.tenantID(path: request.uri.path, body: bytes)
        let kept = try await store.completeIdempotencyKey(
            scope: scope, key: key, claimedAt: claimedAt, response: StoredResponse(status: Int(response.status.code), headers: headers, body: bytes),
            tenantID: tenantID, at: clock.now()
        )
        if !kept {
            context.logger.warning("Idempotency-Key claim was taken over while the request ran; its answer is not kept", metadata: ["status": "\(response.status.code)"])
        }
        return Response(status: response.status, headers: response.headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The tenant a kept response is about, so offboarding can erase it.
    static func tenantID(path: String, body: Data) -> String? {
        let parts = path.split(separator: "/")
        if parts.count >= 3, parts[0] == "v1", parts[1] == "tenants", parts[2].hasPrefix("ten_") { return String(parts[2]) }
        let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        return (object?["id"] as? String).flatMap { $0.hasPrefix("ten_") ? $0 : nil }
    }
}

/// The time of a request's Idempotency-Key claim, moved on by its renewals, and the time of a renewal whose outcome
/// is unknown.
private final class Claim: Sendable {
    private let times: Mutex<(at: Date, uncertain: Date?)>
    init(at: Date) { times = Mutex((at, nil)) }
    var at: Date {
        get { times.withLock { $0.at } }
        set { times.withLock { $0.at = newValue } }
    }
    var uncertain: Date? {
        get { times.withLock { $0.uncertain } }
        set { times.withLock { $0.uncertain = newValue } }
    }
}

/// Reads a response body into memory.
private final class BodyCollector: ResponseBodyWriter, @unchecked Sendable {
    var bytes = Data()

    func write(_ buffer: ByteBuffer) async throws {
        bytes.append(contentsOf: buffer.readableBytesView)
    }

    func write(contentsOf buffers: some Sequence<ByteBuffer>) async throws {
        for buffer in buffers { bytes.append(contentsOf: buffer.readableBytesView) }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}
