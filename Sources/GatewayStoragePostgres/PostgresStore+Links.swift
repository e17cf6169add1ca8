import Foundation
import GatewayCore
import GatewayStorage
import PostgresNIO

/// Withdrawn onboarding links, seen by every replica.
extension PostgresStore: OnboardingLinkStore {
    public func revokeOnboardingLinks(tenantID: String, at: Date) async throws {
        try await rows(
            """
            INSERT INTO onboarding_link_revocations (tenant_id, revoked_at) VALUES ($1, $2)
            ON CONFLICT (tenant_id) DO UPDATE SET revoked_at = greatest(onboarding_link_revocations.revoked_at, EXCLUDED.revoked_at)
            """,
            [tenantID, at.unix]
        )
    }

    public func onboardingLinksRevokedAt(tenantID: String) async throws -> Date? {
        try await row("SELECT revoked_at FROM onboarding_link_revocations WHERE tenant_id = $1", [tenantID])?
            .get("revoked_at", Double?.self).map(Date.init(unix:))
    }
}
