#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Writes whole lines straight to a file descriptor with write(2): no user-space buffer, so a line is out the moment
/// it is logged. stdio buffers whole blocks when stdout is a pipe or a file (Docker, systemd), which held logs back
/// for minutes and let a kill -9 cut a line in half.
public struct LineWriter: Sendable {
    public let fileDescriptor: Int32

    /// The process's stdout, where logs and the sandbox banner go.
    public static let standardOutput = LineWriter(fileDescriptor: STDOUT_FILENO)

    /// Lines from concurrent writers to one descriptor must not interleave: a line longer than the kernel takes at
    /// once is finished before the next one starts. One lock per descriptor: a blocked output (a full pipe) holds its
    /// own writers only.
    private static let locks = Mutex<[Int32: DescriptorLock]>([:])

    final class DescriptorLock: Sendable {
        let mutex = Mutex(())
    }

    private var lock: DescriptorLock {
        Self.locks.withLock { locks in
            if let lock = locks[fileDescriptor] { return lock }
            let lock = DescriptorLock()
            locks[fileDescriptor] = lock
            return lock
        }
    }

    public init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
    }

    /// Writes `line` and a newline, as one write(2) whenever the kernel takes it all. Errors are dropped: there is
    /// nowhere left to report a failure to log.
    public func write(line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        write(bytes: bytes)
    }

    /// Writes `bytes` (whole lines, newlines included) with as few write(2) calls as the kernel allows.
    public func write(bytes: [UInt8]) {
        lock.mutex.withLock { _ in
            bytes.withUnsafeBytes { buffer in
                guard var next = buffer.baseAddress else { return }
                var remaining = buffer.count
                while remaining > 0 {
                    let written = systemWrite(fileDescriptor, next, remaining)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    next = next.advanced(by: written)
                    remaining -= written
                }
            }
        }
    }
}

/// The C library's write(2); named apart because `LineWriter.write(line:)` hides the global `write` inside the type.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(descriptor, bytes, count)
    #elseif canImport(Musl)
    return Musl.write(descriptor, bytes, count)
    #else
    return Darwin.write(descriptor, bytes, count)
    #endif
}
