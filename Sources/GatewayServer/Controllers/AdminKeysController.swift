import Foundation
import GatewayCore
import Hummingbird

/// `/admin/api-keys`: partner keys with scopes. A new key is answered once, in `key`; only its hash is kept.
struct AdminKeysController {
    let keys: any APIKeyStore
    let audit: any TenantStore
    let clock: any GatewayClock
    let ids: any IDGenerator
    let random: any Randomness

    var endpoints: RouteCollection<GatewayRequestContext> {
        RouteCollection(context: GatewayRequestContext.self)
            .post(use: create)
            .get(use: list)
            .delete(":id", use: revoke)
    }

    struct KeyResource: Encodable {
        var id: String
        var name: String
        var prefix: String
        var scopes: [String]
        var created_at: Date
        var revoked_at: Nullable<Date>
        /// Only in the answer to POST: absent, not null, everywhere else.
        var key: String?

        init(_ record: APIKeyRecord, key: String? = nil) {
            id = record.id
            name = record.name
            prefix = record.prefix
            scopes = record.scopes
            created_at = record.createdAt
            revoked_at = Nullable(record.revokedAt)
            self.key = key
        }

    }

    @Sendable func create(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let reader = FieldReader(try await JSONBody.read(request))
        reader.allowOnly(["name", "scopes"])
        let name = reader.string("name", required: true)
        var scopes: [String] = []
        switch reader.object["scopes"] {
        case let list as [Any] where !list.isEmpty:
            scopes = list.compactMap { $0 as? String }
            if scopes.count != list.count { reader.fail("scopes", "invalid", Self.scopesMessage) }
        default:
            reader.fail("scopes", "required", "Give at least one scope.")
        }
        // Every field's problems at once: the types above, the values below.
        let valueErrors = Self.problems(name: name, scopes: scopes).filter { error in !reader.errors.contains { $0.field == error.field } }
        if !valueErrors.isEmpty || !reader.errors.isEmpty { throw Problem.validation(reader.errors + valueErrors) }
        let (record, key) = try await create(name: name ?? "", scopes: scopes, by: context.actor)
        return try Response.json(KeyResource(record, key: key), status: .created, headers: [.cacheControl: "no-store"])
    }

    static let scopesMessage = "Scopes are among: \(Scope.allCases.map(\.rawValue).joined(separator: ", "))."

    /// What is wrong with a key's name and scopes (a name not given is reported by the caller).
    static func problems(name: String?, scopes: [String]) -> [FieldError] {
        var errors: [FieldError] = []
        if let name, name.isEmpty || name.lengthForLimits > 100 { errors.append(FieldError(field: "name", code: "invalid", message: "1 to 100 characters.")) }
        if scopes.isEmpty {
            errors.append(FieldError(field: "scopes", code: "required", message: "Give at least one scope."))
        } else if !Set(scopes).isSubset(of: Set(Scope.allCases.map(\.rawValue))) {
            errors.append(FieldError(field: "scopes", code: "invalid", message: scopesMessage))
        }
        return errors
    }

    /// Makes a key (the API and the console): the record, and the key itself, which is never seen again.
    func create(name: String, scopes: [String], by actor: Actor) async throws -> (APIKeyRecord, String) {
        let errors = Self.problems(name: name, scopes: scopes)
        if !errors.isEmpty { throw Problem.validation(errors) }
        let now = clock.now()
        let made = PartnerKeys.make(random: random)
        let record = APIKeyRecord(id: ids.make(prefix: "key", at: now), name: name, prefix: made.prefix, scopes: Array(Set(scopes)).sorted(), createdAt: now)
        try await keys.createAPIKey(record, secretHash: made.hash)
        try await audit.audit(AuditEntry(at: now, actor: actor, action: "api_key.created", tenantID: nil, details: ["key": record.prefix]))
        return (record, made.key)
    }

    @Sendable func list(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try Response.json(ListResource(data: try await keys.apiKeys().map { KeyResource($0) }, next_cursor: nil))
    }

    @Sendable func revoke(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try await revoke(context.parameters.require("id"), by: context.actor)
        return Response(status: .noContent)
    }

    func revoke(_ id: String, by actor: Actor) async throws {
        guard try await keys.revokeAPIKey(id: id, at: clock.now()) else {
            throw Problem(.notFound, code: "api_key_not_found", detail: "No active API key has this id.")
        }
        try await audit.audit(AuditEntry(at: clock.now(), actor: actor, action: "api_key.revoked", tenantID: nil, details: ["key": id]))
    }
}
