import Crypto
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird

/// `/console`: the operators' console, server-rendered, no JavaScript. Every action goes through the same use cases
/// as the admin API (`AdminTenantsController`, `AdminDeliveriesController`, `AdminKeysController`) and is audited
/// as done from the console, with the client's address.
struct ConsoleController {
    let service: OnboardingService
    let operations: any OperationsStore
    let deliveries: any DeliveryStore
    let audit: any TenantStore
    let tenantsAdmin: AdminTenantsController
    let deliveriesAdmin: AdminDeliveriesController
    let keysAdmin: AdminKeysController
    let keys: any APIKeyStore
    let links: OnboardingLinks
    let sessions: ConsoleSessions
    let limiter: SignInLimiter
    let adminTokenDigest: SHA256.Digest?
    let clock: any GatewayClock
    let stuckAfter: TimeInterval

    var endpoints: RouteCollection<GatewayRequestContext> {
        RouteCollection(context: GatewayRequestContext.self)
            .get("assets/console.css", use: stylesheet)
            .get("sign-in", use: signInPage)
            .post("sign-in", use: signIn)
            .post("sign-out", use: signOut)
            .get(use: overview)
            .get("tenants", use: tenants)
            .get("tenants/:id", use: tenant)
            .post("tenants/:id/:action", use: tenantAction)
            .get("deliveries", use: deliveryList)
            .post("deliveries/redeliver-failed", use: redeliverFailed)
            .post("deliveries/:id/redeliver", use: redeliver)
            .get("api-keys", use: apiKeys)
            .post("api-keys", use: createKey)
            .post("api-keys/:id/revoke", use: revokeKey)
            .get("audit", use: auditLog)
    }

    // MARK: - Sign-in

