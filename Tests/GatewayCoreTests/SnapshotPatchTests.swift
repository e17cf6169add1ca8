import Foundation
import GatewayTesting
import Providers
import Testing

@testable import GatewayCore

/// Compact events put a patch over a base snapshot: the result must be the snapshot that was patched, for any two
/// tenants, and for a base in PostgreSQL's `jsonb` text (spaces, its own key order) as an erasure leaves it.
@Suite struct SnapshotPatchTests {
    static func json(_ tenant: Tenant) -> [UInt8] {
        var out: [UInt8] = []
        TenantJSON.write(tenant, link: nil, into: &out)
        return out
    }

    static func object(_ bytes: [UInt8]) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
    }

    @Test func aPatchOverItsBaseGivesTheSnapshotForGeneratedTenants() throws {
        var random = SeededGenerator(seed: 11)
        var patched = 0
        for round in 0..<1_000 {
            let first = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
            var later = GeneratedTenants.tenant(&random, round: round, providers: [.wrapp, .magnifinance])
            // A later snapshot of the same tenant: most rounds keep the customer's fields, as real updates do.
            if round % 4 != 0 {
                later.id = first.id
                later.profile = first.profile
                later.metadata = first.metadata
                later.externalID = first.externalID
                later.createdAt = first.createdAt
            }
            let base = Self.json(first)
            let full = Self.json(later)
            guard let patch = SnapshotPatch.diff(base: base, full: full) else { continue }
            patched += 1
            #expect(patch.count < full.count)
            let merged = try #require(SnapshotPatch.merge(base: base, patch: patch))
            #expect(try Self.object(merged) == (try Self.object(full)), "round \(round)")
            #expect(Self.json(try JSONDecoder.gateway.decode(Tenant.self, from: Data(merged))) == full, "round \(round): decodes to the same tenant")
            // The base as PostgreSQL's jsonb gives it back after an erasure: spaces, keys in another order.
            let spaced = try JSONSerialization.data(withJSONObject: try Self.object(base), options: [.prettyPrinted])
            let fromSpaced = try #require(SnapshotPatch.merge(base: Array(spaced), patch: patch))
            #expect(try Self.object(fromSpaced) == (try Self.object(full)), "round \(round), spaced base")
        }
        #expect(patched > 500, "most later snapshots are kept as patches")
    }

    @Test func whatIsNotOneObjectIsRefused() {
        let object = Array(#"{"a":1}"#.utf8)
        for bad in ["", "[]", "{", #"{"a":1"#, #"{"a":}"#, #"{"a":"x}"#, #"{"a":1} x"#, "null", #"{"a":1,}"#] {
            #expect(SnapshotPatch.merge(base: Array(bad.utf8), patch: object) == nil, "\(bad)")
            #expect(SnapshotPatch.diff(base: Array(bad.utf8), full: object) == nil, "\(bad)")
        }
        #expect(SnapshotPatch.merge(base: Array("{}".utf8), patch: object) == object)
        // A full snapshot is read as stored; a compact one whose base is missing is unreadable, never read alone.
        #expect(SnapshotPatch.eventSnapshot(stored: #"{"a":1}"#, base: nil) == #"{"a":1}"#)
        #expect(SnapshotPatch.eventSnapshot(stored: #"{"a":1}"#, base: .some(nil)) == nil)
        // A patch cannot remove a member: a snapshot without one of its base's keys is kept whole.
        #expect(SnapshotPatch.diff(base: Array(#"{"a":1,"b":"a long value that makes a patch worth it"}"#.utf8),
                                   full: Array(#"{"a":1,"c":2}"#.utf8)) == nil)
        #expect(SnapshotPatch.merge(base: Array(#" { "a" : [1, {"b": "}"}] , "c":"\"," } "#.utf8), patch: Array(#"{"c":2}"#.utf8))
            == Array(#"{"a":[1, {"b": "}"}],"c":2}"#.utf8))
    }
}
