import Foundation

/// How the API shows a tenant, rendered when the tenant is written and kept beside it, in the same transaction, so a
/// read is one primary-key lookup and the bytes, and a page their concatenation. The shape belongs to the server, not
/// to the stored record: each stored rendering carries the `version` of the shape that made it, and a rendering of any
/// other version is never served. It is rendered again from the row when read, and the new one is kept.
///
/// A change of the API's shape must change `version`. The onboarding link is not part of the rendering: it is signed
/// at read time (see `TenantJSON.withOnboardingLink`).
public protocol TenantRepresentation: Sendable {
    var version: Int { get }
    func render(_ tenant: Tenant) -> [UInt8]
}

/// A tenant's API rendering as read from the store: its bytes and whether they are of the current shape.
public struct StoredTenant: Sendable, Equatable {
    public var id: String
    public var bytes: [UInt8]

    public init(id: String, bytes: [UInt8]) {
        self.id = id
        self.bytes = bytes
    }
}

extension TenantJSON {
    /// The API's shape of a tenant: `TenantJSON.write` without the onboarding link.
    /// Version 1: the fields of 2026-12 (`provider_details` included).
    public struct Representation: TenantRepresentation {
        public let version = 1
        public init() {}

        public func render(_ tenant: Tenant) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(640)
            TenantJSON.write(tenant, link: nil, into: &out)
            return out
        }
    }

    /// The bytes of a stored rendering with the onboarding link the API adds to a `redirect_to_url` next action
    /// (`link(id)`, called only then), as `write(_:link:into:)` would have written them; appended to `out`.
    ///
    /// The next action is found by its key: `"next_action":{"type":"redirect_to_url"` can only be the tenant's own,
    /// because inside a JSON string every `"` is escaped, and no object before it (`last_error`, `metadata`) can hold
    /// a `next_action` key with an object value. Keys are sorted, so `onboarding_link` comes first in the object.
    public static func appendWithOnboardingLink(_ stored: [UInt8], link: (String) -> String, id: String, into out: inout [UInt8]) {
        guard let at = redirectAction(in: stored) else {
            out.append(contentsOf: stored)
            return
        }
        out.append(contentsOf: stored[..<at])
        out.append(contentsOf: #""onboarding_link":"#.utf8)
        string(link(id), &out)
        out.append(UInt8(ascii: ","))
        out.append(contentsOf: stored[at...])
    }

    static let redirectMarker = Array(#""next_action":{"type":"redirect_to_url""#.utf8)

    /// Where the link goes (just after `"next_action":{`), when the next action is a redirect.
    static func redirectAction(in bytes: [UInt8]) -> Int? {
        let marker = redirectMarker
        guard bytes.count >= marker.count else { return nil }
        return bytes.withUnsafeBufferPointer { buffer -> Int? in
            var index = 0
            let last = buffer.count - marker.count
            while index <= last {
                if buffer[index] == marker[0], buffer[index + 1] == marker[1], buffer[index + 2] == marker[2] {
                    var matched = true
                    for offset in 3..<marker.count where buffer[index + offset] != marker[offset] {
                        matched = false
                        break
                    }
                    if matched { return index + #""next_action":{"#.utf8.count }
                }
                index += 1
            }
            return nil
        }
    }
}