    @Sendable func stylesheet(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/css; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: ConsoleLayout.stylesheet))
        )
    }

    @Sendable func signInPage(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        ConsoleLayout.response(signInForm(message: nil))
    }

    private func signInForm(message: String?) -> HTML {
        ConsoleLayout.page(title: "Sign in", csrf: nil, signedIn: false, body: """
            <h1>Sign in</h1>
            \(ConsoleLayout.notice(message, error: true))
            <form method="post" action="/console/sign-in" class="stack">
            <label>Admin token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
            <button type="submit">Sign in</button>
            </form>
            <p class="muted">The admin token is <code>GATEWAY_ADMIN_TOKEN</code>; in the sandbox, the banner printed it at start.</p>
            """)
    }

    @Sendable func signIn(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        var request = request
        let now = clock.now()
        let address = SignInLimiter.key(for: context.clientIP)
        let actor = Actor(name: "console", ip: context.clientIP)
        if let wait = await limiter.attempt(address, now: now) {
            // Audited once, when the address is first held back; every refused try after that is only logged.
            context.logger.warning("console sign-in refused: too many failures from this address")
            throw ConsoleRefusal(
                status: .tooManyRequests, message: "Too many failed sign-ins from your address. Try again in \(Bounds.wholeSeconds(wait.rounded(.up))) seconds.",
                headers: [.retryAfter: "\(Bounds.wholeSeconds(wait.rounded(.up)))"]
            )
        }
        let token = try await FormBody.read(&request)["token"] ?? ""
        guard let expected = adminTokenDigest,
            constantTimeEqual(Data(SHA256.hash(data: Data(token.utf8))), Data(expected))
        else {
            try await audit.audit(AuditEntry(at: now, actor: actor, action: "console.sign_in_failed", tenantID: nil))
            if await limiter.isAtLimit(address, now: now) {
                try await audit.audit(AuditEntry(at: now, actor: actor, action: "console.sign_in_throttled", tenantID: nil))
            }
            return ConsoleLayout.response(signInForm(message: "That is not the admin token."), status: .unauthorized)
        }
        await limiter.succeeded(address, at: now)
        let (cookie, _) = await sessions.start(clientIP: context.clientIP, now: now)
        try await audit.audit(AuditEntry(at: now, actor: actor, action: "console.signed_in", tenantID: nil))
        var attributes = "Path=/console; HttpOnly; SameSite=Strict; Max-Age=\(Int(sessions.lifetime))"
        if context.viaHTTPS { attributes += "; Secure" }
        return Response(status: .seeOther, headers: [.location: "/console", .setCookie: "\(ConsoleMiddleware.cookieName)=\(cookie); \(attributes)"])
    }

    @Sendable func signOut(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        if let cookie = ConsoleMiddleware.cookie(in: request) { await sessions.end(cookie) }
        try await audit.audit(AuditEntry(at: clock.now(), actor: context.actor, action: "console.signed_out", tenantID: nil))
        return Response(status: .seeOther, headers: [
            .location: "/console/sign-in",
            .setCookie: "\(ConsoleMiddleware.cookieName)=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ])
    }

    private func render(_ context: GatewayRequestContext, _ title: String, current: String, _ body: HTML, status: HTTPResponse.Status = .ok) -> Response {
        ConsoleLayout.response(ConsoleLayout.page(title: title, csrf: context.console?.csrfToken, signedIn: true, current: current, body: body), status: status)
    }

    private func csrf(_ context: GatewayRequestContext) -> String { context.console?.csrfToken ?? "" }

    /// The provider filter: empty is "any"; anything else names a registered provider.
    static func provider(_ request: Request, _ registry: ProviderRegistry) throws -> ProviderKind? {
        guard let text = try request.query("provider") else { return nil }
        guard let kind = registry.kind(named: text) else {
            throw ConsoleRefusal(status: .unprocessableContent, message: "provider is one of: \(registry.namesList).")
        }
        return kind
    }

    /// A filter from a form's `<select>`: empty is "any".
    static func choice<T: RawRepresentable & CaseIterable>(_ request: Request, _ name: String, _ type: T.Type) throws -> T?
    where T.RawValue == String {
        guard let text = try request.query(name) else { return nil }
        guard let value = T(rawValue: text) else {
            throw ConsoleRefusal(status: .unprocessableContent, message: "\(name) is one of: \(T.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return value
    }

    // MARK: - Overview

    @Sendable func overview(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let now = clock.now()
        let stats = try await operations.operationsStats(now: now, stuckAfter: stuckAfter)
        let endpoint = try await deliveriesAdmin.endpointState()
        let failing = try await deliveries.deliveries(status: .failed, tenantID: nil, limit: 5, before: nil).items

        var totals: [HTML] = []
        for provider in service.registry.kinds {
            let states = stats.tenants[provider.rawValue] ?? [:]
            let cells = TenantState.allCases.map { state -> HTML in
                let count = states[state.rawValue] ?? 0
                return count == 0
                    ? "<td class=\"muted\">0</td>"
                    : "<td><a href=\"\(HTML.url("/console/tenants", [("provider", provider.rawValue), ("state", state.rawValue)]))\">\(count)</a></td>"
            }
            totals.append("<tr><th scope=\"row\">\(provider.rawValue)</th>\(cells)</tr>")
        }
        var health: [HTML] = []
        for kind in service.registry.kinds {
            let snapshot = await service.health[kind]?.snapshot(now: clock.now())
            let configured = service.configuredProviders.contains(kind)
            let latest = snapshot?.recentErrors.last
            health.append("""
                <tr><td>\(kind.rawValue)</td><td>\(configured ? "yes" : "no")</td><td>\(ConsoleLayout.badge(snapshot?.state.rawValue ?? "closed"))</td>\
                <td>\(snapshot?.consecutiveFailures ?? 0)</td><td>\(ConsoleTime.format(snapshot?.openUntil))</td>\
                <td class="wrap">\(latest.map { "\(ConsoleTime.ago($0.at, now: now)): \($0.operation): \($0.reason)" } ?? "—")</td></tr>
                """)
        }
        let stuck: [HTML] = stats.stuckSample.map { "<li><a href=\"/console/tenants/\($0)\" class=\"mono\">\($0)</a></li>" }
        let failingRows: [HTML] = failing.map { deliveryRow($0, csrf: csrf(context)) }
        return render(context, "Overview", current: "/console", """
            <h1>Overview</h1>
            <div class="cards">
            <div class="card"><div class="muted">Stuck (waiting over \(Int(stuckAfter / 3600)) h)</div><div class="big">\(stats.stuckCount)</div></div>
            <div class="card"><div class="muted">Work queued</div><div class="big">\(stats.queuedWork.values.reduce(0, +))</div>\
            <div class="muted">oldest due \(stats.oldestDueSeconds.map { "\(Bounds.wholeSeconds($0)) s ago" } ?? "—")</div></div>
            <div class="card"><div class="muted">Events endpoint</div><div class="big">\(endpoint.configured ? (endpoint.enabled ? "enabled" : "disabled") : "not set")</div>\
            <div class="muted">\(endpoint.pending) pending · \(endpoint.failed) failed · \(endpoint.delivered) delivered</div></div>
            </div>
            <h2>Tenants by provider and state</h2>
            <div class="scroll"><table><thead><tr><th></th>\(TenantState.allCases.map { HTML("<th scope=\"col\">\($0.rawValue.replacingOccurrences(of: "_", with: " "))</th>") })</tr></thead><tbody>\(totals)</tbody></table></div>
            <h2>Stuck tenants</h2>
            \(stuck.isEmpty ? HTML("<p class=\"empty\">None.</p>") : HTML("<ul>\(stuck)</ul>"))
            <h2>Providers</h2>
            \(ConsoleLayout.table(["Provider", "Configured", "Circuit", "Failures in a row", "Open until", "Latest error"], health, empty: ""))
            <h2>Failed deliveries</h2>
            \(ConsoleLayout.table(["Delivery", "Event", "Tenant", "Status", "Attempts", "Last answer", ""], failingRows, empty: "No failed deliveries."))
            <p><a href="/console/deliveries?status=failed">All failed deliveries</a></p>
            """)
    }

    // MARK: - Tenants

    @Sendable func tenants(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let q = try request.query("q")?.trimmingCharacters(in: .whitespaces)
        let state = try Self.choice(request, "state", TenantState.self)
        let provider = try Self.provider(request, service.registry)
        let cursor = try request.query("cursor")
        let page = try await operations.searchTenants(
            q: q?.isEmpty == true ? nil : q, state: state, provider: provider, limit: 25,
            before: try cursor.map { try Cursor.decode("t", $0) }
        )
        let rows: [HTML] = page.items.map { tenant in
            """
            <tr><td><a href="/console/tenants/\(tenant.id)" class="mono">\(tenant.id)</a></td><td>\(tenant.provider.rawValue)</td>\
            <td>\(tenant.externalID)</td><td>\(ConsoleLayout.badge(tenant.state.rawValue))</td>\
            <td>\(tenant.nextAction?.type.rawValue.replacingOccurrences(of: "_", with: " ") ?? "—")</td><td>\(ConsoleTime.format(tenant.updatedAt))</td></tr>
            """
        }
        let select = { (name: String, values: [String], chosen: String?) -> HTML in
            let options: [HTML] = [HTML("<option value=\"\">any</option>")] + values.map { value in
                HTML("<option value=\"\(value)\"\(value == chosen ? HTML(raw: " selected") : "")>\(value.replacingOccurrences(of: "_", with: " "))</option>")
            }
            return "<label>\(name.capitalized) <select name=\"\(name)\">\(options)</select></label>"
        }
        let next: HTML = page.next.map { next in
            HTML("<p class=\"pager\"><a href=\"\(HTML.url("/console/tenants", [("q", q), ("state", state?.rawValue), ("provider", provider?.rawValue), ("cursor", Cursor.encode("t", next))]))\">Older tenants →</a></p>")
        } ?? ""
        return render(context, "Tenants", current: "/console/tenants", """
            <h1>Tenants</h1>
            <form method="get" action="/console/tenants" class="search" role="search">
            <label>External id, email or tax id <input type="search" name="q" value="\(q ?? "")"></label>
            \(select("state", TenantState.allCases.map(\.rawValue), state?.rawValue))
            \(select("provider", service.registry.kinds.map(\.rawValue), provider?.rawValue))
            <button type="submit">Search</button>
            </form>
            \(ConsoleLayout.table(["Tenant", "Provider", "External id", "State", "Next action", "Updated"], rows, empty: "No tenant matches."))
            \(next)
            """)
    }

    @Sendable func tenant(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try await tenantPage(context.parameters.require("id"), context: context, notice: Self.notices[request.uri.queryParameters["done"].map(String.init) ?? ""])
    }

    /// What a finished action says on the tenant's page (a fixed set: nothing from the request is echoed).
    static let notices: [String: String] = [
        "refresh": "The provider was asked; the tenant is as its answer left it.",
        "retry": "The tenant was submitted again.",
        "resubmit": "The tenant was submitted again.",
        "queued": "Another conversation with the provider is under way for this tenant: the work is queued and runs next.",
        "offboard": "The tenant was offboarded: its personal data and credentials are erased.",
    ]

    private func tenantPage(_ id: String, context: GatewayRequestContext, notice: String?, extra: HTML = "", status: HTTPResponse.Status = .ok) async throws -> Response {
        let now = clock.now()
        let tenant = try await service.tenant(id: id)
        let events = try await service.events(tenantID: id, after: nil, limit: 100).items
        let work = try await operations.queued(tenantID: id)
        let sent = try await deliveries.deliveries(status: nil, tenantID: id, limit: 20, before: nil).items
        let token = csrf(context)

        var facts: [(String, HTML)] = [
            ("State", ConsoleLayout.badge(tenant.state.rawValue)),
            ("Provider", "\(tenant.provider.rawValue)"),
            ("External id", "<span class=\"mono\">\(tenant.externalID)</span>"),
            ("Provider status", "\(tenant.providerStatus ?? "—")"),
            ("Credentials", tenant.credentialsAvailable ? "stored (never shown here)" : "none"),
            ("Created", "\(ConsoleTime.format(tenant.createdAt))"),
            ("State since", "\(ConsoleTime.format(tenant.stateChangedAt)) (\(ConsoleTime.ago(tenant.stateChangedAt, now: now)))"),
        ]
        if let action = tenant.nextAction {
            let url: HTML = action.url.map { " — <a href=\"\($0)\" rel=\"noreferrer\">provider link</a>" } ?? ""
            facts.insert(("Next action", "\(action.type.rawValue.replacingOccurrences(of: "_", with: " "))\(url)"), at: 1)
        }
        if let error = tenant.lastError {
            let fields = error.errors.map { "\($0.field): \($0.message)" }.joined(separator: "; ")
            facts.append(("Last error", "<code>\(error.code)</code> \(error.message)\(fields.isEmpty ? "" : " (\(fields))") — \(ConsoleTime.format(error.at))"))
        }
        if service.registry.definition(tenant.provider)?.capabilities.watchesCredentialHealth == true, tenant.credentialsAvailable {
            // The last credential check: what the daily check (or a proxied 401's) found, and when.
            if let check = tenant.credentialCheck {
                let reason = check.reason.map { " — \($0)" } ?? ""
                facts.append(("Credential health", "<strong>\(check.result)</strong>\(reason) — checked \(ConsoleTime.format(check.at)) (\(ConsoleTime.ago(check.at, now: now)))"))
            } else {
                facts.append(("Credential health", "not checked yet (the first check comes within a day of activation)"))
            }
        }
        if let details = tenant.providerDetails {
            let values = details.values.sorted { $0.key < $1.key }.map { key, value -> String in
                switch value {
                case .string(let text): "\(key)=\(text)"
                case .bool(let flag): "\(key)=\(flag)"
                }
            }.joined(separator: ", ")
            facts.append(("Provider details", "\(values) — read \(ConsoleTime.format(details.readAt))"))
        }
        if let email = tenant.profile.email { facts.append(("Email", "\(email)")) }
        if let phone = tenant.profile.phone { facts.append(("Phone", "\(phone)")) }
        if let company = tenant.profile.company {
            facts.append(("Company", "\([company.legalName, company.taxID.map { "tax id \($0)" }, company.country].compactMap { $0 }.joined(separator: " · "))"))
        }
        if !tenant.metadata.isEmpty {
            facts.append(("Metadata", "\(tenant.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))"))
        }

        var actions: [HTML] = []
        let base = "/console/tenants/\(tenant.id)"
        // The buttons are the commands the tenant allows now: the same answer the API gives (`TenantCommands`).
        let allowed = service.allowedCommands(for: tenant)
        if allowed.contains(.refresh) {
            actions.append(ConsoleLayout.actionForm("\(base)/refresh", label: "Refresh from the provider", csrf: token, confirm: "Ask the provider now"))
        }
        if allowed.contains(.retry) {
            actions.append(ConsoleLayout.actionForm("\(base)/retry", label: "Retry", csrf: token, confirm: "Submit this tenant again"))
        }
        // A failed tenant's transfer is not a button: it is the admin API's, deliberately (docs/providers.md).
        if allowed.contains(.resubmit) {
            actions.append(ConsoleLayout.actionForm("\(base)/resubmit", label: "Resubmit", csrf: token, confirm: "The customer cannot act on what was asked: ask the provider again"))
        }
        if allowed.contains(.onboardingLink) {
            actions.append(ConsoleLayout.actionForm("\(base)/onboarding-link", label: "Fresh onboarding link", csrf: token, confirm: "Ask the provider for a new URL for the customer"))
        }
        if allowed.contains(.offboard) {
            actions.append("""
                <form method="post" action="\(base)/offboard" class="action">\(ConsoleLayout.csrfField(token))\
                <label class="typed"><span>Type the external id <strong class="mono">\(tenant.externalID)</strong> to offboard and erase this customer</span>\
                <input type="text" name="confirm_external_id" required autocomplete="off"></label>\
                <button type="submit" class="danger">Offboard</button></form>
                """)
        }

        let timeline: [HTML] = events.reversed().map { event in
            let change = event.previousState.map { "\($0.rawValue) → \(event.tenant.state.rawValue)" } ?? event.tenant.state.rawValue
            return "<tr><td>\(ConsoleTime.format(event.createdAt))</td><td>\(event.type.rawValue)</td><td>\(change)</td><td>\(event.source.rawValue)</td><td>\(event.tenant.providerStatus ?? "—")</td></tr>"
        }
        let workRows: [HTML] = work.map { item in
            "<tr><td>\(item.kind.rawValue)</td><td>\(ConsoleTime.format(item.runAt)) (\(ConsoleTime.ago(item.runAt, now: now)))</td><td>\(item.attempts)</td><td class=\"wrap\">\(item.lastError ?? "—")</td></tr>"
        }
        return render(context, tenant.externalID, current: "/console/tenants", """
            <h1>\(tenant.externalID) <span class="muted mono">\(tenant.id)</span></h1>
            \(ConsoleLayout.notice(notice))
            \(extra)
            <dl class="facts">\(facts.map { name, value in HTML("<dt>\(name)</dt><dd>\(value)</dd>") })</dl>
            <h2>Actions</h2>
            <div class="actions">\(actions.isEmpty ? HTML("<p class=\"empty\">None: the tenant is offboarded.</p>") : HTML.join(actions))</div>
            <h2>History</h2>
            \(ConsoleLayout.table(["When", "Event", "State", "Source", "Provider status"], timeline, empty: "No events."))
            <h2>Pending work</h2>
            \(ConsoleLayout.table(["Kind", "Runs", "Attempts", "Last error"], workRows, empty: "Nothing queued."))
            <h2>Deliveries</h2>
            \(ConsoleLayout.table(["Delivery", "Event", "Tenant", "Status", "Attempts", "Last answer", ""], sent.map { deliveryRow($0, csrf: token) }, empty: "No deliveries."))
            """, status: status)
    }

    @Sendable func tenantAction(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let action = try context.parameters.require("action")
        let form = context.console?.form ?? [:]
        let actor = context.actor
        let back = "/console/tenants/\(id)"
        func confirmed() throws {
            guard form["confirm"] == "yes" else {
                throw ConsoleRefusal(status: .unprocessableContent, message: "Tick the confirmation box to \(action) this tenant.")
            }
        }
        func done(_ outcome: ProviderRequestOutcome, _ name: String) -> Response {
            if case .queued = outcome { return ConsoleLayout.redirect("\(back)?done=queued") }
            return ConsoleLayout.redirect("\(back)?done=\(name)")
        }
        switch action {
        case "refresh":
            try confirmed()
            return done(try await tenantsAdmin.poll(id, by: actor), action)
        case "retry":
            try confirmed()
            return done(try await tenantsAdmin.retry(id, by: actor), action)
        case "resubmit":
            try confirmed()
            guard service.allowedCommands(for: try await service.tenant(id: id)).contains(.resubmit) else {
                throw ConsoleRefusal(status: .conflict, message: "Only a tenant waiting on its customer is resubmitted here; a failed tenant's transfer is POST /admin/tenants/{id}/resubmit.")
            }
            return done(try await tenantsAdmin.resubmit(id, by: actor), action)
        case "onboarding-link":
            try confirmed()
            let url = try await service.freshOnboardingURL(tenantID: id)
            try await audit.audit(AuditEntry(at: clock.now(), actor: actor, action: "tenant.onboarding_link", tenantID: id))
            let link = links.freshLink(for: id)
            return try await tenantPage(id, context: context, notice: "A fresh link: copy it now, it is not shown again.", extra: """
                <div class="card"><label>Provider URL (for the customer now) <input class="copy" type="text" readonly value="\(url)"></label>
                <label>Stable onboarding link (for an email) <input class="copy" type="text" readonly value="\(link)"></label></div>
                """)
        case "offboard":
            let tenant = try await service.tenant(id: id)
            guard form["confirm_external_id"]?.trimmingCharacters(in: .whitespaces) == tenant.externalID else {
                throw ConsoleRefusal(status: .unprocessableContent, message: "Type the tenant's external id exactly to offboard it.")
            }
            _ = try await service.offboard(tenantID: id, source: .admin, actor: actor)
            return ConsoleLayout.redirect("\(back)?done=offboard")
        default:
            throw HTTPError(.notFound)
        }
    }

    // MARK: - Deliveries

    private func deliveryRow(_ delivery: DeliveryRecord, csrf csrfToken: String) -> HTML {
        let last = delivery.attempts.last
        let answer: String = last.map { attempt in
            // The error repeats the status ("answered 500") when there is one.
            let error = attempt.statusCode == nil ? attempt.error : nil
            return [attempt.statusCode.map { "HTTP \($0)" }, error, attempt.excerpt.map { "“\($0.prefix(80))”" }].compactMap { $0 }.joined(separator: " ")
        } ?? "—"
        let redeliver: HTML = delivery.status == .pending ? "" : """
            <form method="post" action="/console/deliveries/\(delivery.id)/redeliver" class="inline">\(ConsoleLayout.csrfField(csrfToken))<button type="submit">Redeliver</button></form>
            """
        return """
            <tr><td class="mono">\(delivery.id)</td><td>\(delivery.eventType.rawValue)</td>\
            <td><a href="/console/tenants/\(delivery.tenantID)" class="mono">\(delivery.tenantID)</a></td><td>\(ConsoleLayout.badge(delivery.status.rawValue))</td>\
            <td>\(delivery.attempts.count)</td><td class="wrap">\(answer)</td><td>\(redeliver)</td></tr>
            """
    }

    @Sendable func deliveryList(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let status = try Self.choice(request, "status", DeliveryRecord.Status.self) ?? .failed
        let cursor = try request.query("cursor")
        let page = try await deliveries.deliveries(status: status, tenantID: nil, limit: 25, before: try cursor.map { try Cursor.decode("d", $0) })
        let rows = page.items.map { deliveryRow($0, csrf: csrf(context)) }
        let tabs: [HTML] = DeliveryRecord.Status.allCases.map { value in
            HTML("<li><a href=\"/console/deliveries?status=\(value.rawValue)\"\(value == status ? HTML(raw: " aria-current=\"page\"") : "")>\(value.rawValue)</a></li>")
        }
        let next: HTML = page.next.map { next in
            HTML("<p class=\"pager\"><a href=\"\(HTML.url("/console/deliveries", [("status", status.rawValue), ("cursor", Cursor.encode("d", next))]))\">Older →</a></p>")
        } ?? ""
        let done = request.uri.queryParameters["requeued"].flatMap { Int(String($0)) }
        let redelivered = request.uri.queryParameters["redelivered"].map(String.init)
        return render(context, "Deliveries", current: "/console/deliveries", """
            <h1>Deliveries</h1>
            \(ConsoleLayout.notice(done.map { "\($0) failed deliveries queued again." }))
            \(ConsoleLayout.notice(redelivered != nil ? "The delivery is queued again, with the same webhook-id." : nil))
            <nav><ul>\(tabs)</ul></nav>
            \(ConsoleLayout.table(["Delivery", "Event", "Tenant", "Status", "Attempts", "Last answer", ""], rows, empty: "No \(status.rawValue) deliveries."))
            \(next)
            <h2>Redeliver every failed delivery since a time</h2>
            <form method="post" action="/console/deliveries/redeliver-failed" class="stack">\(ConsoleLayout.csrfField(csrf(context)))
            <label>Failed since (UTC) <input type="datetime-local" name="since" step="1" required></label>
            <label class="confirm"><input type="checkbox" name="confirm" value="yes" required> Send them all again</label>
            <button type="submit">Redeliver failed</button>
            </form>
            """)
    }

    @Sendable func redeliver(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let record = try await deliveriesAdmin.redeliver(context.parameters.require("id"), by: context.actor)
        return ConsoleLayout.redirect("/console/deliveries?status=pending&redelivered=\(record.id)")
    }

    @Sendable func redeliverFailed(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let form = context.console?.form ?? [:]
        guard form["confirm"] == "yes" else {
            throw ConsoleRefusal(status: .unprocessableContent, message: "Tick the confirmation box to send every failed delivery again.")
        }
        guard let text = form["since"], let since = Self.localTime(text) else {
            throw ConsoleRefusal(status: .unprocessableContent, message: "Give the time as a date and a time of day (UTC).")
        }
        let count = try await deliveriesAdmin.redeliverFailed(since: since, by: context.actor)
        return ConsoleLayout.redirect("/console/deliveries?status=pending&requeued=\(count)")
    }

    /// A `datetime-local` value (`2026-11-21T10:00` or with seconds), read as UTC.
    static func localTime(_ text: String) -> Date? {
        let value = text.trimmingCharacters(in: .whitespaces)
        for suffix in [":00Z", "Z"] {
            if let date = strictTimestamp(value + suffix) { return date }
        }
        return nil
    }

    // MARK: - API keys

    @Sendable func apiKeys(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try await keysPage(context, created: nil)
    }

    private func keysPage(_ context: GatewayRequestContext, created: (APIKeyRecord, String)?, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let token = csrf(context)
        let rows: [HTML] = try await keys.apiKeys().map { key in
            let revoke: HTML = key.revokedAt != nil ? "" : """
                <form method="post" action="/console/api-keys/\(key.id)/revoke" class="inline">\(ConsoleLayout.csrfField(token))\
                <label class="confirm"><input type="checkbox" name="confirm" value="yes" required> sure</label> <button type="submit" class="danger">Revoke</button></form>
                """
            return """
                <tr><td>\(key.name)</td><td class="mono">\(key.prefix)…</td><td>\(key.scopes.joined(separator: ", "))</td>\
                <td>\(ConsoleTime.format(key.createdAt))</td><td>\(key.revokedAt.map { ConsoleTime.format($0) } ?? "—")</td><td>\(revoke)</td></tr>
                """
        }
        let shown: HTML = created.map { record, key in
            """
            <div class="notice" role="status"><p>The key <strong>\(record.name)</strong> is made. Copy it now: it is not shown again.</p>
            <input class="copy" type="text" readonly value="\(key)" aria-label="The new key"></div>
            """
        } ?? ""
        let scopes: [HTML] = Scope.allCases.map { scope in
            HTML("<label class=\"confirm\"><input type=\"checkbox\" name=\"scopes\" value=\"\(scope.rawValue)\"> \(scope.rawValue)</label>")
        }
        return render(context, "API keys", current: "/console/api-keys", """
            <h1>API keys</h1>
            \(shown)
            \(ConsoleLayout.notice(error, error: true))
            \(ConsoleLayout.table(["Name", "Key", "Scopes", "Created", "Revoked", ""], rows, empty: "No keys made here yet (GATEWAY_API_KEY is set in the environment)."))
            <h2>Make a key</h2>
            <form method="post" action="/console/api-keys" class="stack">\(ConsoleLayout.csrfField(token))
            <label>Name <input type="text" name="name" maxlength="100" required></label>
            <fieldset><legend>Scopes</legend>\(scopes)</fieldset>
            <button type="submit">Make the key</button>
            </form>
            """, status: status)
    }

    @Sendable func createKey(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let form = context.console?.form ?? [:]
        let scopes = (form["scopes"] ?? "").split(separator: ",").map(String.init)
        do {
            let made = try await keysAdmin.create(name: (form["name"] ?? "").trimmingCharacters(in: .whitespaces), scopes: scopes, by: context.actor)
            return try await keysPage(context, created: made)
        } catch let problem as Problem {
            let message = problem.errors.map { "\($0.field): \($0.message)" }.joined(separator: " ")
            return try await keysPage(context, created: nil, error: message.isEmpty ? problem.detail : message, status: problem.status)
        }
    }

    @Sendable func revokeKey(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard context.console?.form["confirm"] == "yes" else {
            throw ConsoleRefusal(status: .unprocessableContent, message: "Tick the box to revoke the key.")
        }
        try await keysAdmin.revoke(context.parameters.require("id"), by: context.actor)
        return ConsoleLayout.redirect("/console/api-keys")
    }

    // MARK: - Audit

    @Sendable func auditLog(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let tenantID = try request.query("tenant_id")
        let before = try request.query("cursor").map { Int64(try Cursor.decode("a", $0)) ?? 0 }
        let page = try await operations.audit(tenantID: tenantID?.isEmpty == true ? nil : tenantID, limit: 50, before: before)
        let rows: [HTML] = page.items.map { item in
            let entry = item.entry
            let details = entry.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let tenant: HTML = entry.tenantID.map { "<a href=\"/console/tenants/\($0)\" class=\"mono\">\($0)</a>" } ?? "—"
            return "<tr><td>\(ConsoleTime.format(entry.at))</td><td>\(entry.actor)</td><td>\(entry.action)</td><td>\(tenant)</td><td class=\"wrap\">\(details)</td></tr>"
        }
        let next: HTML = page.next.map { next in
            HTML("<p class=\"pager\"><a href=\"\(HTML.url("/console/audit", [("tenant_id", tenantID), ("cursor", Cursor.encode("a", next))]))\">Older →</a></p>")
        } ?? ""
        return render(context, "Audit log", current: "/console/audit", """
            <h1>Audit log</h1>
            <form method="get" action="/console/audit" class="search"><label>Tenant id <input type="search" name="tenant_id" value="\(tenantID ?? "")"></label><button type="submit">Filter</button></form>
            \(ConsoleLayout.table(["When", "Who", "What", "Tenant", "Details"], rows, empty: "Nothing recorded."))
            \(next)
            """)
    }
}
