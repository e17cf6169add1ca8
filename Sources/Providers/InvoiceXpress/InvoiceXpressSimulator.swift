import Foundation
import GatewayCore

/// InvoiceXpress's partner API as `providers.md` describes it, in-process: every account is served under its own
/// name (`/sandbox/invoicexpress/{account}/…`, the sandbox's shape of `{account}.app.invoicexpress.com`), keys travel
/// as `?api_key=`, and errors come as v2 JSON or, switched by a test helper, v1 XML.
///
/// Magic values: an organization name starting with `fail500` gets a 500, an email ending in `.invalid` is refused as
/// "Email is invalid". Faults go on the operations `accounts/create` and `clients`.
public actor InvoiceXpressSimulator: ProviderSimulator {
    public struct Account: Sendable, Equatable {
        public var id: Int
        public var name: String
        public var email: String
        public var fiscalID: String?
        public var apiKey: String
        /// Made through the partner's `create.json` (false: a user who had InvoiceXpress before).
        public var createdByPartner: Bool
    }

    public enum ErrorFormat: String, Sendable {
        case json
        case xml
    }

    let partnerAccount: String
    let partnerKey: String
    let publicBaseURL: @Sendable () -> String
    private var accounts: [String: Account] = [:]
    private var nextID = 1000
    private var faults = FaultScript()
    private var answerDelay: Duration = .zero
    private(set) var errorFormat = ErrorFormat.json
    public private(set) var calls: [String: Int] = [:]
    /// `create.json` calls that reached the operation, by fiscal id (or email when there is none).
    public private(set) var createCalls: [String: Int] = [:]
    /// Every password a create was given, so tests can look for them where they must never be.
    public private(set) var passwordsSeen: [String] = []

    public init(partnerAccount: String, partnerKey: String, publicBaseURL: @escaping @Sendable () -> String) {
        self.partnerAccount = partnerAccount
        self.partnerKey = partnerKey
        self.publicBaseURL = publicBaseURL
    }

    public func add(_ fault: SimulatedFault) { faults.add(fault) }
    public func clearFaults() { faults.clear() }
    public var pendingFaults: Int { faults.pending }
    public func setAnswerDelay(milliseconds: Int) { answerDelay = .milliseconds(max(0, milliseconds)) }
    public func setChaos(rate: Double, seed: UInt64, lateDelayMilliseconds: Int, callerTimeoutMilliseconds: Int?) {}
    public func setErrorFormat(_ format: ErrorFormat) { errorFormat = format }
    public func account(named name: String) -> Account? { accounts[name] }
    public func account(fiscalID: String) -> Account? { accounts.values.first { $0.fiscalID == fiscalID } }

    /// Accounts the partner made for this fiscal id (or email).
    public func accountsMade(for key: String) -> Int {
        accounts.values.filter { $0.createdByPartner && ($0.fiscalID == key || $0.email == key) }.count
    }

    public func handle(_ request: SimulatedRequest) async -> SimulatedResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        guard let account = parts.first else { return .json(404, ["errors": ["error": "Not found"]]) }
        let rest = parts.dropFirst().joined(separator: "/")
        let operation = rest.hasPrefix("api/accounts/create") ? "accounts/create" : rest == "clients.json" ? "clients" : rest
        calls["/" + rest, default: 0] += 1
        if answerDelay > .zero { try? await Task.sleep(for: answerDelay) }
        if let fault = faults.take(operation) {
            if let delay = fault.delayMilliseconds { try? await Task.sleep(for: .milliseconds(delay)) }
            if fault.style != .lateSuccess { return fault.response() }
        }
        switch (request.method, rest) {
        case ("POST", "api/accounts/create.json"), ("POST", "api/accounts/create_already_user.json"):
            guard account == partnerAccount, request.query["api_key"] == partnerKey else { return error(401, "Invalid API key") }
            return create(request)
        case ("GET", "clients.json"):
            guard let owner = accounts[account] else { return error(404, "Account not found") }
            guard request.query["api_key"] == owner.apiKey else { return error(401, "Access denied") }
            return .json(200, ["clients": [], "pagination": ["total_entries": 0, "current_page": 1, "per_page": 1, "total_pages": 0]])
        default:
            return error(404, "Not found")
        }
    }

    private func create(_ request: SimulatedRequest) -> SimulatedResponse {
        guard let body = try? JSONSerialization.jsonObject(with: request.body) as? [String: Any], let fields = body["account"] as? [String: Any] else {
            return error(400, "Invalid body")
        }
        let text = { (name: String) in (fields[name] as? String) ?? "" }
        let fiscalID = text("fiscal_id").isEmpty ? nil : text("fiscal_id")
        createCalls[fiscalID ?? text("email"), default: 0] += 1
        if !text("password").isEmpty { passwordsSeen.append(text("password")) }
        if text("organization_name").hasPrefix("fail500") { return error(500, "Internal Server Error") }
        guard text("terms") == "1" else { return error(422, "Terms and Conditions must be accepted") }
        guard text("email").contains("@"), !text("email").hasSuffix(".invalid") else { return error(422, "Email is invalid") }
        guard text("password").count >= 8 else { return error(422, "Password is too short") }
        guard !text("organization_name").isEmpty else { return error(422, "Organization name can't be blank") }
        if let fiscalID, account(fiscalID: fiscalID) != nil { return error(422, "Vat Number is already used in another account") }
        let made = open(organization: text("organization_name"), email: text("email"), fiscalID: fiscalID, byPartner: true)
        return .json(201, ["account": [
            "id": made.id, "name": made.name, "url": "\(publicBaseURL())/\(made.name)", "api_key": made.apiKey, "state": "active",
        ]])
    }

    /// Opens an account: a name from the organization's (lowercase, dashes) and a number, and a fresh key.
    @discardableResult
    func open(organization: String, email: String, fiscalID: String?, byPartner: Bool) -> Account {
        nextID += 1
        let slug = String(organization.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" }.prefix(40))
            .split(separator: "-").joined(separator: "-")
        let account = Account(
            id: nextID, name: "\(slug.isEmpty ? "account" : slug)-\(nextID)", email: email, fiscalID: fiscalID,
            apiKey: "ix-" + UUID().uuidString.lowercased(), createdByPartner: byPartner
        )
        accounts[account.name] = account
        return account
    }

    func rotateKey(_ name: String) -> Account? {
        accounts[name]?.apiKey = "ix-" + UUID().uuidString.lowercased()
        return accounts[name]
    }

    private func error(_ status: Int, _ message: String) -> SimulatedResponse {
        switch errorFormat {
        case .json:
            return .json(status, ["errors": ["error": message]])
        case .xml:
            let escaped = message.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            return SimulatedResponse(
                status: status, headers: ["Content-Type": "application/xml; charset=utf-8"],
                body: Data("<?xml version=\"1.0\" encoding=\"UTF-8\"?><errors><error>\(escaped)</error></errors>".utf8)
            )
        }
    }
}
