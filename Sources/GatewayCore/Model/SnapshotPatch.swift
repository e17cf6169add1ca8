import Foundation

/// Compact event snapshots. Every event carries the tenant as it was, and most of a tenant does not change between
/// its events: an event after a tenant's first stores only the top-level fields that differ from that first event's
/// snapshot (its base), and reading it puts the two together again. The base is always a full snapshot, so reading
/// any event takes at most two rows, never a chain.
///
/// Both work on the bytes of one JSON object, as the stores keep them (the gateway's own compact JSON, or
/// PostgreSQL's `jsonb` text after an erasure, which adds spaces and orders keys its own way): members are found by
/// scanning strings and nesting, never by parsing values, and a value is compared by its bytes. A value written
/// differently but meaning the same only makes the patch larger, never wrong.
public enum SnapshotPatch {
    /// The members of `full` whose key is missing from `base` or whose value differs, as a JSON object; nil when
    /// either is not a JSON object, when `full` lacks a key `base` has (a patch cannot remove one), or when the patch
    /// would not be smaller than `full` (then the event keeps it all).
    public static func diff(base: [UInt8], full: [UInt8]) -> [UInt8]? {
        guard let baseMembers = members(of: base), let fullMembers = members(of: full) else { return nil }
        var baseValues: [ArraySlice<UInt8>: ArraySlice<UInt8>] = [:]
        for member in baseMembers { baseValues[member.key] = member.value }
        let fullKeys = Set(fullMembers.map(\.key))
        guard baseValues.keys.allSatisfy(fullKeys.contains) else { return nil }
        var out: [UInt8] = [UInt8(ascii: "{")]
        for member in fullMembers where baseValues[member.key] != member.value {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: member.key)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: member.value)
        }
        out.append(UInt8(ascii: "}"))
        return out.count < full.count ? out : nil
    }

    /// The object `base` with the members of `patch` put over it (replaced where both have a key, added otherwise).
    /// Nil when either is not a JSON object.
    public static func merge(base: [UInt8], patch: [UInt8]) -> [UInt8]? {
        guard let baseMembers = members(of: base), let patchMembers = members(of: patch) else { return nil }
        var patched: [ArraySlice<UInt8>: ArraySlice<UInt8>] = [:]
        for member in patchMembers { patched[member.key] = member.value }
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(base.count + patch.count)
        func append(_ key: ArraySlice<UInt8>, _ value: ArraySlice<UInt8>) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: key)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: value)
        }
        for member in baseMembers { append(member.key, patched.removeValue(forKey: member.key) ?? member.value) }
        for member in patchMembers where patched[member.key] != nil { append(member.key, member.value) }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// An event's snapshot as a store keeps it, made whole: `stored` itself for a full snapshot (`base` nil, the row has
    /// no `base_seq`), else the base's text with the stored fields put over it. Nil when a compact event's base is
    /// missing (`.some(nil)`) or either is not a JSON object.
    public static func eventSnapshot(stored: String, base: String??) -> String? {
        guard let base else { return stored }
        guard let base, let merged = merge(base: Array(base.utf8), patch: Array(stored.utf8)) else { return nil }
        return String(decoding: merged, as: UTF8.self)
    }

    struct Member {
        var key: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
    }

    /// The members of one JSON object, each key with its quotes and each value as its bytes; nil when the bytes are
    /// not one object (a scan, not a validation: the stores only ever hold JSON they wrote).
    static func members(of bytes: [UInt8]) -> [Member]? {
        var index = 0
        func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }
        /// Moves past the string that starts at `index` (its opening quote); false when it does not end.
        func skipString() -> Bool {
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""): index += 1; return true
                default: index += 1
                }
            }
            return false
        }
        /// Moves past the value that starts at `index`; false when it does not end.
        func skipValue() -> Bool {
            guard index < bytes.count else { return false }
            if bytes[index] == UInt8(ascii: "\"") { return skipString() }
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard skipString() else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return true }
                    depth -= 1
                    if depth == 0 { index += 1; return true }
                case UInt8(ascii: ","):
                    if depth == 0 { return true }
                case 0x20, 0x09, 0x0A, 0x0D:
                    if depth == 0 { return true }
                default:
                    break
                }
                index += 1
            }
            return depth == 0
        }
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        var members: [Member] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            skipSpace()
            return index == bytes.count ? members : nil
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            let keyStart = index
            guard skipString() else { return nil }
            let key = bytes[keyStart..<index]
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            skipSpace()
            let valueStart = index
            guard skipValue(), index > valueStart else { return nil }
            members.append(Member(key: key, value: bytes[valueStart..<index]))
            skipSpace()
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            guard bytes[index] == UInt8(ascii: "}") else { return nil }
            index += 1
            skipSpace()
            return index == bytes.count ? members : nil
        }
    }
}
