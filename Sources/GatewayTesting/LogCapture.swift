import Foundation
import GatewayCore
import Logging

/// Collects every log line (rendered with its metadata) so tests can scan them for secrets.
public final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    private var collected: [Entry] = []

    /// One line as it was logged: level, message and every metadata value as text.
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    public init() {}

    public var text: String { lock.withLock { lines.joined(separator: "\n") } }
    public var entries: [Entry] { lock.withLock { collected } }

    func append(_ line: String, _ entry: Entry) {
        lock.withLock {
            lines.append(line)
            collected.append(entry)
        }
    }

    public func logger(label: String = "gateway-test") -> Logger {
        Logger(label: label) { label in Handler(label: label, capture: self) }
    }

    struct Handler: LogHandler {
        let label: String
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var all = metadata.merging(event.metadata ?? [:]) { $1 }
            // As the gateway's own handlers do: the request the line was written for, and its span.
            all.merge(RequestScope.logMetadata) { mine, _ in mine }
            capture.append(
                "\(event.level) \(event.message) \(all.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " "))",
                Entry(level: event.level, message: "\(event.message)", metadata: all.mapValues { "\($0)" })
            )
        }
    }
}
