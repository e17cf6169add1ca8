import Foundation

/// Finds files the gateway ships beside its binary (migrations, the OpenAPI spec), wherever it is started from:
/// an explicit setting, the working directory, beside the executable, `../share/gateway/` relative to it, and
/// finally the source checkout it was built from.
public enum ShippedFiles {
    public struct NotFound: Error, CustomStringConvertible {
        public var name: String
        public var searched: [String]
        public var setting: String
        public var description: String { "\(name) not found; looked in: \(searched.joined(separator: ", ")) (set \(setting))" }
    }

    /// `relativePath` is relative to the repository root (`migrations`, `docs/openapi.yaml`); installed copies sit
    /// under `share/gateway/` by their last path component.
    public static func locate(
        _ relativePath: String, setting: String, directory: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        executable: String = Bundle.main.executablePath ?? CommandLine.arguments.first ?? ""
    ) throws -> URL {
        var candidates: [URL] = []
        if let explicit = environment[setting], !explicit.isEmpty {
            candidates.append(URL(fileURLWithPath: explicit))
        }
        let name = (relativePath as NSString).lastPathComponent
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(relativePath))
        let binaryDirectory = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(binaryDirectory.appendingPathComponent(name))
        candidates.append(binaryDirectory.appendingPathComponent("../share/gateway/\(name)").standardized)
        // Sources/GatewayCore/Ports/ShippedFiles.swift → the package root.
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(sourceRoot.appendingPathComponent(relativePath))

        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), isDirectory.boolValue == directory {
                return candidate
            }
        }
        throw NotFound(name: relativePath, searched: candidates.map(\.path), setting: setting)
    }
}
