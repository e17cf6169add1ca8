import Foundation
import GatewayCore
import Hummingbird

/// `{"data": [...], "next_cursor": ...}`, the shape of every list.
struct ListResource<Item: Encodable>: Encodable {
    var data: [Item]
    var next_cursor: String?

    /// `next_cursor` is null on the last page, never missing.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ListKeys.self)
        try container.encode(data, forKey: .data)
        try container.encode(next_cursor, forKey: .next_cursor)
    }
}

private enum ListKeys: String, CodingKey {
    case data, next_cursor
}

/// An event as `/v1/events`, `/v1/tenants/{id}/events` and outbound deliveries show it. Never holds credentials:
/// the tenant snapshot only says whether credentials are available.
struct EventResource: Encodable {
    struct Payload: Encodable {
        var tenant: Tenant
        var previous_state: TenantState?
        var source: ChangeSource

        /// `previous_state` is written as null rather than left out, like every optional field of the API.
        func encode(to encoder: any Encoder) throws {
            enum Keys: String, CodingKey { case tenant, previous_state, source }
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(tenant, forKey: .tenant)
            try container.encode(previous_state, forKey: .previous_state)
            try container.encode(source, forKey: .source)
        }
    }

    var id: String
    var type: TenantEvent.Kind
    var created_at: Date
    var data: Payload

    init(_ event: TenantEvent) {
        id = event.id
        type = event.type
        created_at = event.createdAt
        data = Payload(tenant: event.tenant, previous_state: event.previousState, source: event.source)
    }
}

/// Opaque list cursors: base64url of a prefix and a position, so clients cannot mistake them for ids.
enum Cursor {
    static func encode(_ kind: String, _ position: String) -> String {
        Data("\(kind):\(position)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ kind: String, _ cursor: String) throws -> String {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8), text.hasPrefix(kind + ":") else {
            throw Problem.validation(field: "cursor", code: "invalid", message: "Use the next_cursor of a previous page, unchanged.")
        }
        return String(text.dropFirst(kind.count + 1))
    }
}

extension Response {
    /// A JSON response encoded the gateway's way (ISO 8601 dates).
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder.gateway.encode(value))))
    }
}

extension Request {
    /// A query parameter given at most once. For text parameters an empty value counts as absent
    /// (`?cursor=` is the first page); `emptyIsAbsent: false` keeps it, to be refused as a number or enum.
    func query(_ name: String, emptyIsAbsent: Bool = true) throws -> String? {
        let values = uri.queryParameters.getAll(name)
        guard values.count <= 1 else {
            throw Problem.validation(field: name, code: "repeated", message: "\(name) may be given once.")
        }
        guard let value = values.first else { return nil }
        return value.isEmpty && emptyIsAbsent ? nil : value
    }

    /// `limit` as lists take it: 1 to 100, 20 when absent.
    func pageLimit() throws -> Int {
        guard let text = try query("limit", emptyIsAbsent: false) else { return 20 }
        guard let limit = Int(text), (1...100).contains(limit) else {
            throw Problem.validation(field: "limit", code: "out_of_range", message: "limit is a whole number from 1 to 100.")
        }
        return limit
    }

    /// A query parameter that must be one of an enum's raw values.
    func enumParameter<T: RawRepresentable & CaseIterable>(_ name: String, _ type: T.Type) throws -> T? where T.RawValue == String {
        guard let text = try query(name, emptyIsAbsent: false) else { return nil }
        guard let value = T(rawValue: text) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw Problem.validation(field: name, code: "invalid", message: "\(name) is one of: \(allowed).")
        }
        return value
    }
}
