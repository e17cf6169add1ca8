import Foundation
import GatewayTesting
import Logging
import Testing

@testable import GatewayServer

/// A log line is written by hand (issue 23): it must be the JSON object Foundation's serializer wrote, for any
/// metadata, and its time the same ISO 8601 text to the millisecond.
@Suite struct LogLineTests {
    static func value(_ random: inout SeededGenerator, depth: Int) -> Logger.MetadataValue {
        switch Int.random(in: 0..<(depth > 1 ? 2 : 4), using: &random) {
        case 0: .string(GeneratedTenants.text(&random))
        case 1: .stringConvertible(Int.random(in: -1_000...1_000, using: &random))
        case 2: .array((0..<Int.random(in: 0...3, using: &random)).map { _ in value(&random, depth: depth + 1) })
        default:
            .dictionary(Dictionary((0..<Int.random(in: 0...3, using: &random)).map { _ in (GeneratedTenants.text(&random), value(&random, depth: depth + 1)) },
                                   uniquingKeysWith: { first, _ in first }))
        }
    }

    static func plain(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(plain)
        case .dictionary(let fields): fields.mapValues(plain)
        }
    }

    @Test func aLineIsTheObjectFoundationWroteForGeneratedMetadata() throws {
        var random = SeededGenerator(seed: 23)
        for round in 0..<500 {
            var metadata: Logger.Metadata = [:]
            for _ in 0..<Int.random(in: 0...6, using: &random) { metadata[GeneratedTenants.text(&random)] = Self.value(&random, depth: 0) }
            if round % 10 == 0 { metadata["message"] = .string("replaced") }
            let time = Date(timeIntervalSince1970: Double.random(in: -2_208_988_800...4_102_444_800, using: &random))
            let message = GeneratedTenants.text(&random)
            let line = JSONLogHandler.line(time: time, level: .info, label: "gateway", message: message, metadata: metadata)
            #expect(!line.contains("\n"), "one line")
            let decoded = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? NSDictionary, "round \(round): \(line)")
            var expected: [String: Any] = [
                "time": time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)), "level": "info", "label": "gateway",
                "message": message,
            ]
            for (key, value) in metadata { expected[key] = Self.plain(value) }
            #expect(decoded == expected as NSDictionary, "round \(round): \(line)")
        }
    }

    /// The access line's duration: what `String(format: "%.1f")` wrote, over generated durations (away from the
    /// halfway points, where the two may round differently and either is right).
    @Test func durationsAreWrittenAsFormatWroteThem() {
        var random = SeededGenerator(seed: 7)
        for round in 0..<5_000 {
            let value = round < 20 ? Double(round) / 10 : Double.random(in: 0..<(round.isMultiple(of: 2) ? 50 : 600_000), using: &random)
            let tenths = value * 10
            guard abs(tenths - tenths.rounded(.down) - 0.5) > 1e-6 else { continue }
            #expect(RequestScopeMiddleware.oneDecimal(value) == String(format: "%.1f", value), "round \(round): \(value)")
        }
        #expect(RequestScopeMiddleware.oneDecimal(.infinity) == String(format: "%.1f", Double.infinity))
    }
}
