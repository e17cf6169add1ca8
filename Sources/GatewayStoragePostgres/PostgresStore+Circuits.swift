import Foundation
import GatewayCore
import PostgresNIO

extension PostgresStore: SharedCircuitStore {
    public var sharedCircuits: (any SharedCircuitStore)? { self }

    public func sharedCircuit(_ provider: ProviderKind) async throws -> SharedCircuit? {
        guard let row = try await row("SELECT open_until, cool_down FROM provider_circuits WHERE provider = $1", [provider.rawValue]) else {
            return nil
        }
        return SharedCircuit(openUntil: Date(unix: try row.get("open_until")), coolDown: try row.get("cool_down"))
    }

    public func openSharedCircuit(_ provider: ProviderKind, until: Date, coolDown: TimeInterval) async throws {
        try await rows(
            """
            INSERT INTO provider_circuits (provider, open_until, cool_down) VALUES ($1, $2, $3)
            ON CONFLICT (provider) DO UPDATE SET open_until = EXCLUDED.open_until, cool_down = EXCLUDED.cool_down, probe_until = NULL
            """,
            [provider.rawValue, until.unix, coolDown]
        )
    }

    public func closeSharedCircuit(_ provider: ProviderKind) async throws {
        try await rows("DELETE FROM provider_circuits WHERE provider = $1", [provider.rawValue])
    }

    public func claimSharedProbe(_ provider: ProviderKind, now: Date, holdUntil: Date) async throws -> Bool {
        try await !rows(
            """
            UPDATE provider_circuits SET probe_until = $3
            WHERE provider = $1 AND open_until <= $2 AND (probe_until IS NULL OR probe_until <= $2)
            RETURNING 1
            """,
            [provider.rawValue, now.unix, holdUntil.unix]
        ).isEmpty
    }
}
