import Foundation

/// Reads settings from the environment, where every `NAME` may instead be given as `NAME_FILE`, the path of a file
/// holding the value (Docker and Kubernetes secrets). Collects problems instead of stopping at the first.
public struct EnvironmentReader {
    public let environment: [String: String]
    public private(set) var problems: [String] = []

    public init(_ environment: [String: String]) {
        self.environment = environment
    }

    public mutating func string(_ name: String) -> String? {
        let direct = environment[name].flatMap { $0.isEmpty ? nil : $0 }
        let fileVariable = name + "_FILE"
        guard let path = environment[fileVariable], !path.isEmpty else { return direct }
        if direct != nil {
            problems.append("\(name) and \(fileVariable) are both set; use one")
            return nil
        }
        do {
            let value = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            if value.isEmpty { problems.append("\(fileVariable): \(path) is empty") }
            return value.isEmpty ? nil : value
        } catch {
            problems.append("\(fileVariable): cannot read \(path)")
            return nil
        }
    }

    public mutating func string(_ name: String, default value: String) -> String {
        string(name) ?? value
    }

    public mutating func number(_ name: String, default value: Double, range: ClosedRange<Double>) -> Double {
        guard let text = string(name) else { return value }
        guard let number = Double(text), range.contains(number) else {
            problems.append("\(name) must be a number from \(Self.plain(range.lowerBound)) to \(Self.plain(range.upperBound)), got \"\(text)\"")
            return value
        }
        return number
    }

    /// A count (days, items): a whole number in `range`.
    public mutating func wholeNumber(_ name: String, default value: Int, range: ClosedRange<Int>) -> Int {
        guard let text = string(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            problems.append("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            return value
        }
        return number
    }

    /// True when `name` or `name_FILE` is given (even with a value that is refused), so one problem is not
    /// reported twice.
    public func isSet(_ name: String) -> Bool {
        [name, name + "_FILE"].contains { environment[$0]?.isEmpty == false }
    }

    public mutating func url(_ name: String, default value: String? = nil) -> String? {
        guard let text = string(name) ?? value else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            problems.append("\(name) must be an http(s) URL, got \"\(text)\"")
            return nil
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// 65535 rather than "65,535": messages name values as they are typed.
    public static func plain(_ number: Double) -> String {
        number == number.rounded() ? String(Int(number)) : String(number)
    }

    public mutating func problem(_ text: String) {
        problems.append(text)
    }
}
