import Foundation

/// Random numbers for jitter and for secret tokens, injected so tests can be deterministic where they need to be.
public protocol Randomness: Sendable {
    /// A value in 0..<1.
    func unit() -> Double
    /// `count` bytes from a cryptographically secure generator.
    func bytes(_ count: Int) -> [UInt8]
}

public struct SystemRandomness: Randomness {
    public init() {}

    public func unit() -> Double { Double.random(in: 0..<1) }

    public func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

extension Randomness {
    /// A URL-safe random token of `bits` bits of entropy (rounded up to whole bytes).
    public func token(bits: Int = 192) -> String {
        Data(bytes((bits + 7) / 8)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
