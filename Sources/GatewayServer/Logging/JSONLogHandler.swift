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

    /// One line of JSON, keys sorted by their UTF-8 bytes, slashes unescaped; the metadata may replace the four
    /// fixed keys. Written by hand: at the shipped level every request logs a line, and Foundation's serializer sorted
    /// keys with a locale-aware (ICU) compare and formatted the time with a format style, a tenth of a read's cost.
    static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var fields = metadata
        if fields["time"] == nil { fields["time"] = .string(timestamp(time)) }
        if fields["level"] == nil { fields["level"] = .string(level.rawValue) }
        if fields["label"] == nil { fields["label"] = .string(label) }
        if fields["message"] == nil { fields["message"] = .string(message) }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(.dictionary(fields), into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func write(_ value: Logger.MetadataValue, into out: inout [UInt8]) {
        switch value {
        case .string(let text): TenantJSON.string(text, &out)
        case .stringConvertible(let convertible): TenantJSON.string(convertible.description, &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let fields):
            out.append(UInt8(ascii: "{"))
            for (index, key) in fields.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                TenantJSON.string(key, &out)
                out.append(UInt8(ascii: ":"))
                write(fields[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// ISO 8601 in UTC to the millisecond (`2026-12-06T12:00:00.123Z`).
    static func timestamp(_ time: Date) -> String {
        let whole = Bounds.wholeSeconds(time.timeIntervalSince1970)
        let fraction = Int(min(999, max(0, (time.timeIntervalSince1970 - Double(whole)) * 1000)))
        var seconds = time_t(whole)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(fraction), 3))Z"
    }
}
