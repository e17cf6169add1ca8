import Foundation
import HTTPTypes
import Hummingbird

/// Which methods each route accepts, read off the router once every route is added, so that a known path asked
/// with another method answers `405` with `Allow` instead of `404`.
final class AllowedMethods: @unchecked Sendable {
    private let lock = NSLock()
    private var routes: [(template: [Substring], methods: Set<String>)] = []

    func load(_ descriptions: [Router<GatewayRequestContext>.RouteDescription]) {
        var table: [String: Set<String>] = [:]
        for route in descriptions {
            table[route.path.description, default: []].insert(route.method.rawValue)
        }
        let loaded = table.map { (template: $0.key.split(separator: "/"), methods: $0.value) }
        lock.withLock { routes = loaded }
    }

    /// The methods of the most specific routes matching `path` (most literal segments, as the router picks);
    /// empty when no route does.
    func methods(for path: String) -> Set<String> {
        let segments = path.split(separator: "/")
        let matching = lock.withLock { routes.filter { Self.matches($0.template, segments) } }
        let literals = { (template: [Substring]) in template.filter { !$0.hasPrefix("{") && !$0.hasPrefix(":") && !$0.hasPrefix("*") }.count }
        guard let best = matching.map({ literals($0.template) }).max() else { return [] }
        return matching.filter { literals($0.template) == best }.reduce(into: Set<String>()) { $0.formUnion($1.methods) }
    }

    private static func matches(_ template: [Substring], _ segments: [Substring]) -> Bool {
        if template.last == "**" { return segments.count >= template.count - 1 && zip(template.dropLast(), segments).allSatisfy(segmentMatches) }
        return template.count == segments.count && zip(template, segments).allSatisfy(segmentMatches)
    }

    private static func segmentMatches(_ pair: (Substring, Substring)) -> Bool {
        pair.0.hasPrefix("{") || pair.0.hasPrefix(":") || pair.0 == "*" || pair.0 == pair.1
    }
}
