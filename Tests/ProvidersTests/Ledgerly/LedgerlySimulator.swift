import AsyncHTTPClient
import Foundation
import GatewayCore
import NIOCore
import Providers

/// Ledgerly's partner API, in-process: signups by the partner's reference, a customer who finishes (a test helper),
/// the webhook that brings their token, and the account read that proves a token. Faults come from the shared
/// `FaultScript`, on the operations `signups` (`POST /signups`), `signup` (`GET /signups/…`) and `accounts`.
actor LedgerlySimulator: ProviderSimulator {
    struct Signup: Sendable {
        var id: String
        var reference: String
        var email: String
        var callbackURL: String
        var active = false
        var accountID: String?
        var token: String?
    }

    let partnerKey: String
    let publicBaseURL: @Sendable () -> String
    private var signups: [String: Signup] = [:]
    private var faults = FaultScript()
    private var answerDelay: Duration = .zero
    private(set) var calls: [String: Int] = [:]
    /// `POST /signups` calls that reached the operation, by reference (a second one for a reference is a repeat).
    private(set) var posted: [String: Int] = [:]

    init(partnerKey: String, publicBaseURL: @escaping @Sendable () -> String) {
        self.partnerKey = partnerKey
        self.publicBaseURL = publicBaseURL
    }

    func add(_ fault: SimulatedFault) { faults.add(fault) }
    func clearFaults() { faults.clear() }
    var pendingFaults: Int { faults.pending }
    func setAnswerDelay(milliseconds: Int) { answerDelay = .milliseconds(max(0, milliseconds)) }
    func setChaos(rate: Double, seed: UInt64, lateDelayMilliseconds: Int, callerTimeoutMilliseconds: Int?) {}
    func signup(_ reference: String) -> Signup? { signups[reference] }

    func handle(_ request: SimulatedRequest) async -> SimulatedResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        let operation = parts.first ?? ""
        let name = operation == "signups" && request.method == "GET" ? "signup" : operation
        calls["/" + parts.joined(separator: "/"), default: 0] += 1
        if answerDelay > .zero { try? await Task.sleep(for: answerDelay) }
        if let fault = faults.take(name) {
            if let delay = fault.delayMilliseconds { try? await Task.sleep(for: .milliseconds(delay)) }
            if fault.style == .lateSuccess { return route(request, parts) }
            return fault.response()
        }
        return route(request, parts)
    }

    private func route(_ request: SimulatedRequest, _ parts: [String]) -> SimulatedResponse {
        switch (request.method, parts.count, parts.first) {
        case ("POST", 1, "signups"):
            guard request.headers["x-ledgerly-partner"] == partnerKey else { return .json(401, ["error": "unknown partner"]) }
            guard let body = try? JSONSerialization.jsonObject(with: request.body) as? [String: Any],
                let reference = body["reference"] as? String, let email = body["email"] as? String
            else { return .json(400, ["error": "reference and email are required"]) }
            posted[reference, default: 0] += 1
            if email.hasSuffix(".invalid") { return .json(422, ["errors": [["field": "email", "message": "not deliverable"]]]) }
            if signups[reference] != nil { return .json(409, ["error": "reference_taken"]) }
            let signup = Signup(id: "sg_" + UUID().uuidString.prefix(8).lowercased(), reference: reference, email: email, callbackURL: body["callback_url"] as? String ?? "")
            signups[reference] = signup
            return .json(201, view(signup))
        case ("GET", 2, "signups"):
            guard request.headers["x-ledgerly-partner"] == partnerKey else { return .json(401, ["error": "unknown partner"]) }
            guard let signup = signups[parts[1]] else { return .json(404, ["error": "no such signup"]) }
            return .json(200, view(signup))
        case ("GET", 2, "accounts"):
            guard let signup = signups.values.first(where: { $0.accountID == parts[1] }) else { return .json(404, ["error": "no such account"]) }
            guard request.headers["authorization"] == "Bearer \(signup.token ?? "")" else { return .json(401, ["error": "bad token"]) }
            return .json(200, ["account_id": parts[1], "reference": signup.reference])
        default:
            return .json(404, ["error": "not found"])
        }
    }

    private func view(_ signup: Signup) -> [String: Any] {
        ["signup_id": signup.id, "reference": signup.reference, "status": signup.active ? "active" : "invited", "url": "\(publicBaseURL())/join/\(signup.id)"]
    }

    /// The customer finishes: the account is opened and its token posted to the callback URL. The status it got.
    func complete(_ reference: String, sendsWebhook: Bool = true) async -> (Signup, Int?)? {
        guard var signup = signups[reference] else { return nil }
        if !signup.active {
            signup.active = true
            signup.accountID = "acc_" + UUID().uuidString.prefix(8).lowercased()
            signup.token = "lg-" + UUID().uuidString
            signups[reference] = signup
        }
        guard sendsWebhook else { return (signup, nil) }
        let body = (try? JSONSerialization.data(withJSONObject: ["reference": reference, "account_id": signup.accountID ?? "", "api_token": signup.token ?? ""])) ?? Data()
        var request = HTTPClientRequest(url: signup.callbackURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let status = try? await HTTPClient.shared.execute(request, timeout: .seconds(10)).status.code
        return (signup, status.map { Int($0) })
    }

    nonisolated var sandboxHelpers: [SandboxHelper] {
        [
            SandboxHelper(.post, "customers/{reference}/complete") { request in
                guard let (signup, status) = await self.complete(request["reference"]) else { return .notFound("No signup has this reference.") }
                var answer: [String: JSONValue] = ["reference": .string(signup.reference), "active": .bool(signup.active)]
                answer["webhook_status"] = status.map { .number(Double($0)) } ?? .null
                return .ok(.object(answer))
            },
        ]
    }
}
