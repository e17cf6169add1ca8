import Foundation
import GatewayCore

/// A fragment of HTML. Interpolating a `String` (or anything else) escapes it; only another `HTML` goes in as it is,
/// so text from a tenant, a provider or a request can never become markup.
struct HTML: ExpressibleByStringInterpolation, Sendable, Equatable {
    private(set) var text: String

    init(raw text: String) { self.text = text }
    init(stringLiteral value: String) { text = value }
    init(stringInterpolation: Interpolation) { text = stringInterpolation.text }

    struct Interpolation: StringInterpolationProtocol {
        var text = ""
        init(literalCapacity: Int, interpolationCount: Int) { text.reserveCapacity(literalCapacity * 2) }
        mutating func appendLiteral(_ literal: String) { text += literal }
        mutating func appendInterpolation(_ html: HTML) { text += html.text }
        mutating func appendInterpolation(_ parts: [HTML]) { for part in parts { text += part.text } }
        mutating func appendInterpolation(_ value: String) { text += HTML.escape(value) }
        mutating func appendInterpolation(_ value: String?) { text += HTML.escape(value ?? "") }
        mutating func appendInterpolation<T: CustomStringConvertible>(_ value: T) { text += HTML.escape(value.description) }
    }

    static func escape(_ text: String) -> String { HTMLText.escape(text) }

    static func join(_ parts: [HTML]) -> HTML { HTML(raw: parts.map(\.text).joined()) }

    /// `<a href>` with a path built from escaped parts and query items.
    static func url(_ path: String, _ query: [(String, String?)] = []) -> String {
        var components = URLComponents()
        components.path = path
        let items = query.compactMap { name, value in value.flatMap { $0.isEmpty ? nil : URLQueryItem(name: name, value: $0) } }
        components.queryItems = items.isEmpty ? nil : items
        return components.string ?? path
    }
}

/// Dates as operators read them: UTC, to the second.
enum ConsoleTime {
    static func format(_ date: Date?) -> String {
        guard let date else { return "—" }
        return date.formatted(Date.ISO8601FormatStyle().year().month().day().dateTimeSeparator(.space).time(includingFractionalSeconds: false)) + " UTC"
    }

    static func ago(_ date: Date, now: Date) -> String {
        let seconds = Bounds.wholeSeconds(now.timeIntervalSince(date))
        switch abs(seconds) {
        case ..<60: return seconds >= 0 ? "\(seconds) s ago" : "in \(-seconds) s"
        case ..<3600: return seconds >= 0 ? "\(seconds / 60) min ago" : "in \(-seconds / 60) min"
        case ..<86_400: return seconds >= 0 ? "\(seconds / 3600) h ago" : "in \(-seconds / 3600) h"
        default: return seconds >= 0 ? "\(seconds / 86_400) d ago" : "in \(-seconds / 86_400) d"
        }
    }
}
