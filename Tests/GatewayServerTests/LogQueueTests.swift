import Foundation
import GatewayServer
import Logging
import Testing

/// The log queue: lines leave the request's path at once and reach the output whole, in order, soon after; an
/// output that blocks makes lines drop (counted), never a logger wait.
@Suite struct LogQueueTests {
    @Test func linesArriveWholeAndInOrderWithoutAFlush() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-logq-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        let queue = LogQueue(output: LineWriter(fileDescriptor: handle.fileDescriptor))
        let logger = Logger(label: "t") { JSONLogHandler(label: $0, level: .info, queue: queue) }
        for index in 0..<500 { logger.info("line", metadata: ["index": "\(index)"]) }
        // No flush: the writer thread writes what is queued as it comes.
        var lines: [Substring] = []
        // Generous: the whole suite runs in parallel on two cores, and the writer thread is one thread among many
        // (a full run once saw no line within 5 s).
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let text = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
            lines = text.split(separator: "\n")
            if lines.count == 500 { #expect(text.hasSuffix("\n")); break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(lines.count == 500, "\(lines.count) lines written, \(queue.dropped) dropped")
        let indexes = lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["index"] as? String
        }
        #expect(indexes == (0..<500).map(String.init), "whole, parseable, in order")
        #expect(queue.dropped == 0)
    }

    /// A pipe nobody reads fills up and its writer blocks: logging goes on at once, and what does not fit is dropped
    /// and counted. Nothing is lost once the reader comes back.
    @Test func aBlockedOutputDropsLinesAndNeverBlocksTheLogger() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let queue = LogQueue(output: LineWriter(fileDescriptor: writeEnd), capacity: 100)
        let logger = Logger(label: "t") { JSONLogHandler(label: $0, level: .info, queue: queue) }
        let pad = String(repeating: "x", count: 1000)
        let started = ContinuousClock.now
        for index in 0..<5000 { logger.info("line", metadata: ["index": "\(index)", "pad": "\(pad)"]) }
        let spent = ContinuousClock.now - started
        #expect(queue.dropped > 0, "a full queue drops")
        #expect(spent < .seconds(20), "the logger never waited on the pipe (\(spent))")
        // The reader comes back (on a thread of its own: a blocking read must not hold the test's threads): what was
        // queued is written, whole lines only.
        let received = await withCheckedContinuation { (done: CheckedContinuation<[UInt8], Never>) in
            Thread.detachNewThread {
                var all: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = read(readEnd, &buffer, buffer.count)
                    if count <= 0 { break }
                    all.append(contentsOf: buffer[0..<count])
                }
                done.resume(returning: all)
            }
            Thread.detachNewThread {
                // Every queued line written, then the end of the pipe: the reader above sees it.
                _ = queue.flush(timeout: 30)
                close(writeEnd)
            }
        }
        close(readEnd)
        #expect(received.last == UInt8(ascii: "\n"))
        let lines = received.split(separator: UInt8(ascii: "\n"))
        #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0))) != nil }, "every line whole")
        #expect(lines.count + queue.dropped == 5000, "every line written or counted as dropped")
    }
}
