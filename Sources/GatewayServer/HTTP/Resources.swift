import Foundation
import GatewayCore
import Hummingbird

/// An optional that is written as `null` when absent: the API's fields are never missing, only null.
struct Nullable<Value: Encodable>: Encodable {
    var value: Value?

    init(_ value: Value?) {
        self.value = value
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// `{"data": [...], "next_cursor": ...}`, the shape of every list.
struct ListResource<Item: Encodable>: Encodable {
    var data: [Item]
    var next_cursor: Nullable<String>

    init(data: [Item], next_cursor: String?) {
        self.data = data
        self.next_cursor = Nullable(next_cursor)
    }
}

/// An event as `/v1/events`, `/v1/tenants/{id}/events` and outbound deliveries show it. Never holds credentials:
/// the tenant snapshot only says whether credentials are available.
struct EventResource: Encodable {
    struct Payload: Encodable {
        var tenant: Tenant
        var previous_state: Nullable<TenantState>
        var source: ChangeSource
    }

    var id: String
    var type: TenantEvent.Kind
    var created_at: Date
    var data: Payload

    init(_ event: TenantEvent) {
        id = event.id
        type = event.type
        created_at = event.createdAt
        data = Payload(tenant: event.tenant, previous_state: Nullable(event.previousState), source: event.source)
    }
}

/// Parses an RFC 3339 time strictly: every field in range (Foundation's parser would roll 12:99 over to 13:39).
func strictTimestamp(_ text: String) -> Date? {
    guard let match = text.wholeMatch(of: /(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})/),
        let month = Int(match.2), (1...12).contains(month), let day = Int(match.3), (1...31).contains(day),
        let hour = Int(match.4), hour < 24, let minute = Int(match.5), minute < 60, let second = Int(match.6), second < 60
    else { return nil }
    var components = DateComponents()
    components.year = Int(match.1)
    components.month = month
    components.day = 1
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    guard let first = calendar.date(from: components), calendar.range(of: .day, in: .month, for: first)?.contains(day) == true else { return nil }
    let normalized = text.uppercased()
    if let date = try? Date(normalized, strategy: .iso8601) { return date }
    return try? Date(normalized, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}

/// Base64 with the URL-safe alphabet and no padding, for cursors and links.
enum Base64URL {
    static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

/// Opaque list cursors: base64url of a prefix and a position, so clients cannot mistake them for ids.
enum Cursor {
    static func encode(_ kind: String, _ position: String) -> String {
        Base64URL.encode(Data("\(kind):\(position)".utf8))
    }

    /// `field` names the query parameter the cursor came in (`cursor`, or `after` on the feed).
    static func decode(_ kind: String, _ cursor: String, field: String = "cursor") throws -> String {
        guard let data = Base64URL.decode(cursor), let text = String(data: data, encoding: .utf8), text.hasPrefix(kind + ":") else {
            throw Problem.validation(field: field, code: "invalid", message: "Use the next_cursor of a previous page, unchanged.")
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

    /// A query parameter that must name a registered provider.
    func providerParameter(_ registry: ProviderRegistry) throws -> ProviderKind? {
        guard let text = try query("provider", emptyIsAbsent: false) else { return nil }
        guard let kind = registry.kind(named: text) else {
            throw Problem.validation(field: "provider", code: "invalid", message: "provider is one of: \(registry.namesList).")
        }
        return kind
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
