import Foundation
import Synchronization

/// Log lines handed over by loggers and written by one thread of their own: a request pays for capturing its line,
/// not for formatting it or for the write(2). The thread writes whatever is queued as soon as it is queued (one
/// write per batch, whole lines, no user-space buffer left behind), so a kill -9 loses at most the lines of the last
/// moment (`docs/operations.md` has the bound measured).
///
/// The queue is bounded: when the output blocks (a full pipe nobody reads) and the queue is full, a line is dropped
/// and counted (`dropped`, the metric `log_lines_dropped_total`) rather than make the request wait.
public final class LogQueue: @unchecked Sendable {
    /// A line not formatted yet: the formatting runs on the writer thread.
    public typealias Line = @Sendable () -> String

    /// The process's queue to stdout, made on first use (logging is the process's, like stdout).
    public static let standardOutput = LogQueue(output: .standardOutput)

    let output: LineWriter
    let capacity: Int
    private let condition = NSCondition()
    private var pending: [Line] = []
    /// Lines taken by the writer and not yet written.
    private var writing = 0
    private let droppedLines = Atomic<Int>(0)

    /// Lines dropped because the queue was full (the output could not keep up, or blocked).
    public var dropped: Int { droppedLines.load(ordering: .relaxed) }

    public init(output: LineWriter, capacity: Int = 16_384) {
        self.output = output
        self.capacity = max(1, capacity)
        let thread = Thread { [self] in run() }
        thread.name = "gateway-log-writer"
        thread.qualityOfService = .utility
        thread.start()
    }

    /// Hands a line over without waiting: false (and counted) when the queue is full.
    @discardableResult
    public func enqueue(_ line: @escaping Line) -> Bool {
        condition.lock()
        guard pending.count < capacity else {
            condition.unlock()
            droppedLines.add(1, ordering: .relaxed)
            return false
        }
        pending.append(line)
        condition.signal()
        condition.unlock()
        return true
    }

    /// Waits until every line queued before the call is written, or `timeout` passes; true when it is. For the end of
    /// the process and for tests.
    @discardableResult
    public func flush(timeout: TimeInterval = 2) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !pending.isEmpty || writing > 0 {
            guard condition.wait(until: deadline) else { return pending.isEmpty && writing == 0 }
        }
        return true
    }

    private func run() {
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            writing = batch.count
            condition.unlock()

            // Formatted here, off the request's path; written as one write(2) of whole lines.
            var bytes: [UInt8] = []
            for line in batch {
                bytes.append(contentsOf: line().utf8)
                bytes.append(UInt8(ascii: "\n"))
            }
            output.write(bytes: bytes)

            condition.lock()
            writing = 0
            condition.broadcast()
            condition.unlock()
        }
    }
}
