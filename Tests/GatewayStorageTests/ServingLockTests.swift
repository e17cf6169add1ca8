import Foundation
import GatewayCore
import Providers
import GatewayStorage
import Testing

/// One process serves a SQLite file: a second one's start-up recovery would clear the first one's live leases.
@Suite struct ServingLockTests {
    @Test func aSecondProcessServingTheSameFileIsRefused() async throws {
        let store = try #require(try await TestStores.make(.sqlite) as? SQLiteStore)
        let path = store.databasePath
        // Another process holds the serving lock (a POSIX record lock, as a gateway's would be) for a few seconds.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c", """
            import fcntl, sys, time
            f = open(sys.argv[1], "a")
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("locked", flush=True)
            time.sleep(10)
            """, path + "-serve.lock"]
        let output = Pipe()
        holder.standardOutput = output
        try holder.run()
        // SIGKILL: the test runner's children may inherit a blocked SIGTERM. The kernel drops the lock with the process.
        defer { kill(holder.processIdentifier, SIGKILL) }
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        #expect(line.contains("locked"))

        do {
            try await store.recoverFromEarlierRun(now: Date())
            Issue.record("a second process must not take over a served file")
        } catch let refusal as SQLiteServingLocked {
            #expect(refusal.description.contains("another gateway process is serving"))
        }
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        try await store.recoverFromEarlierRun(now: Date())
        await store.close()
    }
}
