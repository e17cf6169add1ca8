import Foundation

/// Numbers that come from outside (a provider's header, a stored row, a client) made safe before use: never NaN,
/// never infinite, never past a cap, and never a trapping `Int(...)` conversion.
public enum Bounds {
    /// The most a provider's `Retry-After` may park work by default: one hour.
    public static let defaultRetryAfterCap: TimeInterval = 3600
    /// The latest instant a date from outside may name: 9999-12-31T23:59:59Z. Anything later is read as this.
    public static let latestUnixTime: Double = 253_402_300_799

    /// A duration from outside: nil stays nil, NaN and negatives are 0, and it never exceeds `cap`.
    public static func interval(_ value: TimeInterval?, cap: TimeInterval) -> TimeInterval? {
        guard let value else { return nil }
        guard value.isFinite || value == .infinity, value > 0 else { return 0 }
        return min(value, cap)
    }

    /// The earliest instant a date from outside may name: 0001-01-01T00:00:00Z.
    public static let earliestUnixTime: Double = -62_135_596_800

    /// Whole seconds as an `Int` that cannot trap: NaN is 0, and anything beyond year 1…9999 (as seconds since 1970)
    /// is clamped there, so a date made of it never has a negative year.
    public static func wholeSeconds(_ value: Double) -> Int {
        guard !value.isNaN else { return 0 }
        return Int(min(max(value, earliestUnixTime), latestUnixTime).rounded(.down))
    }

    /// A date from outside (a stored row, a provider) clamped to 0001-01-01…9999-12-31, NaN read as the epoch.
    public static func date(unix value: Double) -> Date {
        guard !value.isNaN else { return Date(timeIntervalSince1970: 0) }
        return Date(timeIntervalSince1970: min(max(value, earliestUnixTime), latestUnixTime))
    }
}
