import Foundation

/// A MagniFinance company that never approves the partnership email would otherwise be polled for ever. After the
/// configured time an answer that still says "waiting" becomes a refusal: the tenant is `failed` with a clear
/// `last_error`, and an operator can resubmit (or the partner correct and retry). Until then `/admin/stats` counts
/// it as stuck.
public enum ApprovalExpiry {
    public static let code = "approval_expired"

    public static func apply(_ expiry: TimeInterval, to finding: Finding, tenant: Tenant, at: Date) -> Finding {
        guard case .waiting = finding, tenant.state == .actionRequired, tenant.nextAction?.type == .awaitApproval,
            at.timeIntervalSince(tenant.stateChangedAt) > expiry
        else { return finding }
        let days = Int((expiry / 86_400).rounded())
        let error = TenantError(
            code: code,
            message: "The company did not approve the partnership request within \(days) day(s). An operator can resubmit it, or correct the profile and retry.",
            at: at
        )
        return .rejected(error, providerStatus: "approval_expired")
    }
}

extension Finding {
    /// The provider could not be asked: nothing is known.
    public var isUnavailable: Bool {
        if case .unavailable = self { return true }
        return false
    }
}
