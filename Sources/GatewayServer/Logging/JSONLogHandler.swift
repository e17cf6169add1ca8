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
        self.queue = nil
    }

    /// Lines are captured on the caller's path and formatted and written by `queue`'s thread (what `gateway serve`
    /// runs): a request never waits for its access line to be written.
    public init(label: String, level: Logger.Level, queue: LogQueue) {
        self.label = label
        self.logLevel = level
        self.write = { _ in }
        self.queue = queue
    }

    let queue: LogQueue?

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Captured here, where the event happened: its time, and the request (and span) of the task logging it.
        let time = Date()
        var values = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
        for (key, value) in RequestScope.logMetadata where values[key] == nil { values[key] = value }
        let (level, label, message) = (event.level, label, "\(event.message)")
        if let queue {
            queue.enqueue { [values] in Self.line(time: time, level: level, label: label, message: message, metadata: values) }
        } else {
            write(Self.line(time: time, level: level, label: label, message: message, metadata: values))
        }
    }

    /// One line of JSON, keys sorted.
    static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var object: [String: Any] = [
            "time": time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            "level": level.rawValue, "label": label, "message": message,
        ]
        for (key, value) in metadata { object[key] = plain(value) }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return #"{"level":"error","message":"a log line could not be written as JSON"}"#
        }
        return String(decoding: data, as: UTF8.self)
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
