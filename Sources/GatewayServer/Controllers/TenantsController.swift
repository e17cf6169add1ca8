import Foundation
import GatewayCore
import Hummingbird

/// `/v1/tenants`: the partner's view of onboarding.
struct TenantsController {
    let service: OnboardingService
    let render: Renderer
    /// Onboarding-link revocations, audited.
    let revocations: any OnboardingLinkStore & TenantStore
    let clock: any GatewayClock

    var endpoints: RouteCollection<GatewayRequestContext> {
        RouteCollection(context: GatewayRequestContext.self)
            .post(use: create)
            .get(use: list)
            .get(":id", use: show)
            .patch(":id", use: correct)
            .delete(":id", use: offboard)
            .post(":id/onboarding-link", use: onboardingLink)
            .delete(":id/onboarding-link", use: revokeOnboardingLinks)
            .post(":id/refresh", use: refresh)
            .post(":id/retry", use: retry)
            .get(":id/events", use: events)
            .get(":id/credentials", use: credentials)
            .put(":id/credentials", use: supplyCredentials)
    }

    @Sendable func create(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsWrite)
        let new = try newTenant(try await JSONBody.read(request))
        return try created(try await service.create(new))
    }

    /// The body read as a new tenant, or every problem with it. Synchronous and not inlined (as is `created`): the
    /// create's async frame lives for the provider's whole answer, and stays small (`docs/performance.md`, memory).
    @inline(never)
    private func newTenant(_ body: [String: Any]) throws -> NewTenant {
        let reader = FieldReader(body)
        reader.allowOnly(["provider", "external_id", "profile", "metadata"])
        let providerName = reader.string("provider", required: true)
        let provider = providerName.flatMap { service.registry.kind(named: $0) }.flatMap { service.registry.definition($0) }
        if providerName != nil, provider == nil { reader.fail("provider", "invalid", "provider is one of: \(service.registry.namesList).") }
        let externalID = reader.string("external_id", required: true)
        let profile = reader.object("profile", required: true).map(Profile.read)
        let metadata = reader.stringMap("metadata") ?? [:]
        // Shape problems and content problems are reported together, so one round trip shows everything.
        var errors = reader.errors
        if let provider, let externalID, let profile {
            errors += ProfileValidator.validate(provider: provider, externalID: externalID, profile: profile, metadata: metadata)
        }
        guard errors.isEmpty, let provider, let externalID, let profile else { throw Problem.validation(errors) }
        return NewTenant(provider: provider.kind, externalID: externalID, profile: profile, metadata: metadata)
    }

    @inline(never)
    private func created(_ outcome: CreateOutcome) throws -> Response {
        switch outcome {
        case .created(let tenant): return try render.json(tenant, status: .created, headers: [.location: "/v1/tenants/\(tenant.id)"])
        case .accepted(let tenant): return try render.json(tenant, status: .accepted, headers: [.location: "/v1/tenants/\(tenant.id)"])
        case .existing(let tenant): return try render.json(tenant)
        }
    }

    @Sendable func show(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsRead)
        return render.stored(try await service.storedTenant(id: context.parameters.require("id")))
    }

    @Sendable func list(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsRead)
        let query = TenantQuery(
            provider: try request.providerParameter(service.registry),
            state: try request.enumParameter("state", TenantState.self),
            externalID: try request.query("external_id"),
            limit: try request.pageLimit(),
            before: try request.query("cursor").map { try Cursor.decode("t", $0) }
        )
        let page = try await service.storedTenants(query)
        return render.stored(page.items, nextCursor: page.next.map { Cursor.encode("t", $0) })
    }

    @Sendable func refresh(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsWrite)
        return try render.outcome(try await service.refresh(tenantID: context.parameters.require("id")))
    }

    @Sendable func retry(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsWrite)
        return try render.outcome(try await service.retry(tenantID: context.parameters.require("id")))
    }

    @Sendable func events(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsRead)
        let after = try request.query("cursor").map { Int64(try Cursor.decode("e", $0)) ?? 0 }
        let page = try await service.events(tenantID: context.parameters.require("id"), after: after, limit: try request.pageLimit())
        return try render.json(ListResource(data: page.items.map(EventResource.init), next_cursor: page.next.map { Cursor.encode("e", $0) }))
    }

    @Sendable func credentials(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.credentialsRead)
        let actor = context.actor
        let credentials = try await service.credentials(tenantID: context.parameters.require("id"), actor: actor)
        return try .json(credentials, headers: [.cacheControl: "no-store"])
    }

    /// Credentials typed in, in the shape the tenant's provider module names (`credentialInputFields`). `provider` may
    /// be given (null or absent is the tenant's); it must name a provider that takes credentials by hand, and the
    /// tenant's.
    @Sendable func supplyCredentials(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsWrite)
        let input = try JSONBody.values(try await JSONBody.read(request))
        let registry = service.registry
        let byHand = registry.kinds.filter { registry.definition($0)?.capabilities.acceptsTypedCredentials == true }
        var errors: [FieldError] = []
        var named: ProviderKind?
        switch input["provider"] {
        case nil, .null?:
            break
        case .string(let text)?:
            named = byHand.first { $0.rawValue == text.trimmingCharacters(in: .whitespacesAndNewlines) }
            if named == nil {
                let names = byHand.compactMap { registry.definition($0)?.displayName }.joined(separator: " or ")
                errors.append(FieldError(field: "provider", code: "invalid", message: "Only \(names) credentials are supplied by hand."))
            }
        case _?:
            errors.append(FieldError(field: "provider", code: "invalid_type", message: "Must be a string."))
        }
        let tenantID = try context.parameters.require("id")
        let current = try await service.tenant(id: tenantID)
        switch try service.definition(of: current).credentials(fromInput: input) {
        case .accepted(let credentials) where errors.isEmpty:
            if let named, named != current.provider {
                throw Problem.validation(field: "provider", code: "mismatch", message: "This tenant is onboarded onto \(current.provider.rawValue).")
            }
            let tenant = try await service.supplyCredentials(tenantID: tenantID, credentials, actor: context.actor)
            return try render.json(tenant)
        case .accepted:
            throw Problem.validation(errors)
        case .refused(let refused):
            throw Problem.validation(errors + refused)
        }
    }

    @Sendable func correct(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsWrite)
        let reader = FieldReader(try await JSONBody.read(request))
        reader.allowOnly(["profile", "metadata"])
        let patch = reader.object("profile").map(ProfilePatch.read)
        var metadata: [String: String?]?
        if let object = reader.object("metadata") {
            var changes: [String: String?] = [:]
            for (key, value) in object.object {
                if value is NSNull { changes[key] = .some(nil) } else if let text = value as? String { changes[key] = text } else {
                    reader.fail("metadata.\(key)", "invalid_type", "Values are strings, or null to remove the key.")
                }
            }
            metadata = changes
        }
        if patch == nil, metadata == nil {
            reader.fail("profile", "required", "Give profile and/or metadata to change.")
        }
        try reader.throwIfInvalid()
        let fields = (patch?.fields ?? []) + (metadata?.keys.map { "metadata.\($0)" } ?? [])
        var change: (@Sendable (Profile) -> Profile)?
        if let patch { change = { patch.apply(to: $0) } }
        let correction = TenantCorrection(profile: change, metadata: metadata, fields: fields)
        let tenant = try await service.correct(
            tenantID: context.parameters.require("id"), correction, actor: context.actor
        )
        return try render.json(tenant)
    }

    @Sendable func offboard(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsWrite)
        let tenant = try await service.offboard(
            tenantID: context.parameters.require("id"), source: .api, actor: context.actor
        )
        return try render.json(tenant)
    }

    @Sendable func onboardingLink(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsWrite)
        let id = try context.parameters.require("id")
        let url = try await service.freshOnboardingURL(tenantID: id)
        return try render.json(["url": url, "onboarding_link": render.links.freshLink(for: id)], headers: [.cacheControl: "no-store"])
    }

    /// Every onboarding link made so far for the tenant stops working (one leaked); a fresh one comes from `POST`.
    @Sendable func revokeOnboardingLinks(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsWrite)
        let id = try context.parameters.require("id")
        let tenant = try await service.tenant(id: id)
        guard tenant.state != .offboarded else { throw OnboardingError.invalidState(.offboarded, action: "given onboarding links") }
        let now = clock.now()
        try await revocations.revokeOnboardingLinks(tenantID: id, at: now)
        try await revocations.audit(AuditEntry(at: now, actor: context.actor, action: "tenant.onboarding_links_revoked", tenantID: id))
        return Response(status: .noContent)
    }
}
