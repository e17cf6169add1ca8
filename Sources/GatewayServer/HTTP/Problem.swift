import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird

/// An RFC 9457 problem: every 4xx and 5xx the gateway answers, as `application/problem+json`.
public struct Problem: Error, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var title: String
    public var detail: String
    public var errors: [FieldError]
    public var headers: HTTPFields

    /// The most field errors one problem lists: a body with 100,000 bad keys must not make a 9 MB answer (which the
    /// Idempotency-Key layer would then keep).
    public static let maxListedErrors = 50

    public init(_ status: HTTPResponse.Status, code: String, detail: String, errors: [FieldError] = [], headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.title = status.reasonPhrase
        self.headers = headers
        if errors.count > Self.maxListedErrors {
            self.errors = Array(errors.prefix(Self.maxListedErrors))
            self.detail = detail + " The first \(Self.maxListedErrors) are listed; \(errors.count - Self.maxListedErrors) more were not."
        } else {
            self.errors = errors
            self.detail = detail
        }
    }


    static func validation(_ errors: [FieldError]) -> Problem {
        Problem(.unprocessableContent, code: "validation_failed", detail: "The request has \(errors.count) invalid field(s).", errors: errors)
    }

    static func validation(field: String, code: String, message: String) -> Problem {
        validation([FieldError(field: field, code: code, message: message)])
    }

    static let unauthorized = Problem(
        .unauthorized, code: "unauthorized", detail: "Send a valid key as Authorization: Bearer <key>.",
        headers: [.wwwAuthenticate: "Bearer"]
    )

    func response(requestID: String) -> Response {
        struct Body: Encodable {
            var type: String
            var title: String
            var status: Int
            var detail: String
            var code: String
            var errors: [FieldError]
            var request_id: String
        }
        let body = Body(
            type: "https://docs.onboarding-gateway.invalid/errors/\(code)", title: title, status: status.code,
            detail: detail, code: code, errors: errors, request_id: requestID
        )
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        let data = (try? JSONEncoder.gateway.encode(body)) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension Problem {
    /// The one mapping from the domain's errors to HTTP.
    init(_ error: OnboardingError) {
        let status: HTTPResponse.Status = switch error {
        case .validationFailed: .unprocessableContent
        case .tenantNotFound, .credentialsNotAvailable, .webhookTokenUnknown: .notFound
        case .tenantExists, .invalidState, .onboardingLinkNotSupported, .tenantBusy, .tenantChanged, .profileFrozen, .providerUserUnknown,
             .companyAlreadyOnboarded, .accessTokensNotSupported, .proxyNotSupported, .credentialsRevoked, .credentialsRefused: .conflict
        case .providerNotConfigured, .credentialsRejected, .webhookRejected: .unprocessableContent
        case .providerUnavailable: .serviceUnavailable
        case .webhookMalformed: .badRequest
        case .storageFailure: .serviceUnavailable
        case .internalFailure, .unknownProvider: .internalServerError
        }
        var errors: [FieldError] = []
        if case .validationFailed(let fieldErrors) = error { errors = fieldErrors }
        if case .profileFrozen(let fields) = error {
            errors = fields.map { FieldError(field: $0, code: "frozen", message: "The provider already holds this value.") }
        }
        if case .providerNotConfigured = error {
            errors = [FieldError(field: "provider", code: "not_configured", message: error.detail)]
        }
        // A busy tenant is free again within a provider call's time: say when to come back.
        // A database outage is answered at once, never waited out: a balancer retries elsewhere or later.
        let headers: HTTPFields = switch error {
        case .tenantBusy: [.retryAfter: "1"]
        case .storageFailure: [.retryAfter: "5"]
        case .providerUnavailable: [.retryAfter: "5"]
        default: [:]
        }
        self.init(status, code: error.code, detail: error.detail, errors: errors, headers: headers)
    }
}
