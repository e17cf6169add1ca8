import Foundation

/// MagniFinance's IPPN partner API as `providers.md` describes it, served in-process by `serve --sandbox` and tests.
///
/// New companies are registered and granted at once. Tax ids marked as existing clients (`POST /_control/clients`)
/// stay "access requested" until `POST /_control/approve`. The envelope's variants (Type as int or string,
/// ElementNumber as int or string, "not found" with HTTP 200 or 404), scripted faults and random faults (`chaos`)
/// are chosen under `/_control`; `GET /_control/calls` counts AddPartner calls per company.
public actor MagniFinanceSimulator {
    public struct Partner: Sendable, Equatable {
        public var granted: Bool
        public var tokens: [String]
    }

    public struct Style: Sendable, Equatable {
        public var typeAsString = false
        public var elementNumberAsString = false
        public var notFoundStatus = 200

        public init(typeAsString: Bool = false, elementNumberAsString: Bool = false, notFoundStatus: Int = 200) {
            self.typeAsString = typeAsString
            self.elementNumberAsString = elementNumberAsString
            self.notFoundStatus = notFoundStatus
        }
    }

    let email: String
    let token: String
    let password: String
    private var partners: [String: Partner] = [:]
    private var existingClients: Set<String> = []
    private var faults = FaultScript()
    private var chaos = RandomFaults()
    private var inFlight = InFlightCalls()
    /// Every partner-API call answers this much later: a slow provider (`GATEWAY_SANDBOX_PROVIDER_DELAY_MS`).
    private var answerDelay: Duration = .zero
    private var style = Style()
    /// AddPartner calls that reached the operation (late successes included), by company tax id.
    public private(set) var addPartnerCalls: [String: Int] = [:]
    /// Authenticated calls by operation (`partner`, `partner/accessTokens`, …), whatever their outcome.
    public private(set) var calls: [String: Int] = [:]
    /// Scripted and random faults served so far.
    public private(set) var faultsInjected = 0

    static let maxLengths: [(String, Int)] = [
        ("CompanyTaxId", 20), ("UserName", 75), ("UserEmail", 75), ("UserPhone", 50), ("CompanyLegalName", 50),
        ("CompanyAddress", 200), ("CompanyCity", 50), ("CompanyPostCode", 50), ("CompanyCountry", 2),
    ]

    public init(email: String, token: String, password: String) {
        self.email = email
        self.token = token
        self.password = password
    }

    // MARK: - Test and control API

    public func add(_ fault: SimulatedFault) { faults.add(fault) }
    public func setAnswerDelay(milliseconds: Int) { answerDelay = .milliseconds(max(0, milliseconds)) }

    /// Random faults on `rate` of the calls to `partner` and `partner/accessTokens`, chosen uniformly among a 500
    /// error envelope, a 502 HTML page, a 200 that is not JSON, a 429 with `Retry-After: 1`, a connection reset, and
    /// a late success (carried out, answered after `lateDelayMilliseconds`). `rate` 0 is off.
    /// `callerTimeoutMilliseconds`, when given, is how long the caller waits: a late success stops counting as in
    /// flight for `maxConcurrentCallsPerTaxID` after it.
    public func setChaos(rate: Double, seed: UInt64 = 1, lateDelayMilliseconds: Int = 2500, callerTimeoutMilliseconds: Int? = nil) {
        chaos.configure(rate: rate, seed: seed, lateDelayMilliseconds: lateDelayMilliseconds, callerTimeoutMilliseconds: callerTimeoutMilliseconds)
    }

    /// The most calls ever in flight at once for one company (a late success stays in flight while its answer is
    /// held back).
    public var maxConcurrentCallsPerTaxID: Int { inFlight.maximum }

    /// What the simulated MagniFinance knows of one company.
    public struct Company: Sendable, Equatable {
        public enum Partnership: String, Sendable { case none, requested, granted }
        public var taxID: String
        public var existingClient: Bool
        public var partnership: Partnership
        public var addPartnerCalls: Int
    }

    public func company(_ taxID: String) -> Company {
        let partnership: Company.Partnership = switch partners[taxID]?.granted {
        case nil: .none
        case false?: .requested
        case true?: .granted
        }
        return Company(taxID: taxID, existingClient: existingClients.contains(taxID), partnership: partnership, addPartnerCalls: addPartnerCalls[taxID] ?? 0)
    }

    /// Scripted faults and random faults off.
    public func clearFaults() {
        faults.clear()
        chaos.configure(rate: 0, seed: 1, lateDelayMilliseconds: 2500, callerTimeoutMilliseconds: nil)
    }

    /// Scripted faults not served yet.
    public var pendingFaults: Int { faults.pending }

    public func setStyle(_ style: Style) { self.style = style }
    public func markExistingClient(_ taxID: String) { existingClients.insert(taxID) }
    public func partner(_ taxID: String) -> Partner? { partners[taxID] }

    /// The company withdraws the partnership: its tokens stop working, and it is no longer listed until it approves
    /// again (which grants new tokens).
    @discardableResult
    public func withdraw(_ taxID: String) -> Bool {
        guard partners[taxID]?.granted == true else { return false }
        partners[taxID]?.granted = false
        partners[taxID]?.tokens = []
        return true
    }

    /// The client approves the partnership email.
    @discardableResult
    public func approve(_ taxID: String) -> Bool {
        guard partners[taxID] != nil else { return false }
        partners[taxID]?.granted = true
        if partners[taxID]?.tokens.isEmpty == true { partners[taxID]?.tokens = [Self.newToken()] }
        return true
    }

    // MARK: - HTTP

    public func handle(_ request: SimulatedRequest) async -> SimulatedResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        if parts.first == "_control" { return control(request, parts: Array(parts.dropFirst())) }
        // Document calls for a company carry the IPPN email and the company's access token (not the IPPN token).
        if request.headers["email"] == email, let companyToken = request.headers["token"], companyToken != token, parts.first != "partner" {
            calls[parts.joined(separator: "/"), default: 0] += 1
            guard let (taxID, _) = partners.first(where: { $0.value.granted && $0.value.tokens.contains(companyToken) }) else {
                return envelope(status: 401, error: (1, "AuthenticationError"), message: "Invalid credentials")
            }
            guard parts == ["client"] else { return envelope(status: 404, error: (6, "ElementDoesNotExist"), message: "Not found") }
            return envelope(status: 200, object: ["TaxId": taxID, "CountryCode": "PT", "Name": "Company \(taxID)"])
        }
        guard request.headers["email"] == email, request.headers["token"] == token else {
            return envelope(status: 401, error: (1, "AuthenticationError"), message: "Invalid credentials")
        }
        let operation = parts.joined(separator: "/")
        calls[operation, default: 0] += 1
        // The actor re-enters at every await: a call is in flight from here until it is answered.
        let key = inFlightKey(request, operation: operation)
        inFlight.begin(key)
        if answerDelay > .zero { try? await Task.sleep(for: answerDelay) }
        if let fault = faults.take(operation) {
            faultsInjected += 1
            if let delay = fault.delayMilliseconds { try? await Task.sleep(for: .milliseconds(delay)) }
            inFlight.end(key)
            if fault.style == .lateSuccess { return route(request, operation: operation) }
            let body = errorBody(code: 14, name: "SaveFailed", message: "Simulated failure", validation: [])
            return fault.response(magniFinanceEnvelope: body)
        }
        if Self.partnerOperations.contains(operation), let kind = chaos.draw() {
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
            return chaos.response(
                kind,
                errorBody: errorBody(code: 14, name: "SaveFailed", message: "Internal error (simulated)", validation: []),
                tooManyRequestsBody: errorBody(code: 429, name: "TooManyRequests", message: "Too many requests, try again later (simulated)", validation: [])
            )
        }
        inFlight.end(key)
        return route(request, operation: operation)
    }

    /// The IPPN calls random faults apply to (not the control routes).
    static let partnerOperations: Set<String> = ["partner", "partner/accessTokens"]

    /// The company a call is about, for the in-flight records.
    private func inFlightKey(_ request: SimulatedRequest, operation: String) -> String? {
        switch operation {
        case "partner": return request.jsonObject()?["CompanyTaxId"] as? String
        case "partner/accessTokens": return request.query["partnerTaxId"]
        default: return nil
        }
    }

    private func route(_ request: SimulatedRequest, operation: String) -> SimulatedResponse {
        switch (request.method, operation) {
        case ("POST", "partner"): return addPartner(request)
        case ("GET", "partner/accessTokens"): return accessTokens(request)
        case ("GET", "taxIdValidation"):
            let valid = (request.query["taxId"]?.count ?? 0) == 9
            return valid ? envelope(status: 200, object: nil) : envelope(status: 200, error: (4, "InvalidTaxId"), message: "Invalid tax id")
        default:
            return envelope(status: 404, error: (6, "ElementDoesNotExist"), message: "Not found")
        }
    }

    private func addPartner(_ request: SimulatedRequest) -> SimulatedResponse {
        guard let json = request.jsonObject() else { return envelope(status: 400, error: (2, "ValidationError"), message: "Invalid body") }
        var validation: [[String: Any]] = []
        for (index, (field, max)) in Self.maxLengths.enumerated() {
            if let value = json[field] as? String, value.count > max {
                validation.append([
                    "Type": "MaxLength", "Field": field, "Value": value, "Detail": "\(field) is longer than \(max)",
                    "ElementNumber": style.elementNumberAsString ? String(index) : index as Any,
                ])
            }
        }
        guard validation.isEmpty else {
            return envelope(status: 400, error: (2, "ValidationError"), message: "Validation failed", validation: validation)
        }
        guard let taxID = json["CompanyTaxId"] as? String, !taxID.isEmpty, taxID.allSatisfy(\.isNumber) else {
            return envelope(status: 200, error: (4, "InvalidTaxId"), message: "Invalid tax id", validation: [
                ["Type": "InvalidTaxId", "FieldName": "CompanyTaxId", "ElementNumber": style.elementNumberAsString ? "0" : 0 as Any],
            ])
        }
        addPartnerCalls[taxID, default: 0] += 1
        if partners[taxID] != nil {
            // Not idempotent: a second AddPartner for the same company is refused (inside an HTTP 200).
            return envelope(status: 200, error: (14, "SaveFailed"), message: "Partnership already exists for this company")
        }
        let existing = existingClients.contains(taxID)
        partners[taxID] = Partner(granted: !existing, tokens: existing ? [] : [Self.newToken()])
        return envelope(status: 200, object: nil)
    }

    private func accessTokens(_ request: SimulatedRequest) -> SimulatedResponse {
        guard request.headers["password"] == password else {
            return envelope(status: 401, error: (1, "AuthenticationError"), message: "Invalid password")
        }
        guard let taxID = request.query["partnerTaxId"], let partner = partners[taxID], partner.granted else {
            return envelope(status: style.notFoundStatus, error: (38, "PartnershipNotFound"), message: "Partnership not found")
        }
        let object = partner.tokens.enumerated().map { ["AccessToken": $1, "Description": "Token \($0 + 1)"] }
        return envelope(status: 200, object: object)
    }

    private func control(_ request: SimulatedRequest, parts: [String]) -> SimulatedResponse {
        let json = request.jsonObject() ?? [:]
        switch (request.method, parts.first ?? "") {
        case ("POST", "faults"):
            return faults.add(from: request)
        case ("POST", "clients"):
            guard let taxID = json["tax_id"] as? String else { return .json(400, ["error": "tax_id is required"]) }
            existingClients.insert(taxID)
            return .json(200, ["ok": true])
        case ("POST", "approve"):
            guard let taxID = json["tax_id"] as? String, approve(taxID) else {
                return .json(404, ["error": "no partnership request for this tax_id"])
            }
            return .json(200, ["ok": true])
        case ("POST", "chaos"):
            return chaos.configure(from: request)
        case ("GET", "chaos"):
            return .json(200, chaos.summary)
        case ("GET", "calls"):
            return .json(200, [
                "add_partner": addPartnerCalls, "calls": calls, "faults_injected": faultsInjected,
                "max_concurrent_per_tax_id": inFlight.maximum, "overlapping_calls": inFlight.overlaps, "chaos": chaos.summary,
            ] as [String: Any])
        case ("POST", "style"):
            style = Style(
                typeAsString: (json["type"] as? String) == "string",
                elementNumberAsString: (json["element_number"] as? String) == "string",
                notFoundStatus: (json["not_found_status"] as? Int) ?? 200
            )
            return .json(200, ["ok": true])
        default:
            return .notFound
        }
    }

    // MARK: - Envelope

    private func envelope(status: Int, object: Any?) -> SimulatedResponse {
        .json(status, [
            "RequestId": UUID().uuidString, "Object": object ?? NSNull(), "Type": style.typeAsString ? "Success" : 0 as Any,
            "ErrorValue": NSNull(), "ErrorHumanReadable": NSNull(), "ValidationErrors": [], "IsSuccess": true, "IsError": false,
        ])
    }

    private func envelope(status: Int, error: (Int, String), message: String, validation: [[String: Any]] = []) -> SimulatedResponse {
        .json(status, errorBody(code: error.0, name: error.1, message: message, validation: validation))
    }

    private func errorBody(code: Int, name: String, message: String, validation: [[String: Any]]) -> [String: Any] {
        [
            "RequestId": UUID().uuidString, "Object": NSNull(), "Type": style.typeAsString ? "Error" : 1 as Any,
            "ErrorValue": ["Value": code, "Name": name], "ErrorHumanReadable": message, "ValidationErrors": validation,
            "IsSuccess": false, "IsError": true,
        ]
    }

    static func newToken() -> String { "sandbox-token-" + WrappSimulator.randomHex(16) }
}
