import Foundation

/// MagniFinance's IPPN partner API as `providers.md` describes it, served in-process by `serve --sandbox` and tests.
///
/// New companies are registered and granted at once. Tax ids marked as existing clients (`POST /_control/clients`)
/// stay "access requested" until `POST /_control/approve`. The envelope's variants (Type as int or string,
/// ElementNumber as int or string, "not found" with HTTP 200 or 404) and scripted faults are chosen under `/_control`.
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
    private var style = Style()
    public private(set) var addPartnerCalls: [String: Int] = [:]

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
    public func setStyle(_ style: Style) { self.style = style }
    public func markExistingClient(_ taxID: String) { existingClients.insert(taxID) }
    public func partner(_ taxID: String) -> Partner? { partners[taxID] }

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
        guard request.headers["email"] == email, request.headers["token"] == token else {
            return envelope(status: 401, error: (1, "AuthenticationError"), message: "Invalid credentials")
        }
        let operation = parts.joined(separator: "/")
        if let fault = faults.take(operation) {
            if let delay = fault.delayMilliseconds { try? await Task.sleep(for: .milliseconds(delay)) }
            if fault.style == .lateSuccess { return route(request, operation: operation) }
            let body = errorBody(code: 14, name: "SaveFailed", message: "Simulated failure", validation: [])
            return fault.response(magniFinanceEnvelope: body)
        }
        return route(request, operation: operation)
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
            return envelope(status: 200, error: (14, "SaveFailed"), message: "Partnership already requested")
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
