import Foundation
import GatewayCore
import Logging

/// One JSON object per line on stdout: time, level, label, message and metadata. For `LOG_FORMAT=json`.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    let write: @Sendable (String) -> Void

    /// Lines go to `output` (stdout unless told otherwise), each written through at once, never via `print`.
    public init(label: String, level: Logger.Level, output: LineWriter = .standardOutput) {
        self.init(label: label, level: level, write: { output.write(line: $0) })
    }

    /// Lines go to `write`, one call per line without its newline (tests collect them).
    public init(label: String, level: Logger.Level, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.logLevel = level
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "time": Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            "level": event.level.rawValue, "label": label, "message": "\(event.message)",
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = Self.plain(value)
        }
        // Service-level lines have no request in their logger: the task they run in knows it, and its span.
        for (key, value) in RequestScope.logMetadata where object[key] == nil { object[key] = Self.plain(value) }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
            write(String(decoding: data, as: UTF8.self))
        }
    }

    static func plain(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(plain)
        case .dictionary(let dict): dict.mapValues(plain)
        }
    }
}
