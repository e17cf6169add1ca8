import Foundation
import GatewayServer
import Logging
import Testing

/// Log lines leave the process whole and at once: nothing waits in a user-space buffer that a kill -9 would lose.
@Suite struct LogWriteThroughTests {
    /// A fresh file, open for writing. Tests read it back by path while this handle is still open and never
    /// flushed: whatever is in the file then was written through.
    func openFile() throws -> (handle: FileHandle, path: String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-log-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        return (try #require(FileHandle(forWritingAtPath: path)), path)
    }

    func lines(at path: String) throws -> [Substring] {
        let text = String(decoding: try #require(FileManager.default.contents(atPath: path)), as: UTF8.self)
        #expect(text.hasSuffix("\n"), "the last line is complete")
        return Array(text.split(separator: "\n", omittingEmptySubsequences: false).dropLast())
    }

    @Test func theDefaultOutputIsStandardOutputWrittenThrough() {
        // JSONLogHandler(label:level:) writes to LineWriter.standardOutput (its default), never through print.
        #expect(LineWriter.standardOutput.fileDescriptor == FileHandle.standardOutput.fileDescriptor)
    }

    @Test func eachLineIsInTheFileTheMomentItIsLogged() throws {
        let (handle, path) = try openFile()
        defer { try? handle.close() }
        let logger = Logger(label: "t") { JSONLogHandler(label: $0, level: .info, output: LineWriter(fileDescriptor: handle.fileDescriptor)) }

        logger.info("tenant created", metadata: ["tenant.id": "ten_1"])
        let first = try lines(at: path)
        #expect(first.count == 1, "there before anything flushed or closed")

        // Far larger than any stdio buffer (and than a pipe's): still one whole line.
        let big = String(repeating: "x", count: 300_000)
        logger.info("large", metadata: ["payload": "\(big)"])
        let both = try lines(at: path)
        #expect(both.count == 2)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(both[1].utf8)) as? [String: Any])
        #expect((object["payload"] as? String)?.count == big.count)
    }

    @Test func concurrentLinesNeverInterleave() async throws {
        let (handle, path) = try openFile()
        defer { try? handle.close() }
        let writer = LineWriter(fileDescriptor: handle.fileDescriptor)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    let logger = Logger(label: "t") { JSONLogHandler(label: $0, level: .info, output: writer) }
                    for index in 0..<50 {
                        logger.info("line", metadata: ["task": "\(task)", "index": "\(index)", "pad": "\(String(repeating: "y", count: 20_000))"])
                    }
                }
            }
        }
        let all = try lines(at: path)
        #expect(all.count == 400)
        let parsed = all.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(parsed.count == 400, "every line is one whole JSON object")
    }
}
