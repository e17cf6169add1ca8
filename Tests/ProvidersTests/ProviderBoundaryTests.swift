import Foundation
import GatewayCore
import Providers
import Testing

/// A provider is one folder: no Swift file outside `Sources/Providers/` names one (its id, its name, its types), and the
/// test-only Ledgerly is named only in its folder and the tests' registry line. Comments may give examples; code may not.
@Suite("Provider boundaries")
struct ProviderBoundaryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The ways code names a module: its id (`wrapp`), its name (`Wrapp`, `WrappSimulator`), its name in camel case
    /// (`magniFinance`), none followed by a lowercase letter (so `Wrapped` is not `Wrapp`).
    static func patterns(_ module: any ProviderModule) -> [Regex<Substring>] {
        let name = module.displayName
        let camel = name.prefix(1).lowercased() + name.dropFirst()
        return Set([module.kind.rawValue, name, camel]).sorted().compactMap { try? Regex("\($0)(?![a-z])") }
    }

    /// The file's code: comment lines and trailing ` // ` comments removed.
    static func code(_ path: URL) throws -> [(line: Int, text: String)] {
        try String(contentsOf: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { index, line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("//") { return nil }
            let text = line.range(of: " // ").map { String(line[..<$0.lowerBound]) } ?? String(line)
            return (index + 1, text)
        }
    }

    static func swiftFiles(under folder: String) -> [URL] {
        let base = root.appendingPathComponent(folder)
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        return walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }.sorted { $0.path < $1.path }
    }

    static func namings(in files: [URL], of modules: [any ProviderModule]) throws -> [String] {
        var found: [String] = []
        for file in files {
            for (line, text) in try code(file) {
                for module in modules where patterns(module).contains(where: { text.contains($0) }) {
                    found.append("\(file.path.replacingOccurrences(of: root.path + "/", with: "")):\(line) names \(module.kind.rawValue)")
                }
            }
        }
        return found
    }

    @Test("no Swift file outside Sources/Providers names a provider")
    func sourcesNameNoProvider() throws {
        let files = Self.swiftFiles(under: "Sources").filter { !$0.path.contains("/Sources/Providers/") }
        #expect(files.count > 50, "the walk found the sources")
        let found = try Self.namings(in: files, of: TestProviders.modules)
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }

    @Test("the test-only provider is named only in its folder and the tests' registry line")
    func ledgerlyIsOneFolder() throws {
        let files = (Self.swiftFiles(under: "Sources") + Self.swiftFiles(under: "Tests") + Self.swiftFiles(under: "Benchmarks")).filter {
            !$0.path.contains("/Tests/ProvidersTests/Ledgerly/") && !$0.path.hasSuffix("/Tests/ProvidersTests/TestProviders.swift")
                && !$0.path.hasSuffix("/Tests/ProvidersTests/ProviderBoundaryTests.swift")
        }
        let found = try Self.namings(in: files, of: [LedgerlyModule()])
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }

    @Test("the check finds a provider named in code, and not in a comment or in Wrapped")
    func checkFindsNaming() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("boundary-\(UUID().uuidString).swift")
        try """
            // wrapp in a comment is an example
            extension Optional where Wrapped: Sendable {}
            let kind = ProviderKind.wrapp
            let simulator: MagniFinanceSimulator? = nil // wrapp
            """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let found = try Self.namings(in: [file], of: ProviderModules.shipped)
        #expect(found.count == 2 && found[0].hasSuffix(":3 names wrapp") && found[1].hasSuffix(":4 names magnifinance"), "\(found)")
    }
}
