import Foundation

/// Makes the public ids (`ten_…`, `evt_…`): a prefix and a ULID, so ids sort by creation time.
public protocol IDGenerator: Sendable {
    func make(prefix: String, at date: Date) -> String
}

/// Monotonic ULIDs: 48 bits of milliseconds then 80 random bits, in Crockford base32. Ids made within the same
/// millisecond increment the random part, so "newest first" is exact even for bursts.
public final class ULIDGenerator: IDGenerator, @unchecked Sendable {
    private let lock = NSLock()
    private var lastMilliseconds: UInt64 = 0
    private var lastRandom: (high: UInt16, low: UInt64) = (0, 0)

    public init() {}

    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    public func make(prefix: String, at date: Date) -> String {
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        let (time, random) = lock.withLock { () -> (UInt64, (UInt16, UInt64)) in
            if milliseconds <= lastMilliseconds {
                // Same (or an earlier) millisecond: keep the last time and count up.
                let (low, overflow) = lastRandom.low.addingReportingOverflow(1)
                lastRandom = (overflow ? lastRandom.high &+ 1 : lastRandom.high, low)
            } else {
                var generator = SystemRandomNumberGenerator()
                lastMilliseconds = milliseconds
                // The top bit stays clear so increments have room before overflowing.
                lastRandom = (UInt16.random(in: 0...UInt16.max, using: &generator) & 0x7FFF, generator.next())
            }
            return (lastMilliseconds, lastRandom)
        }
        return prefix + "_" + Self.encode(time: time, high: random.0, low: random.1)
    }

    static func encode(time: UInt64, high: UInt16, low: UInt64) -> String {
        var chars = [Character](repeating: "0", count: 26)
        var value = time
        for index in stride(from: 9, through: 0, by: -1) {
            chars[index] = alphabet[Int(value & 31)]
            value >>= 5
        }
        // 80 random bits: 16 high bits then 64 low bits, as 16 base32 digits.
        var low = low
        var high = UInt64(high)
        for index in stride(from: 25, through: 10, by: -1) {
            chars[index] = alphabet[Int(low & 31)]
            low = (low >> 5) | ((high & 31) << 59)
            high >>= 5
        }
        return String(chars)
    }
}
