import Foundation

/// Positions in the feed of all events (`GET /v1/events`), so a consumer can resume after the last event it
/// processed, named by its id, as Stripe's `starting_after` takes an object id.
public protocol EventFeed: Sendable {
    /// The feed position of the event with this id; nil when there is no such event.
    func eventSequence(id: String) async throws -> Int64?
}
