import Foundation

/// A provider's open circuit as every replica sees it: calls wait until `openUntil`, then one replica probes.
public struct SharedCircuit: Sendable, Equatable {
    public var openUntil: Date
    public var coolDown: TimeInterval

    public init(openUntil: Date, coolDown: TimeInterval) {
        self.openUntil = openUntil
        self.coolDown = coolDown
    }
}

/// Circuit breakers shared through the database, so a provider that one replica found down is not hammered by the
/// others, and one probe (not one per replica) tests whether it is back. Only a store that several processes share
/// has one; a single process keeps its breakers in memory.
public protocol SharedCircuitStore: Sendable {
    /// The provider's circuit while it is open (or half-open), nil while it is closed.
    func sharedCircuit(_ provider: ProviderKind) async throws -> SharedCircuit?
    /// Opens (or opens again) the provider's circuit; the probe slot is free again after `until`.
    func openSharedCircuit(_ provider: ProviderKind, until: Date, coolDown: TimeInterval) async throws
    /// Closes it: a probe went through.
    func closeSharedCircuit(_ provider: ProviderKind) async throws
    /// Takes the one probe of a circuit whose cool-down has passed, held until `holdUntil` (a replica that dies with
    /// it frees it then). False when the circuit is closed, still cooling down, or another replica probes.
    func claimSharedProbe(_ provider: ProviderKind, now: Date, holdUntil: Date) async throws -> Bool
}
