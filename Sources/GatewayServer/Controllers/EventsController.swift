import Foundation
import GatewayCore
import Hummingbird

/// `/v1/events`: every event, oldest first, for apps that cannot receive webhooks.
struct EventsController {
    let service: OnboardingService
    let feed: any EventFeed
    let render: Renderer

    var endpoints: RouteCollection<GatewayRequestContext> {
        RouteCollection(context: GatewayRequestContext.self).get(use: list)
    }

    @Sendable func list(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try context.require(.tenantsRead)
        let after = try await position(after: try request.query("after"))
        let page = try await service.events(tenantID: nil, after: after, limit: try request.pageLimit())
        return try render.json(ListResource(data: page.items.map(EventResource.init), next_cursor: page.next.map { Cursor.encode("e", $0) }))
    }

    /// `after` is a `next_cursor`, or the id of the last event the consumer processed: a consumer that kept only
    /// event ids (from the feed or from deliveries) resumes right after that event.
    func position(after text: String?) async throws -> Int64? {
        guard let text else { return nil }
        // Cursors are base64url of "e:…", so they never start with the event id prefix.
        guard text.hasPrefix("evt_") else { return Int64(try Cursor.decode("e", text, field: "after")) ?? 0 }
        guard let seq = try await feed.eventSequence(id: text) else {
            throw Problem.validation(
                field: "after", code: "unknown_event", message: "No event has this id; give the id of an event from this feed, or a next_cursor."
            )
        }
        return seq
    }
}
