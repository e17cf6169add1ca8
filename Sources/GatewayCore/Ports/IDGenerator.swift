import Foundation

/// Makes the public ids (`ten_…`, `evt_…`): a prefix and a ULID, so ids sort by creation time.
public protocol IDGenerator: Sendable {
    func make(prefix: String, at date: Date) -> String
}

/// ULIDs: 48 bits of milliseconds then 80 random bits, in Crockford base32.
public struct ULIDGenerator: IDGenerator {
    public init() {}

    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    public func make(prefix: String, at date: Date) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + "_" + Self.ulid(milliseconds: UInt64(max(0, date.timeIntervalSince1970 * 1000)), using: &generator)
    }

    static func ulid(milliseconds: UInt64, using generator: inout some RandomNumberGenerator) -> String {
        var chars = [Character]()
        chars.reserveCapacity(26)
        var time = milliseconds
        var timeChars = [Character](repeating: "0", count: 10)
        for index in stride(from: 9, through: 0, by: -1) {
            timeChars[index] = alphabet[Int(time & 31)]
            time >>= 5
        }
        chars.append(contentsOf: timeChars)
        for _ in 0..<16 {
            chars.append(alphabet[Int(generator.next() & 31)])
        }
        return String(chars)
    }
}
