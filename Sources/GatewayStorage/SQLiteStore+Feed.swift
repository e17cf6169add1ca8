import Foundation
import GRDB
import GatewayCore

/// Event ids to feed positions: `tenant_events.id` is unique, so this is one index lookup.
extension SQLiteStore: EventFeed {
    public func eventSequence(id: String) async throws -> Int64? {
        try readSnapshot { db in
            try Int64.fetchOne(db, sql: "SELECT seq FROM tenant_events WHERE id = ?", arguments: [id])
        }
    }
}
