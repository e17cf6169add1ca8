import Foundation
import GRDB
import GatewayCore

/// Withdrawn onboarding links.
extension SQLiteStore: OnboardingLinkStore {
    public func revokeOnboardingLinks(tenantID: String, at: Date) async throws {
        try await writes.write { db in
            try db.execute(
                sql: """
                    INSERT INTO onboarding_link_revocations (tenant_id, revoked_at) VALUES (?, ?)
                    ON CONFLICT (tenant_id) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at)
                    """,
                arguments: [tenantID, at.unix]
            )
        }
    }

    public func onboardingLinksRevokedAt(tenantID: String) async throws -> Date? {
        try readNow { db in
            try Double.fetchOne(db, sql: "SELECT revoked_at FROM onboarding_link_revocations WHERE tenant_id = ?", arguments: [tenantID])
                .map(Date.init(unix:))
        }
    }
}
