import AsyncHTTPClient
import Foundation
import GatewayCore
import NIOCore

/// Wrapp's Partners API as `providers.md` describes it, served in-process by `serve --sandbox` and by tests.
///
/// Magic values: an email starting with `existing` is a person who already had a Wrapp account (no webhook will
/// come); an email starting with `fail500` gets the HTML 500 Wrapp gives for bad company data. Control endpoints
/// under `/_control` script faults, switch random faults on (`chaos`), choose how an unknown user is answered, flip
/// subscriptions, show a user's key (`users/{partner_user_id}`) and count calls (`calls`).
public actor WrappSimulator {
    public struct User: Sendable, Equatable {
        public var partnerUserID: String
        public var email: String
        public var phone: String
        public var webhookEndpoint: String?
        public var loggedIn = false
        public var existedBefore: Bool
        public var wrappUserID: String
        public var apiKey: String
        public var subscriptionActive = false
    }

    /// How `embedded_check_user` answers for a user that does not exist yet: the adapter must survive each.
    public enum UnknownUserStyle: String, Sendable, Codable, CaseIterable {
        case nullUser = "null_user"
        case notFound = "not_found"
        case errorBody = "error_body"
    }

    public typealias WebhookSender = @Sendable (_ url: String, _ body: Data) async -> Int?

    let partnerAPIKey: String
    /// Where the simulated login pages are reachable from a browser, e.g. `http://127.0.0.1:8080/sandbox/wrapp`.
    let publicBaseURL: @Sendable () -> String
    let sendWebhook: WebhookSender
    private var users: [String: User] = [:]
    private var loginTokens: [String: String] = [:]
    /// JWTs from `/login`: whose, for which key (a rotated key voids them), until when.
    private var jwts: [String: (partnerUserID: String, apiKey: String, expires: Date)] = [:]
    /// How long a JWT lasts (Wrapp: 24 h).
    private var jwtLifetime: TimeInterval = 86_400
    /// Invoices made through the Invoice API, per customer.
    private var invoices: [String: [[String: Any]]] = [:]
    private var faults = FaultScript()
    private var chaos = RandomFaults()
    private var inFlight = InFlightCalls()
    /// Every partner-API call answers this much later: a slow provider (`GATEWAY_SANDBOX_PROVIDER_DELAY_MS`).
    private var answerDelay: Duration = .zero
    private var unknownUserStyle = UnknownUserStyle.nullUser
    /// Partner-API calls by path (e.g. `/external_login`), whatever their outcome.
    public private(set) var calls: [String: Int] = [:]
    /// Scripted and random faults served so far.
    public private(set) var faultsInjected = 0
    public private(set) var webhooksSent: [(url: String, status: Int?)] = []

    public init(partnerAPIKey: String, publicBaseURL: @escaping @Sendable () -> String, sendWebhook: @escaping WebhookSender) {
        self.partnerAPIKey = partnerAPIKey
        self.publicBaseURL = publicBaseURL
        self.sendWebhook = sendWebhook
    }

    /// Posts webhooks over real HTTP, as Wrapp would.
    public static func httpSender(_ client: HTTPClient = SharedClients.client()) -> WebhookSender {
        { url, body in
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
            return try? Int(await client.execute(request, timeout: .seconds(10)).status.code)
        }
    }

    // MARK: - Test and control API

    public func add(_ fault: SimulatedFault) { faults.add(fault) }
    public func setAnswerDelay(milliseconds: Int) { answerDelay = .milliseconds(max(0, milliseconds)) }

    /// Random faults on `rate` of the partner-API calls (`external_login`, `embedded_check_user`, `login`), chosen
    /// uniformly among a 500 JSON error, a 502 HTML page, a 200 that is not JSON, a 429 with `Retry-After: 1`, a
    /// connection reset, and a late success (carried out, answered after `lateDelayMilliseconds`). `rate` 0 is off.
    /// `callerTimeoutMilliseconds`, when given, is how long the caller waits: a late success stops counting as in
    /// flight for `maxConcurrentCallsPerUser` after it.
    public func setChaos(rate: Double, seed: UInt64 = 1, lateDelayMilliseconds: Int = 2500, callerTimeoutMilliseconds: Int? = nil) {
        chaos.configure(rate: rate, seed: seed, lateDelayMilliseconds: lateDelayMilliseconds, callerTimeoutMilliseconds: callerTimeoutMilliseconds)
    }

    /// The most partner-API calls ever in flight at once for one `partner_user_id` (a late success stays in flight
    /// while its answer is held back).
    public var maxConcurrentCallsPerUser: Int { inFlight.maximum }

    public func setUnknownUserStyle(_ style: UnknownUserStyle) { unknownUserStyle = style }
    public func user(_ partnerUserID: String) -> User? { users[partnerUserID] }
    public func setSubscription(_ partnerUserID: String, active: Bool) { users[partnerUserID]?.subscriptionActive = active }
    /// The person already had a Wrapp account: when they log in, Wrapp sends no webhook, and the partner app must ask
    /// them for their user id and api_key (`provide_credentials`). Before the tenant is created, the account is made
    /// now and takes the email and phone of the first `external_login`.
    @discardableResult
    public func markPreExisting(_ partnerUserID: String) -> User {
        var user = users[partnerUserID] ?? User(
            partnerUserID: partnerUserID, email: "", phone: "", existedBefore: true,
            wrappUserID: "wrapp-user-\(Self.randomHex(6))", apiKey: "sandbox-api-key-\(Self.randomHex(16))"
        )
        user.existedBefore = true
        users[partnerUserID] = user
        return user
    }

    /// Scripted faults and random faults off.
    public func clearFaults() {
        faults.clear()
        chaos.configure(rate: 0, seed: 1, lateDelayMilliseconds: 2500, callerTimeoutMilliseconds: nil)
    }

    /// Scripted faults not served yet.
    public var pendingFaults: Int { faults.pending }

    /// The person has logged in at Wrapp (their user exists) but its webhook has not come, or will come later.
    public func logIn(_ partnerUserID: String) { users[partnerUserID]?.loggedIn = true }

    /// What the login page's button does: the person logs in, accepts, pays; a new user's webhook is sent.
    @discardableResult
    public func completeOnboarding(_ partnerUserID: String) async -> Int? {
        guard var user = users[partnerUserID] else { return nil }
        user.loggedIn = true
        user.subscriptionActive = true
        users[partnerUserID] = user
        guard !user.existedBefore, let endpoint = user.webhookEndpoint else { return nil }
        let payload: [String: Any] = [
            "wrapp_user_id": user.wrappUserID, "partner_user_id": user.partnerUserID, "api_key": user.apiKey, "email": user.email,
        ]
        let body = (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])) ?? Data()
        let status = await sendWebhook(endpoint, body)
        webhooksSent.append((endpoint, status))
        return status
    }

    // MARK: - HTTP

    public func handle(_ request: SimulatedRequest) async -> SimulatedResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        switch (request.method, parts.first ?? "", parts.count) {
        case ("GET", "login", 2): return loginPage(token: parts[1])
        case ("POST", "login", 3) where parts[2] == "complete": return await completePage(token: parts[1])
        case (_, "_control", _): return control(request, parts: Array(parts.dropFirst()))
        case (_, let first, _) where !["external_login", "embedded_check_user", "login"].contains(first):
            calls[request.path, default: 0] += 1
            if answerDelay > .zero { try? await Task.sleep(for: answerDelay) }
            // Scripted faults apply here too (`operation` is the path, e.g. `invoices`): a proxy passes them through.
            if let fault = faults.take(parts.joined(separator: "/")) {
                faultsInjected += 1
                if let delay = fault.delayMilliseconds { try? await Task.sleep(for: .milliseconds(delay)) }
                if fault.style != .lateSuccess { return fault.response() }
            }
            return invoiceAPI(request, parts: parts)
        default: break
        }
        calls[request.path, default: 0] += 1
        guard request.headers["x-partner-api-key"] == partnerAPIKey else {
            return .json(401, ["message": "Unauthorized"])
        }
        let operation = parts.joined(separator: "/")
        // The actor re-enters at every await: a call is in flight from here until it is answered.
        let key = inFlightKey(request, operation: operation)
        inFlight.begin(key)
        if answerDelay > .zero { try? await Task.sleep(for: answerDelay) }
        if let fault = faults.take(operation) {
            faultsInjected += 1
            if let delay = fault.delayMilliseconds { try? await Task.sleep(for: .milliseconds(delay)) }
            inFlight.end(key)
            if fault.style == .lateSuccess { return route(request, operation: operation) }
            return fault.response()
        }
        if request.method == "POST", Self.partnerOperations.contains(operation), let kind = chaos.draw() {
            faultsInjected += 1
            if kind == .lateSuccess {
                // Carried out now; the answer comes after the caller has given up.
                let response = route(request, operation: operation)
                let (waited, rest) = chaos.lateDelaySplit(alreadySpent: answerDelay)
                try? await Task.sleep(for: .milliseconds(waited))
                inFlight.end(key)
                if rest > 0 { try? await Task.sleep(for: .milliseconds(rest)) }
                return response
            }
            inFlight.end(key)
            return chaos.response(kind)
        }
        inFlight.end(key)
        return route(request, operation: operation)
    }

    /// The Partners API calls random faults apply to (not the login pages, not the control routes).
    static let partnerOperations: Set<String> = ["external_login", "embedded_check_user", "login"]

    /// The customer a call is about, for the in-flight records: `partner_user_id`, or for `/login` the user its
    /// `wrapp_user_id` or email names.
    private func inFlightKey(_ request: SimulatedRequest, operation: String) -> String? {
        guard let json = request.jsonObject() else { return nil }
        if let partnerUserID = json["partner_user_id"] as? String { return partnerUserID }
        guard operation == "login" else { return nil }
        let wrappUserID = json["wrapp_user_id"] as? String
        let email = json["email"] as? String
        if let wrappUserID, let user = users.values.first(where: { $0.wrappUserID == wrappUserID }) { return user.partnerUserID }
        if let email, let user = users.values.first(where: { $0.email == email }) { return user.partnerUserID }
        return nil
    }

    private func route(_ request: SimulatedRequest, operation: String) -> SimulatedResponse {
        switch (request.method, operation) {
        case ("POST", "external_login"): return externalLogin(request)
        case ("POST", "embedded_check_user"): return checkUser(request)
        case ("POST", "login"): return login(request)
        default: return .notFound
        }
    }

    private func externalLogin(_ request: SimulatedRequest) -> SimulatedResponse {
        guard let json = request.jsonObject() else { return .json(400, ["message": "Invalid JSON"]) }
        let missing = ["email", "partner_user_id", "phone"].filter { ((json[$0] as? String) ?? "").isEmpty }
        guard missing.isEmpty else {
            return .json(422, ["errors": missing.map { ["field": $0, "message": "can't be blank"] }])
        }
        let email = json["email"] as! String
        let partnerUserID = json["partner_user_id"] as! String
        if email.hasPrefix("fail500") {
            return .html(500, "<html><body><h1>We're sorry, but something went wrong.</h1></body></html>")
        }
        var user = users[partnerUserID] ?? User(
            partnerUserID: partnerUserID, email: email, phone: json["phone"] as! String, existedBefore: email.hasPrefix("existing"),
            wrappUserID: "wrapp-user-\(Self.randomHex(6))", apiKey: "sandbox-api-key-\(Self.randomHex(16))"
        )
        if user.email.isEmpty {
            // An account marked pre-existing before its tenant was created.
            user.email = email
            user.phone = json["phone"] as! String
        }
        user.webhookEndpoint = json["webhook_endpoint"] as? String
        users[partnerUserID] = user
        let token = Self.randomHex(16)
        loginTokens[token] = partnerUserID
        return .json(200, ["login_url": "\(publicBaseURL())/login/\(token)"])
    }

    private func checkUser(_ request: SimulatedRequest) -> SimulatedResponse {
        guard let partnerUserID = request.jsonObject()?["partner_user_id"] as? String else {
            return .json(400, ["error": "partner_user_id is required"])
        }
        guard let user = users[partnerUserID], user.loggedIn else {
            switch unknownUserStyle {
            case .nullUser: return .json(200, ["user": NSNull(), "active_subscription": false])
            case .notFound: return .json(404, ["error": "User not found"])
            case .errorBody: return .json(200, ["errors": [["message": "User not found"]]])
            }
        }
        return .json(200, ["user": user.email, "active_subscription": user.subscriptionActive])
    }

    private func login(_ request: SimulatedRequest) -> SimulatedResponse {
        let json = request.jsonObject() ?? [:]
        let apiKey = json["api_key"] as? String
        let match = users.values.first { user in
            user.loggedIn && user.apiKey == apiKey
                && (user.wrappUserID == json["wrapp_user_id"] as? String || user.email == json["email"] as? String)
        }
        guard let match else { return .json(401, ["errors": [["title": "Not valid user"]]]) }
        let expires = Date().addingTimeInterval(jwtLifetime)
        let jwt = Self.jwt(subject: match.wrappUserID, expires: expires)
        jwts[jwt] = (match.partnerUserID, match.apiKey, expires)
        return .json(200, ["data": ["type": "jwt", "attributes": ["jwt": jwt]]])
    }

    /// A JWT's shape (header, claims with `exp`, a signature), as Wrapp's are; the simulator keeps what it issued.
    static func jwt(subject: String, expires: Date) -> String {
        func part(_ object: [String: Any]) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        return part(["alg": "HS256", "typ": "JWT"]) + "." + part(["sub": subject, "exp": Int(expires.timeIntervalSince1970), "jti": randomHex(8)])
            + "." + randomHex(16)
    }

    /// The Invoice API (same host): `Authorization: Bearer <JWT>` from `/login`, refused once the JWT expired or the
    /// customer rotated their key. `GET /tenant_details`, `GET /invoices`, `POST /invoices`; for tests of the proxy,
    /// `GET /moved` answers a redirect to another host and `GET /headers` headers a proxy must not pass on (no Wrapp
    /// API does either).
    private func invoiceAPI(_ request: SimulatedRequest, parts: [String]) -> SimulatedResponse {
        lastInvoiceAPIRequest = (request.headers, request.query)
        let bearer = request.headers["authorization"].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let bearer, let grant = jwts[bearer], grant.expires > Date(), let user = users[grant.partnerUserID], user.apiKey == grant.apiKey else {
            return .json(401, ["errors": [["title": "Unauthorized"]]])
        }
        switch (request.method, parts.joined(separator: "/")) {
        case ("GET", "tenant_details"):
            return .json(200, [
                "wrapp_user_id": user.wrappUserID, "partner_user_id": user.partnerUserID, "email": user.email,
                "issue_invoice_status": user.subscriptionActive, "has_plan": user.subscriptionActive,
                "plan_name": user.subscriptionActive ? "Sandbox Pro" : NSNull(), "next_payment_date": "2027-01-15", "next_payment_amount": "19.90",
            ] as [String: Any])
        case ("GET", "invoices"):
            return .json(200, ["data": invoices[user.partnerUserID] ?? []])
        case ("POST", "invoices"):
            guard let body = request.jsonObject() else { return .json(422, ["errors": [["title": "Invalid JSON"]]]) }
            var invoice = body
            invoice["id"] = "inv_" + Self.randomHex(6)
            invoices[user.partnerUserID, default: []].append(invoice)
            return .json(201, ["data": invoice])
        case ("GET", "moved"):
            return SimulatedResponse(status: 302, headers: ["Location": "https://elsewhere.example/collect"], body: Data())
        case ("GET", "headers"):
            // Headers a provider may send that must not land on the gateway's origin, beside ones that may.
            return SimulatedResponse(status: 200, headers: [
                "Content-Type": "application/json", "Set-Cookie": "wrapp_session=abc; Path=/", "Access-Control-Allow-Origin": "*",
                "Strict-Transport-Security": "max-age=63072000", "Cache-Control": "public, max-age=600", "ETag": "\"v1\"",
                "X-RateLimit-Remaining": "41",
            ], body: Data(#"{"ok":true}"#.utf8))
        default:
            return .notFound
        }
    }

    /// The customer rotates (revokes) their API key at Wrapp: `/login` refuses the old one and its JWTs stop working.
    @discardableResult
    public func revokeKey(_ partnerUserID: String) -> User? {
        guard users[partnerUserID] != nil else { return nil }
        users[partnerUserID]?.apiKey = "sandbox-api-key-\(Self.randomHex(16))"
        return users[partnerUserID]
    }

    /// The headers (lower-cased names) and query of the last Invoice API request: what a proxy really sent.
    public private(set) var lastInvoiceAPIRequest: (headers: [String: String], query: [String: String])?

    /// Every JWT issued so far stops working (as if they expired), the keys still do.
    public func expireJWTs() { jwts.removeAll() }

    /// How long JWTs issued from now on last (tests of renewal).
    public func setJWTLifetime(seconds: TimeInterval) { jwtLifetime = max(1, seconds) }

    /// `/login` calls so far (each makes a JWT when it succeeds).
    public var loginCalls: Int { calls["/login"] ?? 0 }

    private func loginPage(token: String) -> SimulatedResponse {
        guard let partnerUserID = loginTokens[token], let user = users[partnerUserID] else {
            return .html(404, "<html><body><p>This login link is not valid.</p></body></html>")
        }
        return .html(200, """
            <!doctype html><html><head><title>Wrapp sandbox</title></head><body>
            <h1>Wrapp (sandbox)</h1>
            <p>Signing in \(Self.escape(user.email)). In the real Wrapp the customer now logs in, accepts the contract and pays.</p>
            <form method="post" action="\(Self.escape(publicBaseURL()))/login/\(token)/complete">
            <button type="submit">Log in, accept and subscribe</button></form></body></html>
            """)
    }

    private func completePage(token: String) async -> SimulatedResponse {
        guard let partnerUserID = loginTokens[token], users[partnerUserID] != nil else {
            return .html(404, "<html><body><p>This login link is not valid.</p></body></html>")
        }
        let status = await completeOnboarding(partnerUserID)
        guard let user = users[partnerUserID] else { return .notFound }
        let detail = user.existedBefore
            ? "You already had a Wrapp account, so Wrapp sends no webhook. Your Wrapp user id is \(Self.escape(user.wrappUserID)) and your API key is \(Self.escape(user.apiKey)): give them to the partner app."
            : "Wrapp sent the user-created webhook (answer: \(status.map(String.init) ?? "no answer"))."
        return .html(200, "<!doctype html><html><body><h1>Done</h1><p>Subscription active. \(detail)</p></body></html>")
    }

    private func control(_ request: SimulatedRequest, parts: [String]) -> SimulatedResponse {
        switch (request.method, parts.first ?? "") {
        case ("POST", "faults"):
            return faults.add(from: request)
        case ("POST", "chaos"):
            return chaos.configure(from: request)
        case ("GET", "chaos"):
            return .json(200, chaos.summary)
        case ("GET", "calls"):
            return .json(200, [
                "calls": calls, "faults_injected": faultsInjected, "max_concurrent_per_user": inFlight.maximum,
                "overlapping_calls": inFlight.overlaps, "chaos": chaos.summary,
            ] as [String: Any])
        case ("GET", "users") where parts.count == 2:
            guard let user = users[parts[1]] else { return .json(404, ["error": "no such partner_user_id"]) }
            return .json(200, [
                "partner_user_id": user.partnerUserID, "wrapp_user_id": user.wrappUserID, "api_key": user.apiKey, "email": user.email,
                "logged_in": user.loggedIn, "existed_before": user.existedBefore, "subscription_active": user.subscriptionActive,
            ] as [String: Any])
        case ("POST", "unknown-user"):
            guard let raw = request.jsonObject()?["style"] as? String, let style = UnknownUserStyle(rawValue: raw) else {
                return .json(400, ["error": "style is one of null_user, not_found, error_body"])
            }
            unknownUserStyle = style
            return .json(200, ["ok": true])
        case ("POST", "subscription"):
            guard let json = request.jsonObject(), let id = json["partner_user_id"] as? String, let active = json["active"] as? Bool,
                users[id] != nil
            else { return .json(400, ["error": "partner_user_id of a known user and active are required"]) }
            setSubscription(id, active: active)
            return .json(200, ["ok": true])
        case ("POST", "reset"):
            clearFaults()
            unknownUserStyle = .nullUser
            return .json(200, ["ok": true])
        default:
            return .notFound
        }
    }

    /// Lower-case hex of `bytes` random bytes (by hand: `String(format:)` per byte was 3 % of a sandbox create's CPU).
    static func randomHex(_ bytes: Int) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes * 2)
        for _ in 0..<bytes {
            let byte = UInt8.random(in: .min ... .max)
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func escape(_ text: String) -> String { HTMLText.escape(text) }
}
